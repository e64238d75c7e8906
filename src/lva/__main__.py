"""Command line for headless use: ``python -m lva {book,demos,train,student} --help``."""

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


def _student(args: argparse.Namespace) -> int:
    from .book import NotebookFailed, write_student

    try:
        paths = write_student(args.notebooks, args.out, args.profile if args.execute else None)
    except NotebookFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0


def _train(args: argparse.Namespace) -> int:
    from .config import get_config
    from .evaluate import evaluate, success_table
    from .train import load_or_train

    cfg = get_config(args.profile)
    seeds = args.seed or list(cfg.checks.agent_seeds)
    for seed in seeds:
        agent, history, cached = load_or_train(cfg, seed)
        how = "cached" if cached else f"trained in {history.seconds[-1]:.0f} s, {history.transitions_per_s:.0f} transitions/s"
        table = success_table(evaluate(agent, cfg), "task")
        print(f"seed {seed} ({how}): " + ", ".join(f"{t} {r:.1%}" for t, r in table["success"].items()))
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

    p = sub.add_parser("train", help="train (or load cached) agents by behavioural cloning and report success per task")
    p.add_argument("--profile", choices=PROFILES, default="fast", help="config profile (default: fast)")
    p.add_argument("--seed", type=int, action="append", help="agent seed (repeatable; default: the profile's agent_seeds)")
    p.set_defaults(func=_train)

    p = sub.add_parser("student", help="write student copies of the notebooks (solutions removed) to student/")
    p.add_argument("--notebooks", type=Path, default=None, help="folder of NN_name.py chapters (default: notebooks/)")
    p.add_argument("--out", type=Path, default=None, help="where the copies go (default: student/)")
    p.add_argument("--execute", action="store_true", help="also execute every copy (a check that they still run)")
    p.add_argument("--profile", choices=PROFILES, default="fast", help="profile for --execute (default: fast)")
    p.set_defaults(func=_student)

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
