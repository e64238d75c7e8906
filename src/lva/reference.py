"""The reference pages' generated tables: the ledger of runs (:mod:`lva.ledger`), the profiles
(:mod:`lva.config`) and the model registry (:mod:`lva.models.registry`) as Markdown.

:func:`write_pages` writes them to ``book/_generated/`` before the book is built; the reference
pages include them, so no measured number is typed into a page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .config import PAPER_PROFILE, PROFILES, Config, get_config, repo_root
from .ledger import COMMAND, LEDGER_DIR, MAKE_TARGETS, ledgers

GENERATED_DIR = Path("book") / "_generated"


def duration(seconds: float | None) -> str:
    """``13 s``, ``2 min 26 s``, ``1 h 2 min``; an en dash when unknown."""
    if seconds is None:
        return "–"
    s = round(seconds)
    if s < 60:
        return f"{seconds:.1f} s" if seconds < 10 and not float(seconds).is_integer() else f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def gigabytes(value: float | None) -> str:
    """``5.2 GB``; an en dash when unknown."""
    return "–" if value is None else f"{value:.1f} GB"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown pipe table."""

    def line(cells: Sequence[Any]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *(line(r) for r in rows)]) + "\n"


def _column(run: Mapping[str, Any]) -> str:
    m = run["machine"]
    shared = "" if run["exclusive"] else " (machine shared)"
    return f"{m['processor']} ({m['vector_isa']}, {m['cores']} cores), {run['commit']}{shared}"


def _chapter_label(stem: str) -> str:
    number, _, name = stem.partition("_")
    return f"chapter {int(number)} ({name.replace('_', ' ')})" if number.isdigit() else stem


def runs_table(files: Sequence[Mapping[str, Any]]) -> str:
    """Every run in the ledger, newest first within each profile."""
    rows = []
    for data in files:
        for run in reversed(data["runs"]):
            m = run["machine"]
            memory = f", {gigabytes(m['memory_gb'])}" if m["memory_gb"] else ""
            rows.append(
                [
                    f"`{data['profile']}` on {m['processor']}: {m['vector_isa']}, {m['cores']} cores{memory}",
                    f"{run['commit'].replace('+', ' +')}, {run['date'][:10]}",
                    duration(run["notebooks_s"]) + ("" if run["exclusive"] else " (machine shared)"),
                    gigabytes(run["peak_gb"]),
                    f"`{COMMAND}`" if run["source"] == COMMAND else run["source"],
                ]
            )
    if not rows:
        return "No run is in the ledger yet.\n"
    return table(["profile and processor", "version, date", "all chapters", "peak memory", "source"], rows)


def times_table(files: Sequence[Mapping[str, Any]], profile: str) -> str:
    """Wall time and peak memory of each chapter and ``make`` target: the latest run of each machine
    that had the machine to itself (else its latest run, marked)."""
    latest = [([r for r in d["runs"] if r["exclusive"]] or d["runs"])[-1] for d in files if d["profile"] == profile]
    if not latest:
        return f"No run of the `{profile}` profile is in the ledger yet.\n"
    stems = sorted({s for run in latest for s in run["chapters"]})

    def cell(run: Mapping[str, Any], stem: str) -> str:
        c = run["chapters"].get(stem)
        return "–" if c is None else f"{duration(c['seconds'])}, {gigabytes(c['peak_gb'])}"

    rows = [[_chapter_label(s), *(cell(r, s) for r in latest)] for s in stems]
    rows.append(
        [
            "**all chapters** (peak memory)",
            *(f"**{duration(r['notebooks_s'])}**, {gigabytes(r['peak_gb'])}" for r in latest),
        ]
    )
    rows.append(["Jupyter Book build", *(duration(r["book_build_s"]) for r in latest)])
    rows += [[f"`make {t}`", *(duration(r["make"].get(t)) for r in latest)] for t in MAKE_TARGETS]
    return table(["step (wall time, peak memory)", *(_column(r) for r in latest)], rows)


def _latest_headlines(files: Sequence[Mapping[str, Any]], profile: str) -> list[Mapping[str, Any]]:
    """The latest run of ``profile`` that recorded headline numbers on each kind of machine (its
    processor and vector instructions: the kernels, and so the last bits, depend on both)."""
    latest: dict[tuple[str, str], Mapping[str, Any]] = {}
    for data in files:
        if data["profile"] == profile:
            for run in data["runs"]:
                if run["headline"]:
                    latest[(run["machine"]["processor"], run["machine"]["vector_isa"])] = run
    return list(latest.values())


def headline_by_machine(name: str, profile: str, root: Path | None = None) -> dict[str, float]:
    """One headline score (mutual k-NN@15 against agent seed 0) on each machine of the ledger:
    ``{"processor (vector ISA)": score}``, for chapter 6 to read its numbers against."""
    files = ledgers((root or repo_root()) / LEDGER_DIR)
    out = {}
    for run in _latest_headlines(files, profile):
        score = run["headline"].get("scores", {}).get(name)
        if score is not None:
            out[f"{run['machine']['processor']} ({run['machine']['vector_isa']})"] = float(score)
    return out


def headline_table(files: Sequence[Mapping[str, Any]], profile: str) -> str:
    """Chapter 6's headline numbers on each machine (latest run) and their spread (largest minus smallest)."""
    latest = _latest_headlines(files, profile)
    if not latest:
        return f"No headline numbers of the `{profile}` profile are in the ledger yet.\n"
    first = latest[0]["headline"]
    names = list(dict.fromkeys(n for r in latest for n in r["headline"].get("scores", {})))
    names.sort(key=lambda n: -sum(n in r["headline"].get("scores", {}) for r in latest))  # shared ones first
    ranges = list(dict.fromkeys(n for r in latest for n in r["headline"].get("ranges", {})))
    rows, spreads = [], {}
    for name in names:
        values = [r["headline"].get("scores", {}).get(name) for r in latest]
        known = [v for v in values if v is not None]
        if len(known) > 1:
            spreads[name] = max(known) - min(known)
        spread = f"{spreads[name]:.2f}" if name in spreads else "–"
        rows.append([f"`{name}`", *("–" if v is None else f"{v:.2f}" for v in values), spread])
    for name in ranges:  # reported as a range over seeds or models: the spread of its ends
        values = [r["headline"].get("ranges", {}).get(name) for r in latest]
        known = [v for v in values if v is not None]
        if len(known) > 1:
            spreads[name] = max(max(v[i] for v in known) - min(v[i] for v in known) for i in (0, 1))
        rows.append(
            [
                name,
                *("–" if v is None else f"{v[0]:.2f}" if v[0] == v[1] else f"{v[0]:.2f}-{v[1]:.2f}" for v in values),
                f"{spreads[name]:.2f}" if name in spreads else "–",
            ]
        )
    what = f"{first['anchor']} against (mutual k-NN@{first['k']})"
    text = table([what, *(_column(r) for r in latest), "spread"], rows)
    if spreads:
        widest = max(spreads, key=spreads.__getitem__)
        median = float(np.median(list(spreads.values())))
        label = f"`{widest}`" if widest in names else widest
        text += (
            f"\nThe widest spread between machines: {label}, {spreads[widest]:.2f}; the median over the "
            f"{len(spreads)} rows measured on more than one, {median:.2f}"
            + (" (a range's spread: the larger change of its two ends)" if ranges else "")
            + ".\n"
        )
    return text


def profiles_table(profiles: Sequence[str] = PROFILES) -> str:
    """What each profile computes, read from its config."""
    cfgs = [get_config(p) for p in profiles]
    rows: list[tuple[str, Callable[[Config], Any]]] = [
        ("demonstrations per task", lambda c: f"{c.demos.episodes_per_task:,}"),
        ("agent vision", lambda c: f"`{c.agent.vision}`"),
        ("agent seeds", lambda c: ", ".join(map(str, c.agent_seeds))),
        (
            "other agents trained",
            lambda c: (
                "; ".join([*(f"`{v}` vision" for v in c.checks.compare_visions if v != c.agent.vision), "no match map"])
                + f" (seed {c.seed})"
            ),
        ),
        ("training epochs, episodes per batch", lambda c: f"{c.train.epochs}, {c.train.batch_episodes}"),
        (
            "vision-grounded encoders: demonstrations per task, epochs",
            lambda c: f"{c.ground.episodes_per_task:,}, {c.ground.epochs}",
        ),
        ("evaluation episodes per task", lambda c: f"{c.checks.eval_episodes_per_task:,}"),
        (
            "expert checks: episodes per task, BabyAI episodes per level",
            lambda c: f"{c.checks.expert_episodes_per_task:,}, {c.checks.bot_episodes:,}",
        ),
        (
            "permutations (Procrustes retrieval), bootstrap resamples",
            lambda c: f"{c.align.n_perm:,} ({c.align.n_perm_retrieval:,}), {c.align.n_boot:,}",
        ),
        ("optional models added", lambda c: ", ".join(f"`{m}`" for m in c.extra_models) or "none"),
    ]
    return table(["setting", *(f"`{p}`" for p in profiles)], [[label, *(get(c) for c in cfgs)] for label, get in rows])


def models_tables() -> dict[str, str]:
    """The registry as the models page shows it: offline zoo, optional extras, online entries, controls."""
    from .models.registry import REGISTRY
    from .names import CONTROL

    def row(spec: Any) -> list[Any]:
        pooling = {"last": "last token", "first": "first token"}.get(spec.pooling, spec.pooling)
        family = f"{spec.family} {{cite:p}}`{spec.cite}`" if spec.cite else spec.family
        where = spec.source.partition(":")[2] + (f", sha256 `{spec.sha256[:10]}…`" if spec.sha256 else "")
        # names in plain text wrap at their hyphens: the table keeps to the width of the text column
        return [f"**{spec.name}**", family, where, spec.size or "–", f"{spec.dim}, {pooling}", spec.licence]

    def header(source: str) -> list[str]:
        return ["name", "family", source, "size", "dim, pooling", "licence"]

    models = [s for s in REGISTRY.values() if s.family != CONTROL]
    pypi = header("PyPI package, pinned sha256")
    out = {
        "models-offline": table(pypi, [row(s) for s in models if s.offline and s.default]),
        "models-optional": table(pypi, [row(s) for s in models if s.offline and not s.default]),
        "models-online": table(header("hub id"), [row(s) for s in models if not s.offline]),
    }
    controls = [
        [f"**{s.name}**", s.dim or "vocabulary size", s.note, s.licence]
        for s in REGISTRY.values()
        if s.family == CONTROL
    ]
    out["models-controls"] = table(["name", "dim", "what it is", "licence"], controls)
    return out


def latest_model_times(files: Sequence[Mapping[str, Any]], profile: str) -> Mapping[str, Any] | None:
    """The latest run of ``profile`` in the ledger that recorded its models' times (one run alone on
    its machine when there is one), or None."""
    runs = [r for d in files if d["profile"] == profile for r in d["runs"] if r.get("models")]
    runs.sort(key=lambda r: (r["exclusive"], r["date"]))
    return runs[-1] if runs else None


def paper_requirements(files: Sequence[Mapping[str, Any]], profile: str = PAPER_PROFILE) -> str:
    """The reproduce page's table of what the paper's models need: the estimates, and the measured
    times and peak GPU memory of the latest run in the ledger (:func:`latest_model_times`) when there is one."""
    from .models.requirements import requirements_markdown

    run = latest_model_times(files, profile)
    if run is None:
        return requirements_markdown(profile)
    return requirements_markdown(profile, run["models"], f"{_column(run)}, {run['date'][:10]}")


def pages(ledger_dir: Path) -> dict[str, str]:
    """Every generated table by file stem."""
    files = ledgers(ledger_dir)
    out = {
        "ledger-runs": runs_table(files),
        "profiles": profiles_table(),
        **models_tables(),
        "paper-requirements": paper_requirements(files),
    }
    for profile in PROFILES:
        out[f"ledger-times-{profile}"] = times_table(files, profile)
        out[f"ledger-headline-{profile}"] = headline_table(files, profile)
    return out


def write_pages(root: Path | None = None) -> list[Path]:
    """Write the generated tables to ``book/_generated/`` (before the book is built)."""
    root = root or repo_root()
    out = root / GENERATED_DIR
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, text in pages(root / LEDGER_DIR).items():
        path = out / f"{stem}.md"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        written.append(path)
    return written
