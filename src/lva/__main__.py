"""Command line for headless use: ``python -m lva {book,demos,train,embed,align,student,ledger} --help``.

Errors are one line on stderr and an exit code: 2 for bad input (an unknown model, a bad
setting, a malformed model folder, ``LVA_CACHE`` pointing at a file), 1 for a failed build (a
cached agent that fails its checks, an unwritable cache, a failing notebook); ``LVA_DEBUG=1``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .config import ALL_PROFILES, Config
from .errors import guarded
from .ledger import MAKE_TARGETS


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

    cfg = get_config(args.profile)  # bad settings fail before torch is imported
    from .pipeline import demonstrations

    built = demonstrations.built(cfg)
    demos = built.value
    rate = " (cached)" if built.cached else f", {demos.n_episodes / built.seconds:.0f} episodes/s"
    print(f"{demos.n_episodes} episodes, {demos.n_transitions} transitions in {built.seconds:.1f} s{rate}")
    print(cfg.artifact("demos", "demos.npz").path)
    return 0


def _student(args: argparse.Namespace) -> int:
    from .book import NotebookFailed
    from .student import build_student_html, write_student

    try:
        paths = write_student(args.notebooks, args.out, args.profile if args.execute else None, args.chapters)
    except NotebookFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    if args.html:
        build_student_html(chapters_dir=args.chapters)
    return 0


def _train(args: argparse.Namespace) -> int:
    from .config import get_config

    cfg = get_config(args.profile)
    from .pipeline import train_agents, trained_success

    seeds = args.seed or list(cfg.agent_seeds)
    train_agents([(cfg, seed) for seed in seeds])  # the missing ones at once, one process each
    for seed in seeds:
        result = trained_success(cfg, seed, retrain=True)  # a cached agent failing its checks is retrained
        seconds = result.pop("training s")
        print(
            f"seed {seed}: " + ", ".join(f"{t} {r:.1%}" for t, r in result.items()) + f" (trained in {seconds:.0f} s)"
        )
    return 0


def _models(cfg: Config, text: str) -> str | list[str]:
    """``--models`` as :func:`lva.pipeline.embeddings` takes it, checked first (an unknown name
    fails in a fraction of a second, before torch is imported)."""
    from .catalogue import model_names

    models = text if text in ("offline", "paper") else [t.strip() for t in text.split(",") if t.strip()]
    model_names(cfg, models)
    return models


def _embed(args: argparse.Namespace) -> int:
    from .catalogue import family_of
    from .config import get_config

    cfg = get_config(args.profile)
    models = _models(cfg, args.models)
    from .pipeline import embeddings

    reps = embeddings(cfg, models=models, show_progress=True)
    for name, x in reps.items():
        print(f"{name:24s} {family_of(name):16s} {x.shape[0]} x {x.shape[1]}")
    return 0


def _align(args: argparse.Namespace) -> int:
    import pandas as pd

    from .config import get_config

    cfg = get_config(args.profile)
    models = _models(cfg, args.models)
    from .pipeline import alignment, anchor, embeddings

    a = cfg.align
    reps = embeddings(cfg, models=models, show_progress=True)
    table = alignment(cfg, reps)
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(
            f"{anchor(cfg)} against every representation ({a.n_perm} permutations, "
            f"{a.n_perm_retrieval} for retrieval, {a.n_boot} bootstrap resamples)"
        )
        print(
            table[["model", "metric", "score", "low", "high", "chance", "p", "calibrated"]]
            .round(3)
            .to_string(index=False)
        )
    return 0


def _ledger(args: argparse.Namespace) -> int:
    from .book import CHAPTERS_DIR
    from .config import repo_root
    from .ledger import LEDGER_DIR, cached_headline, record, run_entry

    root = repo_root()
    make = {t: getattr(args, f"make_{t}") for t in MAKE_TARGETS}
    run = run_entry(
        args.profile,
        args.chapters or root / CHAPTERS_DIR,
        root,
        None if args.no_headline else cached_headline,
        make,
        args.book_build,
        args.note,
        exclusive=not args.shared,
    )
    print(record(args.ledger or root / LEDGER_DIR, args.profile, run))  # the book renders it when next built
    return 0


@guarded
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lva", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("book", help="execute every chapter notebook, then build the book")
    p.add_argument("--profile", choices=ALL_PROFILES, default="fast", help="config profile (default: fast)")
    p.add_argument("--notebooks", type=Path, default=None, help="folder of NN_name.py chapters (default: notebooks/)")
    p.add_argument("--out", type=Path, default=None, help="where executed notebooks go (default: book/chapters/)")
    p.add_argument("--no-build", action="store_true", help="execute the notebooks only, do not build the book")
    p.set_defaults(func=_book)

    p = sub.add_parser("demos", help="generate (or load cached) expert demonstrations")
    p.add_argument("--profile", choices=ALL_PROFILES, default="fast", help="config profile (default: fast)")
    p.set_defaults(func=_demos)

    p = sub.add_parser(
        "train",
        help="train (or load cached) agents by behavioural cloning and report success per task "
        "(a cached agent that fails its checks is retrained)",
    )
    p.add_argument("--profile", choices=ALL_PROFILES, default="fast", help="config profile (default: fast)")
    p.add_argument(
        "--seed", type=int, action="append", help="agent seed (repeatable; default: the profile's agent_seeds)"
    )
    p.set_defaults(func=_train)

    p = sub.add_parser("embed", help="compute (or load cached) every representation of chapter 5 and list them")
    p.add_argument("--profile", choices=ALL_PROFILES, default="fast", help="config profile (default: fast)")
    p.add_argument(
        "--models", default="offline", help="'offline' (default), 'paper' (needs a model hub) or comma-separated names"
    )
    p.set_defaults(func=_embed)

    p = sub.add_parser(
        "align", help="chapter 6's headline table: the agent's E_L against every representation, every metric"
    )
    p.add_argument("--profile", choices=ALL_PROFILES, default="fast", help="config profile (default: fast)")
    p.add_argument(
        "--models", default="offline", help="'offline' (default), 'paper' (needs a model hub) or comma-separated names"
    )
    p.set_defaults(func=_align)

    p = sub.add_parser("student", help="write student copies of the notebooks (solutions removed) to student/")
    p.add_argument("--notebooks", type=Path, default=None, help="folder of NN_name.py chapters (default: notebooks/)")
    p.add_argument("--out", type=Path, default=None, help="where the copies go (default: student/)")
    p.add_argument("--execute", action="store_true", help="also execute every copy (a check that they still run)")
    p.add_argument("--profile", choices=ALL_PROFILES, default="fast", help="profile for --execute (default: fast)")
    p.add_argument(
        "--chapters",
        type=Path,
        default=None,
        help="the book build's executed chapters, for glued values and --html (default: book/chapters/)",
    )
    p.add_argument(
        "--html",
        action="store_true",
        help="also build the book without solutions into _build/student-html (needs the executed chapters)",
    )
    p.set_defaults(func=_student)

    p = sub.add_parser(
        "ledger", help="add the run of a finished build (times, peak memory, headline numbers) to ledger/"
    )
    p.add_argument("--profile", choices=ALL_PROFILES, default="fast", help="config profile (default: fast)")
    p.add_argument("--chapters", type=Path, default=None, help="the build's chapters (default: book/chapters/)")
    p.add_argument("--ledger", type=Path, default=None, help="the ledger folder (default: ledger/)")
    for target in MAKE_TARGETS:
        p.add_argument(
            f"--make-{target}", type=float, default=None, metavar="SECONDS", help=f"wall time of make {target}"
        )
    p.add_argument(
        "--book-build", type=float, default=None, metavar="SECONDS", help="wall time of the Jupyter Book build"
    )
    p.add_argument("--note", default="", help="how the run was made (clean clone, what else ran)")
    p.add_argument("--no-headline", action="store_true", help="leave chapter 6's headline numbers out")
    p.add_argument(
        "--shared",
        action="store_true",
        help="other work ran during the build: its times are not shown as the machine's",
    )
    p.set_defaults(func=_ledger)

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
