"""Benchmark the pipeline stage by stage: wall time, throughput, peak memory, and two references.

Run:  python benchmarks/bench_pipeline.py  [--profile fast|full] [--stages a,b,...] [--convert]
                                           [--cache DIR] [--inputs DIR] [--json FILE] [--keep]

Each stage runs the real pipeline function (``lva.pipeline``) in its own subprocess, in order,
against one cache: by default a scratch ``LVA_CACHE`` (removed at the end unless ``--keep``), so
every stage computes cold and later stages read what earlier ones wrote; ``--cache DIR`` uses an
existing cache instead (the warm path: mostly loads). One table: wall time, throughput of what the
stage computed now (counted from its output: demos, histories, evaluation tables, embedding files,
permutation counts), peak memory, and a ratio where a reference exists:

  demonstrations   demo episodes/s; reference: minigrid's BabyAIBot on BabyAI-GoToLocal and
                   -PickupLoc (chapter 1's levels), episodes/s (lva.expert.compare_with_babyai_bot);
                   the ratio is our planner against the bot on those same episodes
  visual_features  distinct views/s (only when the profile's agent vision is imagenet)
  agents           training transitions/s (pipeline.agents: the missing agents trained)
  evaluation       rollout episodes/s (pipeline.evaluation of every agent seed)
  vision_encoders  training pairs/s (pipeline.vision_encoders, their views' features included)
  conversion       MB of converted weights written/s (only with --convert or named in --stages;
                   otherwise a scratch cache links the converted models of --inputs)
  embeddings       sentences embedded/s (pipeline.embeddings and every language_model_poolings)
  alignment        permutations/s (pipeline.alignment); reference: the per-row mutual k-NN loop
                   of benchmarks/bench_alignment.py against the vectorised one, anchor vs each
  robustness       specifications/s (pipeline.robustness: the specification curve's rows)

Peak memory is the stage's own: the kernel's high-water mark of its process (and of any worker
processes it waited for) at the end of the stage, or the summed memory of its process tree
sampled every 0.5 s (lva.book.PeakMemory, as the book runner measures a chapter: proportional set
sizes on Linux, so pages the processes share count once), whichever is larger; a process with lva
and torch imported starts at about 300 MB.
The stage's inputs are read in the same process before the clock starts. Run without the stages
before it (``--stages alignment``), a stage of a scratch cache first gets its inputs copied from
``--inputs`` (default ``$LVA_CACHE`` or the checkout's ``.cache/lva``); inputs found nowhere are
built before the clock starts (slow, and said so). Mutual k-NN scores of the loop and the
vectorised code differ where the k-th and (k+1)-th neighbours tie (bag-of-words, semantic
features): rounding decides which one is in; the notes say so.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_alignment, when imported as a module
from lva.book import PeakMemory
from lva.config import PROFILES, get_config

#: The benchmark's stages, in pipeline order: (name, unit of its throughput, the stages whose
#: artifacts it reads).
STAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "demonstrations": ("episodes", ()),
    "visual_features": ("views", ("demonstrations",)),
    "agents": ("transitions", ("demonstrations", "visual_features")),
    "evaluation": ("episodes", ("agents",)),
    "vision_encoders": ("pairs", ("demonstrations",)),
    "conversion": ("MB", ()),
    "embeddings": ("sentences", ("agents", "vision_encoders", "conversion")),
    # E_L of the agents and encoders is recomputed from their checkpoints by pipeline.embeddings
    "alignment": ("permutations", ("agents", "vision_encoders", "embeddings")),
    "robustness": ("specifications", ("agents", "vision_encoders", "embeddings")),
}
OPTIONAL = ("conversion",)  # not run unless asked for (--convert or --stages)
BOT_LEVELS = ("BabyAI-GoToLocal-v0", "BabyAI-PickupLoc-v0")  # chapter 1's comparison with the bot
SAMPLE_S = 0.5  # seconds between samples of the stage's summed memory (each scans /proc: ~10 ms of a core)


# ------------------------------------------------------------------------------------------------
# Arguments and stage selection
# ------------------------------------------------------------------------------------------------


def select_stages(names: str | None, convert: bool = False) -> list[str]:
    """The stages to run, in pipeline order: ``names`` (comma-separated) or every stage but the
    optional ones, plus ``conversion`` with ``convert``. ``ValueError`` naming the valid stages."""
    if names is None:
        chosen = {s for s in STAGES if s not in OPTIONAL}
    else:
        chosen = {n.strip() for n in names.split(",") if n.strip()}
        unknown = sorted(chosen - set(STAGES))
        if unknown or not chosen:
            what = f"unknown stage(s) {', '.join(map(repr, unknown))}" if unknown else "no stage named"
            raise ValueError(f"{what}; valid stages: {', '.join(STAGES)}")
    if convert:
        chosen.add("conversion")
    return [s for s in STAGES if s in chosen]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=PROFILES, default="fast")
    ap.add_argument(
        "--stages",
        help=f"comma-separated, in any order (default: all but {', '.join(OPTIONAL)}); valid: {', '.join(STAGES)}",
    )
    ap.add_argument("--convert", action="store_true", help="also measure the language models' conversion")
    ap.add_argument("--cache", type=Path, help="an existing cache to use (the warm path) instead of a scratch one")
    ap.add_argument(
        "--inputs",
        type=Path,
        help="where a scratch cache copies the inputs of stages run without "
        "their predecessors, and links converted models from "
        "(default: $LVA_CACHE or the checkout's .cache/lva)",
    )
    ap.add_argument("--json", type=Path, help="also write the table as JSON here")
    ap.add_argument("--keep", action="store_true", help="keep the scratch cache and the stages' logs")
    ap.add_argument("--child", help=argparse.SUPPRESS)  # internal: run one stage in this process
    ap.add_argument("--reference", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is None:
        try:
            args.selected = select_stages(args.stages, args.convert)
            if args.cache is not None and args.cache.exists() and not args.cache.is_dir():
                raise ValueError(f"--cache {args.cache} is a file, not a folder")
            if args.json is not None and not args.json.resolve().parent.is_dir():
                raise ValueError(f"--json {args.json}: its folder does not exist")
        except ValueError as err:
            ap.error(str(err))  # exit code 2, before anything is written
    return args


# ------------------------------------------------------------------------------------------------
# Memory
# ------------------------------------------------------------------------------------------------


def peak_kb() -> int:
    """The largest resident set of this process and of the children it waited for (kB):
    ``VmHWM`` where Linux reports it, else ``ru_maxrss``."""
    own = 0
    try:
        own = int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))
    except (OSError, AttributeError):
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // (1024 if sys.platform == "darwin" else 1)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // (1024 if sys.platform == "darwin" else 1)
    return max(own, children)


# ------------------------------------------------------------------------------------------------
# The stages, each run in a child process (``--child NAME``)
# ------------------------------------------------------------------------------------------------


class Clock:
    """Times a block; at its end also reads the process's peak memory (:func:`peak_kb`)."""

    def __enter__(self) -> Clock:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds, self.peak_kb = time.perf_counter() - self.t0, peak_kb()


def _mtimes(paths: Sequence[Path]) -> list[int | None]:
    return [p.stat().st_mtime_ns if p.exists() else None for p in paths]


def _files(folder: Path) -> dict[Path, int]:
    """Every file below ``folder`` with its modification time (ns)."""
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()} if folder.is_dir() else {}


def _changed(folder: Path, before: dict[Path, int]) -> list[Path]:
    return sorted(p for p, t in _files(folder).items() if before.get(p) != t)


def _result(clock: Clock, done: float, notes: list[str], setup_s: float = 0.0, **extra: Any) -> dict[str, Any]:
    if setup_s > 1.0:
        notes.append(f"inputs read or built before the clock started: {setup_s:.1f} s")
    return {"seconds": clock.seconds, "done": done, "peak_kb": clock.peak_kb, "notes": notes, **extra}


def stage_demonstrations(cfg: Any) -> dict[str, Any]:
    from lva import pipeline

    with Clock() as clock:
        built = pipeline.demonstrations.built(cfg, show_progress=False)
    demos = built.value
    how = "loaded from the cache" if built.cached else f"generated by the {cfg.demos.expert} expert"
    return _result(
        clock,
        0 if built.cached else demos.n_episodes,
        [f"{demos.n_episodes} episodes, {demos.n_transitions} transitions, {how}"],
    )


def stage_visual_features(cfg: Any) -> dict[str, Any]:
    from lva import pipeline

    t0 = time.perf_counter()
    demos = pipeline.demonstrations(cfg, show_progress=False)
    setup = time.perf_counter() - t0
    with Clock() as clock:
        built = pipeline.visual_features.built(cfg, show_progress=False)
    features, _ = built.value
    return _result(
        clock,
        0 if built.cached else len(features),
        [
            f"{len(features)} distinct views of {demos.n_transitions} transitions"
            + (", loaded from the cache" if built.cached else "")
        ],
        setup,
    )


def stage_agents(cfg: Any) -> dict[str, Any]:
    from lva import pipeline
    from lva.train import split_episodes

    t0 = time.perf_counter()
    demos = pipeline.demonstrations(cfg, show_progress=False)
    if cfg.agent.vision == "imagenet":
        pipeline.visual_features(cfg, show_progress=False)
    setup = time.perf_counter() - t0
    ckpts = [pipeline.checkpoint_paths(cfg, seed)[0] for seed in cfg.agent_seeds]
    tables = [pipeline.evaluation_artifact(cfg, seed).path for seed in cfg.agent_seeds]
    before = _mtimes(ckpts + tables)
    with Clock() as clock:
        pipeline.agents(cfg, show_progress=False)
    changed = [b != a for b, a in zip(before, _mtimes(ckpts + tables))]
    trained = [s for s, c in zip(cfg.agent_seeds, changed) if c]
    evaluated = [s for s, c in zip(cfg.agent_seeds, changed[len(ckpts) :]) if c]
    transitions, loop_rates = 0, []
    for seed in trained:
        _, history, _ = pipeline.trained_agent(cfg, seed, show_progress=False)
        train_eps, _ = split_episodes(demos.n_episodes, cfg.train.val_fraction, seed)
        transitions += int(demos.lengths[train_eps].sum()) * len(history.epoch)
        loop_rates.append(f"{history.transitions_per_s:.0f}")
    notes = [
        f"seeds trained now: {trained or 'none'}; loaded from the cache: "
        f"{[s for s in cfg.agent_seeds if s not in trained] or 'none'}"
    ]
    if trained:
        notes.append(
            f"{transitions} transitions ({cfg.train.epochs} epoch{'s' * (cfg.train.epochs != 1)}); "
            f"the training loops alone (histories, per seed): {', '.join(loop_rates)} transitions/s"
        )
    if evaluated:
        episodes = sum(len(pipeline.evaluation(cfg, seed)) for seed in evaluated)
        notes.append(
            f"the stage also rolled out the evaluation of seeds {evaluated} ({episodes} episodes, in its "
            "time): the evaluation stage reads them from the cache"
        )
    return _result(clock, transitions, notes, setup)


def stage_evaluation(cfg: Any) -> dict[str, Any]:
    from lva import pipeline

    t0 = time.perf_counter()
    pipeline.agents(cfg, show_progress=False)  # the stage's input: trained before the clock if missing
    setup = time.perf_counter() - t0
    with Clock() as clock:
        built = {seed: pipeline.evaluation.built(cfg, seed) for seed in cfg.agent_seeds}
    fresh = [s for s in cfg.agent_seeds if not built[s].cached]
    success = ", ".join(f"seed {s} {built[s].value['success'].mean():.1%}" for s in cfg.agent_seeds)
    return _result(
        clock,
        sum(len(built[s].value) for s in fresh),
        [
            f"rolled out now: seeds {fresh or 'none'}, {cfg.checks.eval_episodes_per_task} episodes per "
            f"task each; success {success}"
        ],
        setup,
    )


def stage_vision_encoders(cfg: Any) -> dict[str, Any]:
    from lva import pipeline
    from lva.grounding import split

    t0 = time.perf_counter()
    pipeline.demonstrations(cfg, show_progress=False)
    setup = time.perf_counter() - t0
    ckpts = [pipeline.checkpoint_paths(cfg, seed, "vision")[0] for seed in cfg.agent_seeds]
    before = _mtimes(ckpts)
    with Clock() as clock:
        pipeline.vision_encoders(cfg, show_progress=False)
    trained = [s for s, b, a in zip(cfg.agent_seeds, before, _mtimes(ckpts)) if a != b]
    pairs = 0
    if trained:
        rows = len(split(pipeline.vision_pairs(cfg, show_progress=False).n_episodes, cfg.ground, cfg.demos.seed)[0])
        pairs = sum(rows * len(pipeline.trained_vision_encoder(cfg, s, show_progress=False)[1].epoch) for s in trained)
    return _result(
        clock,
        pairs,
        [
            f"encoders trained now: seeds {trained or 'none'} (training pairs x epochs, "
            f"the pairs' views and ImageNet features included in the time)"
        ],
        setup,
    )


def stage_conversion(cfg: Any) -> dict[str, Any]:
    from lva import models as M
    from lva.catalogue import model_names

    specs = [M.get_spec(n) for n in model_names(cfg) if M.get_spec(n).loader == "gguf"]
    stamps = [M.converted_dir(spec) / "lva-converted.json" for spec in specs]
    before = _mtimes(stamps)
    with Clock() as clock:
        folders = [M.convert_gguf(spec) for spec in specs]
    fresh = [f for f, b, a in zip(folders, before, _mtimes(stamps)) if a != b]
    written = sum(p.stat().st_size for f in fresh for p in f.iterdir() if p.is_file()) / 1e6
    return _result(
        clock,
        written,
        [
            f"converted now: {[f.name for f in fresh] or 'none'} "
            f"(of {[s.name for s in specs]}), {written:.0f} MB written"
        ],
    )


def embeddings_root(cache_dir: Path) -> Path:
    """The folder of lva.embeddings' cache in the cache ``cache_dir``."""
    from lva.embeddings import cache_path

    return cache_path("random", ["x"], cache_dir=cache_dir).parent.parent


def stage_embeddings(cfg: Any) -> dict[str, Any]:
    from lva import models as M
    from lva import pipeline

    t0 = time.perf_counter()
    pipeline.agents(cfg, show_progress=False)
    pipeline.vision_encoders(cfg, show_progress=False)
    setup = time.perf_counter() - t0
    root = embeddings_root(cfg.cache_dir)
    before = _files(root)
    with Clock() as clock:
        reps = pipeline.embeddings(cfg, show_progress=False)
        pooled = pipeline.language_model_poolings(reps)
    written = [p for p in _changed(root, before) if p.suffix == ".npz"]
    networks = [name for name in reps if name not in M.REGISTRY]  # E_L of agents and encoders: computed every call
    n_texts = len(next(iter(reps.values())))
    files = len(set(M.REGISTRY) & set(reps)) + sum(len(p) for p in pooled.values()) - len(pooled)
    return _result(
        clock,
        n_texts * (len(written) + len(networks)),
        [
            f"{len(reps)} representations and {sum(map(len, pooled.values()))} poolings of {len(pooled)} "
            f"language models, {n_texts} sentences each; embedding files computed now: {len(written)}, "
            f"read from the cache: {max(files - len(written), 0)}; E_L of {len(networks)} networks"
        ],
        setup,
    )


def _representations(cfg: Any) -> tuple[dict[str, Any], float]:
    from lva import pipeline

    t0 = time.perf_counter()
    return pipeline.embeddings(cfg, show_progress=False), time.perf_counter() - t0


def stage_alignment(cfg: Any) -> dict[str, Any]:
    from lva import pipeline

    reps, setup = _representations(cfg)
    # a cached stage tells whether it read its table (``.built``); an older, uncached one does not
    cacheable = hasattr(pipeline.alignment, "built")
    with Clock() as clock:
        built = pipeline.alignment.built(cfg, reps) if cacheable else None
        table = built.value if built is not None else pipeline.alignment(cfg, reps)
    cached = built is not None and built.cached
    return _result(
        clock,
        0 if cached else int(table["n_perm"].sum()),
        [
            f"{len(table)} rows: {pipeline.anchor(cfg)} against {table['model'].nunique()} representations x "
            f"{table['metric'].nunique()} metrics"
            + (", loaded from the cache" if cached else f"; also {cfg.align.n_boot * len(table)} bootstrap resamples")
        ],
        setup,
    )


def stage_robustness(cfg: Any) -> dict[str, Any]:
    from lva import pipeline

    reps, setup = _representations(cfg)
    t0 = time.perf_counter()
    pooled = pipeline.language_model_poolings(reps)
    setup += time.perf_counter() - t0
    with Clock() as clock:
        built = pipeline.robustness.built(cfg, reps, pooled)
    curve = built.value
    return _result(
        clock,
        0 if built.cached else len(curve),
        [
            f"{len(curve)} specifications of {curve['model'].nunique()} models"
            + (
                ", loaded from the cache"
                if built.cached
                else f" (pooling x layer choice x normalisation x metric), {int(curve['n_perm'].sum())} permutations"
            )
        ],
        setup,
    )


def reference_demonstrations(cfg: Any) -> dict[str, Any]:
    """minigrid's BabyAIBot on chapter 1's BabyAI levels (our planner on the same episodes)."""
    from lva.expert import compare_with_babyai_bot

    with Clock() as clock:
        runs = [compare_with_babyai_bot(level, cfg.checks.bot_episodes, seed=cfg.seed) for level in BOT_LEVELS]
    episodes = sum(r.episodes for r in runs)
    bot_s, ours_s = (sum(r.episodes / getattr(r, f) for r in runs) for f in ("bot_eps_per_s", "expert_eps_per_s"))
    return {
        "label": "BabyAI bot",
        "seconds": clock.seconds,
        "throughput": episodes / bot_s,
        "unit": "episodes",
        "ratio": bot_s / ours_s,  # like for like: our planner on the bot's own episodes (the stage's levels differ)
        "notes": [
            f"BabyAI bot: {episodes} episodes of {', '.join(BOT_LEVELS)}, {episodes / bot_s:.0f} episodes/s; "
            f"our planner on the same episodes {episodes / ours_s:.0f} episodes/s "
            f"({bot_s / ours_s:.1f}x the bot)"
        ],
    }


def tied_rows(X: Any, k: int, tol: float = 1e-9) -> int:
    """Rows of ``X`` whose k-th and (k+1)-th most similar other rows (centred cosine) tie within
    ``tol``: which of them is a neighbour is then decided by rounding."""
    import numpy as np

    X = np.asarray(X, dtype=np.float64)
    X = X - X.mean(axis=0)
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    S = X @ X.T
    np.fill_diagonal(S, -np.inf)
    top = -np.sort(-S, axis=1)[:, k - 1 : k + 1]
    return int((top[:, 0] - top[:, 1] < tol).sum())


def knn_reference(spaces: dict[str, Any], anchor: str, k: int, repeats: int = 5) -> dict[str, Any]:
    """Mutual k-NN of ``anchor`` against every other space: bench_alignment's per-row loop against
    ``lva.alignment.measure`` (vectorised; best of ``repeats``). ``differ`` lists the pairs whose
    scores differ (loop, vectorised, rows with a tie at the k-th neighbour in either space)."""
    from bench_alignment import mutual_knn_loop

    from lva import alignment as al

    others = [name for name in spaces if name != anchor]
    A = spaces[anchor]
    al.measure("mutual_knn", A, spaces[others[0]], k=k)  # warm-up (compiled kernels, caches)
    loop_s, vec_s, differ = 0.0, 0.0, {}
    for name in others:
        t0 = time.perf_counter()
        ref = mutual_knn_loop(A, spaces[name], k)
        loop_s += time.perf_counter() - t0
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            vec = al.measure("mutual_knn", A, spaces[name], k=k)
            best = min(best, time.perf_counter() - t0)
        vec_s += best
        if abs(ref - vec) > 1e-12:
            differ[name] = {
                "loop": ref,
                "vectorised": vec,
                "tied_rows": max(tied_rows(A, k), tied_rows(spaces[name], k)),
            }
    return {"pairs": len(others), "loop_s": loop_s, "vectorised_s": vec_s, "ratio": loop_s / vec_s, "differ": differ}


def reference_alignment(cfg: Any) -> dict[str, Any]:
    from lva import pipeline

    reps, _ = _representations(cfg)
    with Clock() as clock:
        ref = knn_reference(reps, pipeline.anchor(cfg), cfg.align.k)
    same = ref["pairs"] - len(ref["differ"])
    notes = [
        f"mutual k-NN (k={cfg.align.k}), {pipeline.anchor(cfg)} vs {ref['pairs']} representations: per-row loop "
        f"{ref['loop_s']:.2f} s, vectorised {ref['vectorised_s'] * 1e3:.1f} ms ({ref['ratio']:.0f}x); "
        f"same score on {same} of {ref['pairs']}"
    ]
    notes += [
        f"  differs on {name}: loop {d['loop']:.4f}, vectorised {d['vectorised']:.4f} ({d['tied_rows']} rows "
        f"tie at the {cfg.align.k}th neighbour: membership decided by rounding)"
        for name, d in ref["differ"].items()
    ]
    return {"label": "per-row k-NN loop", "seconds": clock.seconds, **ref, "notes": notes}


RUNNERS: dict[str, Callable[[Any], dict[str, Any]]] = {name: globals()[f"stage_{name}"] for name in STAGES}
REFERENCES: dict[str, Callable[[Any], dict[str, Any]]] = {
    "demonstrations": reference_demonstrations,
    "alignment": reference_alignment,
}


def child_main(args: argparse.Namespace) -> int:
    """Run one stage (or its reference) with the profile's config; write its result as JSON."""
    cfg = get_config(args.profile)
    out = (REFERENCES if args.reference else RUNNERS)[args.child](cfg)
    args.result.write_text(json.dumps(out, default=float))
    return 0


# ------------------------------------------------------------------------------------------------
# The parent: scratch cache, inputs, one child per stage, the table
# ------------------------------------------------------------------------------------------------


def skipped_reason(stage: str, cfg: Any) -> str | None:
    if stage == "visual_features" and cfg.agent.vision != "imagenet":
        return f"skipped: the {cfg.profile} profile's agent vision is {cfg.agent.vision}"
    return None


def artifacts(stage: str, cfg: Any) -> list[Path]:
    """What a stage leaves in ``cfg``'s cache for later stages (files or folders; [] for none)."""
    from lva.pipeline import checkpoint_paths

    if stage == "demonstrations":
        return _with_manifests([cfg.artifact("demos", "demos.npz").path])
    if stage == "visual_features" and cfg.agent.vision == "imagenet":
        return _with_manifests([cfg.artifact("features", "imagenet-stride8.npz").path])
    if stage in ("agents", "vision_encoders"):
        kind = "agent" if stage == "agents" else "vision"
        return _with_manifests([p for seed in cfg.agent_seeds for p in checkpoint_paths(cfg, seed, kind)])
    if stage == "embeddings":
        return [embeddings_root(cfg.cache_dir)]
    if stage == "conversion":
        from lva import models as M
        from lva.catalogue import model_names
        from lva.config import default_cache_dir

        specs = [M.get_spec(n) for n in model_names(cfg) if M.get_spec(n).loader == "gguf"]
        return [Path(cfg.cache_dir) / M.converted_dir(s).relative_to(default_cache_dir()) for s in specs]
    return []


def _with_manifests(paths: Sequence[Path]) -> list[Path]:
    from lva.cache import manifest_path

    return [q for p in paths for q in (p, manifest_path(p))]


def seed_plan(selected: Sequence[str], available: Callable[[str], bool]) -> tuple[list[str], list[str]]:
    """(stages whose artifacts to copy from the inputs cache, needed stages found nowhere: built
    before the clock starts), for running ``selected`` in a scratch cache."""
    copy, missing, todo = [], [], [need for s in selected for need in STAGES[s][1]]
    while todo:
        need = todo.pop(0)
        if need in selected or need in copy or need in missing:
            continue
        if available(need):
            copy.append(need)
        else:
            missing.append(need)
            todo += STAGES[need][1]
    return [s for s in STAGES if s in copy], [s for s in STAGES if s in missing]


def _link_or_copy(src: Path, dest: Path, link: bool) -> None:
    """Copy ``src`` (file or folder) to ``dest``; ``link``: symlink each file instead (folders real)."""
    for path in sorted(src.rglob("*")) if src.is_dir() else [src]:
        target = dest / path.relative_to(src) if src.is_dir() else dest
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if link:
            target.symlink_to(path.resolve())
        else:
            shutil.copy2(path, target)


def seed_inputs(selected: Sequence[str], profile: str, cache: Path, inputs: Path) -> list[str]:
    """Copy into the scratch ``cache`` what ``selected`` needs and will not build (converted models:
    linked, never copied); returns the lines to print."""
    cfg = get_config(profile, cache_dir=cache)

    def sources(stage: str) -> list[tuple[Path, Path]]:
        return [(inputs / p.relative_to(cache), p) for p in artifacts(stage, cfg)]

    def available(stage: str) -> bool:
        pairs = sources(stage)
        return bool(pairs) and all(src.exists() for src, _ in pairs)

    copy, missing = seed_plan(selected, lambda s: skipped_reason(s, cfg) is not None or available(s))
    lines = []
    for stage in copy:
        for src, dest in sources(stage):
            _link_or_copy(src, dest, link=stage == "conversion")
        if sources(stage):
            what = "converted models linked" if stage == "conversion" else f"{stage} copied"
            lines.append(f"inputs: {what} from {inputs}")
    for stage in missing:
        if stage != "conversion" or "embeddings" not in selected:
            lines.append(
                f"inputs: {stage} not in {inputs}: built, untimed, by the stage that needs it, before "
                "its clock starts (slow)"
            )
        else:
            lines.append(f"inputs: no converted models in {inputs}: the embeddings stage converts them in its time")
    return lines


def run_child(stage: str, profile: str, cache: Path, run_dir: Path, reference: bool = False) -> dict[str, Any]:
    """One stage (or its reference) in a child process: its result, wall time and peak memory."""
    tag = f"{stage}-reference" if reference else stage
    result, log = run_dir / f"{tag}.json", run_dir / f"{tag}.log"
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        stage,
        "--profile",
        profile,
        "--result",
        str(result),
    ]
    env = {**os.environ, "LVA_CACHE": str(cache), "LVA_NO_PROGRESS": "1"}
    t0 = time.perf_counter()
    with open(log, "w") as fh, PeakMemory(interval=SAMPLE_S) as tree:  # the child and its workers, summed
        proc = subprocess.Popen(cmd + ["--reference"] * reference, stdout=fh, stderr=subprocess.STDOUT, env=env)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # interrupted: the stage goes too
            proc.kill()
            proc.wait()
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall, tree_kb = time.perf_counter() - t0, int(tree.peak_gb * 1e9 / 1024)
    lines = log.read_text(errors="replace").splitlines()
    if proc.returncode != 0 or not result.exists():
        tail = "\n".join("    " + line for line in lines[-15:])
        raise RuntimeError(f"{tag} failed (exit code {proc.returncode}); the end of its log:\n{tail}")
    out = json.loads(result.read_text())
    out["process_wall_s"] = wall
    out["process_peak_kb"] = max(usage.ru_maxrss, tree_kb)  # the whole child, reading its inputs included
    out["peak_kb"] = max(out.get("peak_kb", 0), tree_kb)
    out["notes"] = out.get("notes", []) + [line for line in lines if line.startswith("lva: ")]
    return out


def row_for(stage: str, out: dict[str, Any], ref: dict[str, Any] | None) -> dict[str, Any]:
    unit = STAGES[stage][0]
    rate = out["done"] / out["seconds"] if out["done"] and out["seconds"] > 0 else None
    row = {
        "stage": stage,
        "status": "ok",
        "seconds": out["seconds"],
        "done": out["done"],
        "unit": unit,
        "throughput": rate,
        "peak_mb": out["peak_kb"] / 1024,
        "process_wall_s": out.get("process_wall_s"),
        "notes": list(out["notes"]),
        "reference": None,
        "ratio": None,
    }
    if ref is not None:
        row["reference"] = {k: v for k, v in ref.items() if k != "notes"}
        row["notes"] += ref["notes"]
        if "ratio" in ref:  # measured on the same work as the reference
            row["ratio"] = ref["ratio"]
        else:
            row["ratio"] = rate / ref["throughput"] if rate else None
    return row


def _num(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def _mb(mb: float) -> str:
    return f"{mb / 1024:.2f} GB" if mb >= 1024 else f"{mb:.0f} MB"


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The table: one line per stage, then its notes."""
    head = ("stage", "wall s", "throughput", "peak memory", "reference", "ratio")
    body = []
    for r in rows:
        if r["status"] != "ok":
            body.append((r["stage"], "-", r.get("reason", r["status"]), "", "", ""))
            continue
        ref = r["reference"] or {}
        if "throughput" in ref:
            ref_text = f"{ref['label']} {_num(ref['throughput'])} {ref['unit']}/s"
        else:
            ref_text = ref.get("label", "-")
        rate = f"{_num(r['throughput'])} {r['unit']}/s" if r["throughput"] else "- (cached: nothing computed)"
        ratio = f"{r['ratio']:.1f}x" if r["ratio"] else "-"
        body.append((r["stage"], f"{r['seconds']:.1f}", rate, _mb(r["peak_mb"]), ref_text, ratio))
    widths = [max(len(str(line[i])) for line in (head, *body)) for i in range(len(head))]
    right = {1, 3, 5}

    def fmt(line: Sequence[str]) -> str:
        return "  ".join(
            str(c).rjust(w) if i in right else str(c).ljust(w) for i, (c, w) in enumerate(zip(line, widths))
        )

    lines = [fmt(head), fmt(["-" * w for w in widths]), *map(fmt, body)]
    notes = [f"  {r['stage']}: {n}" for r in rows for n in r.get("notes", [])]
    return "\n".join(lines + (["", "notes:", *notes] if notes else []))


def _duration(s: float) -> str:
    return f"{int(s // 60)} min {s % 60:.0f} s" if s >= 60 else f"{s:.1f} s"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        return child_main(args)
    start = time.perf_counter()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # killed: still stop the stage and clean up
    run_dir = Path(tempfile.mkdtemp(prefix="lva-bench-"))
    scratch = args.cache is None
    cache = run_dir / "cache" if scratch else args.cache.expanduser().resolve()
    cfg = get_config(args.profile, cache_dir=cache)
    rows: list[dict[str, Any]] = []
    failed = None
    print(
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (other jobs skew timings); profile "
        f"{args.profile}; {'scratch' if scratch else 'existing'} cache {cache}; stages: {', '.join(args.selected)}"
    )
    try:
        if scratch:
            inputs = args.inputs or Path(
                os.environ.get("LVA_CACHE") or Path(__file__).resolve().parents[1] / ".cache" / "lva"
            )
            for line in seed_inputs(args.selected, args.profile, cache, inputs.expanduser().resolve()):
                print(line)
        for stage in args.selected:
            if (reason := skipped_reason(stage, cfg)) is not None:
                rows.append({"stage": stage, "status": "skipped", "reason": reason, "notes": []})
                continue
            print(f"running {stage} ...", flush=True)
            try:
                out = run_child(stage, args.profile, cache, run_dir)
                ref = run_child(stage, args.profile, cache, run_dir, reference=True) if stage in REFERENCES else None
            except RuntimeError as err:
                failed = str(err)
                rows.append({"stage": stage, "status": "failed", "reason": "failed (see below)", "notes": []})
                break
            rows.append(row_for(stage, out, ref))
            print(f"  {rows[-1]['seconds']:.1f} s", flush=True)
        total = time.perf_counter() - start
        done = [r for r in rows if r["status"] == "ok"]
        peak = max(done, key=lambda r: r["peak_mb"], default=None)
        print()
        print(format_table(rows))
        print()
        print(
            f"total wall time {_duration(total)} (the stages' clocks: {_duration(sum(r['seconds'] for r in done))}; "
            f"the rest is starting processes, reading inputs and the references)"
        )
        if peak is not None:
            print(f"overall peak memory {_mb(peak['peak_mb'])} ({peak['stage']})")
        if failed:
            print(f"error: {failed}", file=sys.stderr)
        if args.json is not None:
            args.json.write_text(
                json.dumps(
                    {
                        "profile": args.profile,
                        "cache": str(cache),
                        "scratch": scratch,
                        "cpus": os.cpu_count(),
                        "load_average": os.getloadavg()[0],
                        "stages": rows,
                        "total_wall_s": total,
                        "overall_peak_mb": peak["peak_mb"] if peak else None,
                        "error": failed,
                    },
                    indent=2,
                    default=float,
                )
            )
    finally:
        if args.keep:
            print(f"kept: {run_dir} (cache, and each stage's log and result)")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
