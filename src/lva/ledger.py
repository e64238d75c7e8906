"""The ledger of runs, and the reference pages' generated tables.

One small JSON file per machine and profile, ``ledger/<processor>-<profile>.json``, records the
runs of the book on that machine: the processor, its vector instructions, cores and memory, the
code version, each chapter's wall time and peak memory, the ``make`` targets' times when known,
chapter 6's headline numbers, and each language model's load and embedding seconds, device and
peak GPU memory (:func:`model_timings`, from its embeddings' cache records).
``python -m lva ledger --profile fast`` adds the run of a finished build (the runner's
``timings-<profile>.json`` and ``memory-<profile>.json``, the cached headline table and embeddings);
runs measured elsewhere are entered as data, with their source.

:mod:`lva.reference` renders them into the reference pages' tables.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from .config import ALL_PROFILES, Config, get_config

#: Bumped when a ledger file's layout changes.
LEDGER_SCHEMA = 1
LEDGER_DIR = Path("ledger")
#: The ``make`` targets whose wall time a run may record (seconds, with the install where it ran).
MAKE_TARGETS = ("test", "book", "student")
#: The ``source`` of a run this machine recorded from its own build.
COMMAND = "python -m lva ledger"
#: A run's fields; ``exclusive``: the build had the machine to itself (only then are its times the machine's).
_RUN_KEYS = {
    "date",
    "source",
    "commit",
    "machine",
    "exclusive",
    "chapters",
    "notebooks_s",
    "book_build_s",
    "peak_gb",
    "make",
    "headline",
    "note",
}
#: Fields a run may lack: runs recorded before the field existed.
_OPTIONAL_RUN_KEYS = {"models"}
#: What a run records of each language model (:func:`model_timings`).
_MODEL_KEYS = {"load_s", "embed_s", "device", "peak_gpu_gb", "passes"}
_MACHINE_KEYS = ("processor", "vector_isa", "cores", "memory_gb")


# --- this machine and this build ----------------------------------------------------------------


def processor_name(raw: str) -> str:
    """A processor's name without trademarks, clock or filler: ``Intel(R) Xeon(R) CPU @ 2.2GHz`` -> ``Intel Xeon``."""
    name = re.sub(r"\((R|TM|tm|r)\)|@.*$|\b(CPU|Processor|\d+-Core)\b", " ", raw)
    return " ".join(name.split()) or "unknown processor"


def slug(text: str) -> str:
    """A file-name form of ``text``: lowercase, words joined by ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def vector_isa(flags: Iterable[str]) -> str:
    """The widest vector instruction set among a processor's flags: what decides its kernels' speed and last bits."""
    flags = set(flags)
    return "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "other"


def this_machine(cpuinfo: str | None = None) -> dict[str, Any]:
    """Processor, vector instruction set, cores and memory of the machine this runs on."""
    import platform

    import psutil

    if cpuinfo is None:
        cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    fields = dict(line.split(":", 1) for line in cpuinfo.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "processor": processor_name(fields.get("model name") or platform.processor() or ""),
        "vector_isa": vector_isa(fields.get("flags", "").split()),
        "cores": cores,
        "memory_gb": round(psutil.virtual_memory().total / 1e9, 1),
    }


def code_version(root: Path) -> str:
    """``git describe``-like version of ``root``: the short commit, ``+changes`` when tracked files differ."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        return commit + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def finished_build(chapters_dir: Path, profile: str) -> tuple[dict[str, float], dict[str, float], str, str | None]:
    """Each chapter's wall time and peak memory from a finished build, when it finished (UTC), and
    the code it ran (None where the runner did not record it). The runner writes
    ``timings-<profile>.json`` only once every chapter has run."""
    if profile not in ALL_PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid profiles: {', '.join(ALL_PROFILES)}")
    timings = chapters_dir / f"timings-{profile}.json"
    if not timings.exists():
        raise ValueError(
            f"no finished {profile} build in {chapters_dir} (no {timings.name}): "
            f"run `python -m lva book --profile {profile}` first"
        )
    seconds = {k: float(v) for k, v in json.loads(timings.read_text()).items()}
    memory = chapters_dir / f"memory-{profile}.json"
    peaks = json.loads(memory.read_text()).get("peak_gb_per_notebook", {}) if memory.exists() else {}
    finished = dt.datetime.fromtimestamp(timings.stat().st_mtime, dt.UTC)
    commit = chapters_dir / f"commit-{profile}.json"
    ran = json.loads(commit.read_text()).get("commit") if commit.exists() else None
    return seconds, {k: float(v) for k, v in peaks.items()}, finished.strftime("%Y-%m-%dT%H:%MZ"), ran


def cached_headline(cfg: Config) -> dict[str, Any]:
    """Chapter 6's headline numbers (mutual k-NN@k of the anchor against every representation),
    read through the pipeline from the cache the build left, where every stage loads its artifact
    (a cache without chapter 6's tables is refused rather than filled)."""
    tables = sorted((Path(cfg.cache_dir) / "alignment").glob("headline-*.json"))
    if not tables:
        raise ValueError(
            f"no cached headline table in {Path(cfg.cache_dir) / 'alignment'}: "
            f"chapter 6 has not run with this cache (run `python -m lva book --profile {cfg.profile}`)"
        )
    from . import pipeline

    table = pipeline.alignment(cfg, pipeline.embeddings(cfg, show_progress=False))
    rows = table[table["metric"] == "mutual_knn"]
    return {
        "metric": "mutual_knn",
        "k": cfg.align.k,
        "anchor": pipeline.anchor(cfg),
        "scores": {str(m): round(float(s), 4) for m, s in zip(rows["model"], rows["score"])},
    }


def model_timings(cfg: Config) -> dict[str, dict[str, Any]]:
    """Each language model of ``cfg``'s profile whose embeddings are cached: the seconds spent loading
    its weights and running its embedding passes (every pooling, every layer), the device, and the
    peak GPU memory of its largest pass (None on a CPU), summed over its ``passes`` as the cache
    files' records hold them (:func:`lva.embeddings.cache_info`, in the default cache folder).
    Poolings of one forward pass share a record, counted once; a model not cached is left out."""
    from . import embeddings as E
    from . import models as M
    from .catalogue import build_models
    from .names import LANGUAGE_FAMILIES

    out: dict[str, dict[str, Any]] = {}
    for name in build_models(cfg):
        spec = M.get_spec(name)
        if spec.family not in LANGUAGE_FAMILIES:
            continue
        passes: dict[tuple[Any, ...], dict[str, Any]] = {}
        for pooling in spec.all_poolings:
            try:
                info = E.cache_info(name, None, pooling)
            except FileNotFoundError:
                continue
            fields = (info["load_s"], info["embed_s"], info["device"], info["peak_gpu_gb"])
            passes[(M.prompt_template(pooling), *fields)] = info
        if not passes:
            continue
        runs = list(passes.values())

        def total(key: str, runs: list[dict[str, Any]] = runs) -> float | None:
            values = [r[key] for r in runs]
            return None if any(v is None for v in values) else round(float(sum(values)), 3)

        peaks = [float(r["peak_gpu_gb"]) for r in runs if r["peak_gpu_gb"] is not None]
        devices = dict.fromkeys(str(r["device"]) for r in runs if r["device"])
        out[name] = {
            "load_s": total("load_s"),
            "embed_s": total("embed_s"),
            "device": ", ".join(devices) or None,
            "peak_gpu_gb": max(peaks) if peaks else None,
            "passes": len(runs),
        }
    return out


def run_entry(
    profile: str,
    chapters_dir: Path,
    root: Path,
    headline: Callable[[Config], dict[str, Any]] | None,
    make: Mapping[str, float | None] | None = None,
    book_build_s: float | None = None,
    note: str = "",
    machine: Mapping[str, Any] | None = None,
    exclusive: bool = True,
    models: Callable[[Config], dict[str, dict[str, Any]]] | None = model_timings,
) -> dict[str, Any]:
    """The ledger record of the finished build in ``chapters_dir`` on this machine (``exclusive``:
    nothing else ran meanwhile; ``models``: each language model's times, :func:`model_timings`)."""
    seconds, peaks, finished, ran = finished_build(chapters_dir, profile)
    unknown = set(make or {}) - set(MAKE_TARGETS)
    if unknown:
        raise ValueError(f"unknown make targets {sorted(unknown)}; valid: {', '.join(MAKE_TARGETS)}")
    cfg = get_config(profile)
    return {
        "date": finished,
        "source": COMMAND,
        "commit": ran or code_version(root),
        "machine": dict(machine or this_machine()),
        "exclusive": exclusive,
        "chapters": {stem: {"seconds": round(s, 1), "peak_gb": peaks.get(stem)} for stem, s in seconds.items()},
        "notebooks_s": round(sum(seconds.values()), 1),
        "book_build_s": book_build_s,
        "peak_gb": max(peaks.values()) if peaks else None,
        "make": {t: (make or {}).get(t) for t in MAKE_TARGETS},
        "headline": headline(cfg) if headline else None,
        "models": models(cfg) if models else None,
        "note": note,
    }


# --- ledger files ---------------------------------------------------------------------------------


def ledger_path(ledger_dir: Path, machine: Mapping[str, Any], profile: str) -> Path:
    """The ledger file of a machine and profile: ``<processor>-<profile>.json``."""
    return ledger_dir / f"{slug(machine['processor'])}-{profile}.json"


def problems(data: Any) -> list[str]:
    """What is wrong with a ledger file's content (empty when it is valid)."""
    if not isinstance(data, dict):
        return ["not a JSON object"]
    found = []
    if data.get("schema") != LEDGER_SCHEMA:
        found.append(f"schema {data.get('schema')!r}, expected {LEDGER_SCHEMA}")
    if data.get("profile") not in ALL_PROFILES:
        found.append(f"profile {data.get('profile')!r} is not one of {', '.join(ALL_PROFILES)}")
    runs = data.get("runs")
    if not isinstance(runs, list) or not runs:
        return [*found, "no runs"]
    for i, run in enumerate(runs):
        where = f"runs[{i}]"
        if not isinstance(run, dict):
            found.append(f"{where} is not an object")
            continue
        if missing := _RUN_KEYS - set(run):
            found.append(f"{where} lacks {sorted(missing)}")
        if unexpected := set(run) - _RUN_KEYS - _OPTIONAL_RUN_KEYS:
            found.append(f"{where} has unknown keys {sorted(unexpected)}")
        models = run.get("models") or {}
        if not isinstance(models, dict):
            found.append(f"{where}.models is not an object")
        else:
            for name, model in models.items():
                if not isinstance(model, dict) or set(model) != _MODEL_KEYS:
                    found.append(f"{where}.models.{name} must hold {', '.join(sorted(_MODEL_KEYS))}")
        machine = run.get("machine") or {}
        if [k for k in _MACHINE_KEYS if k not in machine]:
            found.append(f"{where}.machine lacks one of {', '.join(_MACHINE_KEYS)}")
        for stem, chapter in (run.get("chapters") or {}).items():
            if not isinstance(chapter, dict) or set(chapter) != {"seconds", "peak_gb"}:
                found.append(f"{where}.chapters.{stem} must hold seconds and peak_gb")
        if not re.fullmatch(r"\d{4}-\d\d-\d\d(T\d\d:\d\dZ)?", str(run.get("date"))):
            found.append(f"{where}.date {run.get('date')!r} is not YYYY-MM-DD[THH:MMZ]")
    return found


def load(path: Path) -> dict[str, Any]:
    """A ledger file, checked; a malformed one raises ``ValueError`` naming the file and the problem."""
    data = json.loads(path.read_text())
    if found := problems(data):
        raise ValueError(f"{path}: " + "; ".join(found))
    return data


def record(ledger_dir: Path, profile: str, run: dict[str, Any]) -> Path:
    """Add ``run`` to its machine's ledger file; a run of the same build (the same date) is replaced."""
    path = ledger_path(ledger_dir, run["machine"], profile)
    data = load(path) if path.exists() else {"schema": LEDGER_SCHEMA, "profile": profile, "runs": []}
    data["runs"] = [r for r in data["runs"] if r["date"] != run["date"]] + [run]
    data["runs"].sort(key=lambda r: r["date"])
    if found := problems(data):
        raise ValueError(f"the new run of {path} is malformed: " + "; ".join(found))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    return path


def ledgers(ledger_dir: Path) -> list[dict[str, Any]]:
    """Every ledger file, checked, sorted by profile and processor."""
    files = [load(p) for p in sorted(ledger_dir.glob("*.json"))]
    return sorted(files, key=lambda d: (ALL_PROFILES.index(d["profile"]), d["runs"][-1]["machine"]["processor"]))
