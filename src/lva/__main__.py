"""Command line: ``python -m lva {book,demos} --help``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import PROFILES


def _book(args: argparse.Namespace) -> int:
    from .book import NotebookFailed, run

    try:
        run(args.profile, args.notebooks, args.out, build=not args.no_build)
    except NotebookFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def _demos(args: argparse.Namespace) -> int:
    from .config import get_config
    from .demos import load_or_generate

    cfg = get_config(args.profile)
    demos, info = load_or_generate(cfg)
    rate = f", {info['episodes_per_s']:.0f} episodes/s" if "episodes_per_s" in info else " (cached)"
    print(f"{demos.n_episodes} episodes, {demos.n_transitions} transitions in {info['seconds']:.1f} s{rate}")
    print(cfg.artifact("demos", "demos.npz"))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lva", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("book", help="execute every chapter notebook, then build the book")
    p.add_argument("--profile", choices=PROFILES, default="fast", help="config profile (default: fast)")
    p.add_argument("--notebooks", type=Path, default=None, help="folder of NN_name.py chapters (default: notebooks/)")
    p.add_argument("--out", type=Path, default=None, help="where executed notebooks go (default: book/chapters/)")
    p.add_argument("--no-build", action="store_true", help="execute the notebooks only, do not build the book")
    p.set_defaults(func=_book)

    p = sub.add_parser("demos", help="generate (or load cached) expert demonstrations")
    p.add_argument("--profile", choices=PROFILES, default="fast", help="config profile (default: fast)")
    p.set_defaults(func=_demos)

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
