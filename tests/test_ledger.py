"""The ledger of runs, the reference pages' generated tables, and no measured number typed into those pages."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lva import ledger as L
from lva import reference as R
from lva.__main__ import main
from lva.config import PROFILES, repo_root

ROOT = repo_root()
STEMS = ["01_environment", "02_agent", "03_training"]
HEADLINE = {
    "metric": "mutual_knn",
    "k": 15,
    "anchor": "agent-seed0",
    "scores": {"agent-seed1": 0.7, "minilm": 0.51, "bag-of-words": 0.49},
}


def fake_build(folder: Path, profile: str = "fast") -> Path:
    """What ``python -m lva book`` leaves behind: the chapters' wall times and peak memory."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"timings-{profile}.json").write_text(json.dumps(dict(zip(STEMS, [12.34, 4.0, 150.0]))))
    peaks = {"peak_gb_per_notebook": dict(zip(STEMS, [0.5, 0.4, 2.1]))}
    (folder / f"memory-{profile}.json").write_text(json.dumps(peaks))
    (folder / f"commit-{profile}.json").write_text(json.dumps({"commit": "abc1234+changes"}))
    return folder


def fake_headline(cfg):
    return {**HEADLINE, "k": cfg.align.k}


def test_the_command_writes_a_valid_entry_from_a_finished_build(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(L, "cached_headline", fake_headline)  # the pipeline's cached table, without a cache
    chapters, ledger = fake_build(tmp_path / "chapters"), tmp_path / "ledger"
    args = ["ledger", "--profile", "fast", "--chapters", str(chapters), "--ledger", str(ledger), "--make-book", "376"]
    assert main(args) == 0
    path = Path(capsys.readouterr().out.strip())
    machine = L.this_machine()
    assert path == ledger / f"{L.slug(machine['processor'])}-fast.json"
    data = L.load(path)  # valid, or ValueError
    (run,) = data["runs"]
    assert data["profile"] == "fast" and run["machine"] == machine
    assert run["chapters"]["01_environment"] == {"seconds": 12.3, "peak_gb": 0.5}
    assert run["notebooks_s"] == pytest.approx(166.3) and run["peak_gb"] == 2.1
    assert run["make"] == {"test": None, "book": 376.0, "student": None}
    assert run["headline"]["scores"] == HEADLINE["scores"]
    assert run["commit"] == "abc1234+changes" and run["exclusive"] and run["source"] == L.COMMAND
    assert run["models"] == {}  # no embeddings in this test's cache: no model's times to read
    assert main(args) == 0  # the same build again replaces its run
    assert len(L.load(path)["runs"]) == 1


def test_a_missing_build_or_a_malformed_file_fails_naming_the_fix(tmp_path):
    with pytest.raises(ValueError, match="python -m lva book --profile fast"):
        L.run_entry("fast", tmp_path, ROOT, None)
    with pytest.raises(ValueError, match="valid profiles: fast, full"):
        L.run_entry("quick", tmp_path, ROOT, None)
    bad = tmp_path / "x-fast.json"
    bad.write_text(json.dumps({"schema": L.LEDGER_SCHEMA, "profile": "fast", "runs": [{"date": "yesterday"}]}))
    with pytest.raises(ValueError, match=r"x-fast.json: runs\[0\] lacks .*date 'yesterday'"):
        L.load(bad)


def test_a_runs_models_are_optional_but_checked_when_present():
    run = fake_run("Intel Xeon", "2026-12-06", 13.0, 0.69)  # recorded before runs held their models' times
    data = {"schema": L.LEDGER_SCHEMA, "profile": "paper", "runs": [run]}
    assert L.problems(data) == [] and R.latest_model_times([data], "paper") is None
    run["models"] = {"bert-base": {"embed_s": None, "device": "cpu"}}
    assert L.problems(data) == ["runs[0].models.bert-base must hold device, embed_s, load_s, passes, peak_gpu_gb"]
    run["models"] = ["bert-base"]
    assert L.problems(data) == ["runs[0].models is not an object"]


def test_machine_names_and_vector_classes():
    assert L.processor_name("Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz") == "Intel Xeon Platinum 8481C"
    assert L.processor_name("AMD EPYC 7B13 64-Core Processor") == "AMD EPYC 7B13"
    assert L.slug("AMD EPYC 7B13") == "amd-epyc-7b13"
    assert L.vector_isa(["sse2", "avx2", "avx512f"]) == "AVX-512" and L.vector_isa(["avx2"]) == "AVX2"
    info = L.this_machine("model name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu avx2 avx512f\n")
    assert info["processor"] == "Intel Xeon" and info["vector_isa"] == "AVX-512" and info["cores"] >= 1


def test_durations_read_as_a_person_writes_them():
    assert [R.duration(s) for s in (4.2, 4, 13.4, 146, 1272.6, 3725, None)] == [
        "4.2 s",
        "4 s",
        "13 s",
        "2 min 26 s",
        "21 min 13 s",
        "1 h 2 min",
        "–",
    ]


def test_the_generator_renders_every_ledger_file():
    files = L.ledgers(ROOT / L.LEDGER_DIR)
    assert {d["profile"] for d in files} == set(PROFILES)
    pages = R.pages(ROOT / L.LEDGER_DIR)
    for data in files:
        timed = ([r for r in data["runs"] if r["exclusive"]] or data["runs"])[-1]
        assert R._column(timed) in pages[f"ledger-times-{data['profile']}"]
        latest = data["runs"][-1]
        if latest["headline"]:
            assert R._column(latest) in pages[f"ledger-headline-{data['profile']}"]
        for run in data["runs"]:
            assert f"{run['commit'].replace('+', ' +')}, {run['date'][:10]} |" in pages["ledger-runs"]


def fake_run(processor: str, date: str, seconds: float, ceiling: float, exclusive: bool = True) -> dict:
    return {
        "date": date,
        "source": "test",
        "commit": "abc",
        "note": "",
        "book_build_s": None,
        "exclusive": exclusive,
        "machine": {"processor": processor, "vector_isa": "AVX2", "cores": 2, "memory_gb": None},
        "chapters": {"01_environment": {"seconds": seconds, "peak_gb": None}},
        "notebooks_s": seconds,
        "peak_gb": None,
        "make": dict.fromkeys(L.MAKE_TARGETS),
        "headline": {**HEADLINE, "scores": {"agent-seed1": ceiling}},
    }


def test_the_tables_show_the_spread_between_machines_and_times_of_builds_run_alone(tmp_path):
    L.record(tmp_path, "fast", fake_run("Intel Xeon", "2026-12-06", 13.0, 0.69))
    L.record(tmp_path, "fast", fake_run("Intel Xeon", "2026-12-07", 31.0, 0.70, exclusive=False))
    L.record(tmp_path, "fast", fake_run("AMD EPYC", "2026-12-07", 22.0, 0.78))
    files = L.ledgers(tmp_path)
    headline = R.headline_table(files, "fast")
    assert re.search(r"\| `agent-seed1` \| 0\.78 \| 0\.70 \| 0\.08 \|", headline), headline
    times = R.times_table(files, "fast")  # the shared build's times are not the Xeon's
    assert "| chapter 1 (environment) | 22 s, – | 13 s, – |" in times and "31 s" not in times
    assert "31 s (machine shared)" in R.runs_table(files)
    assert "No run of the `full` profile" in R.times_table(files, "full")


def test_write_pages_writes_what_the_reference_pages_include(tmp_path):
    (tmp_path / "ledger").mkdir()
    written = {p.name for p in R.write_pages(tmp_path)}
    for page in ("reproduce.md", "models.md"):
        included = set(re.findall(r"```\{include\} _generated/(\S+)", (ROOT / "book" / page).read_text()))
        assert included and included <= written, f"{page} includes {included - written}, which nothing writes"


def test_the_models_tables_list_every_registry_entry_with_its_source_and_licence():
    from lva.models import REGISTRY

    text = "\n".join(R.models_tables().values())
    for spec in REGISTRY.values():
        assert f"**{spec.name}**" in text and spec.licence in text
        assert not spec.sha256 or spec.sha256[:10] in text


# --- no measured number typed into the reference pages ---------------------------------------------

#: Numbers the reference pages may type: versions and definitions, not measurements.
ALLOWED = ("Python 3.11",)
_FENCE = re.compile(r"^(```+)(?!\{)[^\n]*\n.*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)  # code blocks, not directives
_MEASURED = re.compile(
    r"(?<![\w.])\d[\d,.]*(?:\s?(?:%|s|ms|µs|min|minutes?|seconds?|h|hours?|[KMGT]i?B|GFLOP/s)|x|×)(?![\w/])"  # a unit
    r"|(?<![\w.\-])\d[\d,]*\.\d+(?![\w.])",  # a decimal (not a version like 1.2.3 or a name like Qwen2.5)
    re.IGNORECASE,
)


def typed_numbers(markdown: str) -> list[str]:
    """Measured-looking numbers in a page's prose: decimals, times, sizes, percentages, ratios."""
    text = _FENCE.sub("", markdown)
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code
    text = re.sub(r"\{cite:[pt]\}", "", text)
    for allowed in ALLOWED:
        text = text.replace(allowed, "")
    return [m.group(0) for m in _MEASURED.finditer(text)]


def test_the_scan_finds_measured_numbers_and_skips_code_names_and_versions():
    found = typed_numbers(
        "aligns at about 0.07, took 13 s or 2 min, 5.2 GB, 97% and 2.1x faster;\n"
        "```bash\nmake book  # 6 min\n```\n"
        "`0.29` Qwen2.5-Coder-0.5B v1.2.3 Python 3.11, k = 15, 7 x 7 views\n"
    )
    assert found == ["0.07", "13 s", "2 min", "5.2 GB", "97%", "2.1x"]


@pytest.mark.parametrize("page", ["reproduce.md", "models.md"])
def test_no_measured_number_is_typed_into_a_reference_page(page):
    found = typed_numbers((ROOT / "book" / page).read_text())
    assert not found, f"book/{page} types {found}: generate them (lva.ledger) or link the chapter that computes them"


def test_every_model_cites_its_paper_from_the_bibliography():
    """The models page cites each model (``ModelSpec.cite``): a key missing from references.bib would break the book."""
    from lva.models import REGISTRY

    keys = set(re.findall(r"^@\w+\{([^,\s]+),", (ROOT / "book" / "references.bib").read_text(), re.MULTILINE))
    for spec in REGISTRY.values():
        if spec.family != "control":
            cited = [k.strip() for k in spec.cite.split(",") if k.strip()]
            assert cited and set(cited) <= keys, f"{spec.name}: cite={spec.cite!r}, keys must be in references.bib"
