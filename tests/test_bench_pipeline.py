"""benchmarks/bench_pipeline.py without the pipeline: arguments, stage selection, the inputs a
scratch cache copies, the table, memory readings and the mutual k-NN reference (a few seconds)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_pipeline.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_pipeline", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_unknown_stage_names_the_valid_ones_and_writes_nothing(bench, tmp_path, capsys, monkeypatch):
    out = tmp_path / "table.json"

    def no_scratch(*args, **kwargs):
        raise AssertionError("a scratch folder was made")

    monkeypatch.setattr(bench.tempfile, "mkdtemp", no_scratch)
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--stages", "alignment,trainig", "--json", str(out)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "'trainig'" in err and "valid stages: " + ", ".join(bench.STAGES) in err
    assert not out.exists()


def test_stage_selection_is_in_pipeline_order(bench):
    assert bench.select_stages("robustness, demonstrations") == ["demonstrations", "robustness"]
    assert "conversion" not in bench.select_stages(None)
    assert bench.select_stages(None, convert=True)[:6] == [
        "demonstrations",
        "visual_features",
        "agents",
        "evaluation",
        "vision_encoders",
        "conversion",
    ]
    assert bench.select_stages("embeddings", convert=True) == ["conversion", "embeddings"]
    with pytest.raises(ValueError, match="no stage named"):
        bench.select_stages(" , ")


def test_seed_plan_copies_missing_inputs_and_follows_what_is_nowhere(bench):
    everywhere = lambda stage: True  # noqa: E731
    assert bench.seed_plan(["alignment"], everywhere) == (["agents", "vision_encoders", "embeddings"], [])
    assert bench.seed_plan(["demonstrations", "visual_features", "agents", "evaluation"], everywhere) == ([], [])
    # embeddings not in the inputs: what builds them is copied or, missing too, named
    copy, missing = bench.seed_plan(["robustness"], lambda s: s not in ("embeddings", "conversion"))
    assert copy == ["agents", "vision_encoders"] and missing == ["conversion", "embeddings"]


def test_table_rows_and_ratios(bench):
    out = {"seconds": 20.0, "done": 18000, "peak_kb": 300 * 1024, "notes": ["18000 episodes"]}
    ref = {"label": "BabyAI bot", "throughput": 100.0, "unit": "episodes", "notes": ["bot note"]}
    demos = bench.row_for("demonstrations", out, ref)
    assert demos["throughput"] == 900.0 and demos["ratio"] == pytest.approx(9.0)
    align = bench.row_for(
        "alignment",
        {**out, "done": 1000, "peak_kb": 2048 * 1024, "notes": []},
        {"label": "per-row k-NN loop", "ratio": 7.5, "notes": []},
    )
    cached = bench.row_for("agents", {**out, "done": 0, "notes": ["loaded"]}, None)
    skipped = {"stage": "visual_features", "status": "skipped", "reason": "skipped: grid", "notes": []}
    text = bench.format_table([demos, skipped, cached, align])
    lines = text.splitlines()
    assert lines[0].split() == ["stage", "wall", "s", "throughput", "peak", "memory", "reference", "ratio"]
    assert "900 episodes/s" in lines[2] and "300 MB" in lines[2] and "BabyAI bot 100 episodes/s" in lines[2]
    assert lines[2].rstrip().endswith("9.0x")
    assert "skipped: grid" in lines[3]
    assert "- (cached: nothing computed)" in lines[4] and cached["ratio"] is None
    assert "50 permutations/s" in lines[5] and "2.00 GB" in lines[5] and lines[5].rstrip().endswith("7.5x")
    assert "  demonstrations: bot note" in lines and "  agents: loaded" in lines
    like_for_like = bench.row_for("demonstrations", out, {**ref, "ratio": 2.1})  # our planner on the bot's episodes
    assert like_for_like["throughput"] == 900.0 and like_for_like["ratio"] == 2.1
    json.dumps([demos, align, cached])  # the --json payload


def test_peak_memory_reading(bench):
    assert bench.peak_kb() > 1000


def test_knn_reference_agrees_with_the_loop(bench):
    rng = np.random.default_rng(0)
    latent = rng.standard_normal((120, 4))
    spaces = {
        name: latent @ rng.standard_normal((4, d)) + rng.standard_normal((120, d))
        for name, d in (("a", 8), ("b", 16), ("c", 32))
    }
    ref = bench.knn_reference(spaces, "a", k=5, repeats=1)
    assert ref["pairs"] == 2 and ref["differ"] == {} and ref["ratio"] > 0
    assert bench.tied_rows(np.eye(6), k=2) == 6  # every other row equally far: ties everywhere


def test_alignment_stage_counts_permutations_unless_its_table_was_cached(bench, monkeypatch):
    import pandas as pd

    from lva import pipeline
    from lva.config import get_config

    cfg = get_config("fast")
    table = pd.DataFrame({"model": ["b", "b"], "metric": ["cka", "mutual_knn"], "n_perm": [1000, 1000]})
    monkeypatch.setattr(bench, "_representations", lambda cfg: ({"agent-seed0": None, "b": None}, 0.0))
    monkeypatch.setattr(pipeline, "alignment", lambda cfg, reps: table)  # recomputed on every call
    assert bench.stage_alignment(cfg)["done"] == 2000

    from lva.cache import Built, stage

    cached = stage(lambda cfg, reps: Built(table, cached=True, seconds=0.1))  # a version that caches its table
    monkeypatch.setattr(pipeline, "alignment", cached)
    out = bench.stage_alignment(cfg)
    assert out["done"] == 0 and "loaded from the cache" in out["notes"][0]
