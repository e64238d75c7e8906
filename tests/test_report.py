"""Chapter 6's tables and verdicts (lva.report) on small synthetic inputs with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lva import alignment as al
from lva import report as rp
from lva import robustness as R
from lva.instructions import all_instructions

INS = all_instructions()
N = len(INS)


def _space(seed: int, noise: float, d: int = 12) -> np.ndarray:
    rng = np.random.default_rng(seed)
    codes = {m: rng.standard_normal(d) for m in sorted({i.meaning for i in INS})}
    return np.array([codes[i.meaning] for i in INS]) + noise * np.random.default_rng(seed + 100).standard_normal((N, d))


@pytest.fixture(scope="module")
def world():
    spaces = {
        "agent-seed0": _space(0, 0.3),
        "agent-seed1": _space(0, 0.5),
        "untrained-agent": _space(5, 0.3),
        "dec": _space(0, 0.6),
        "enc": _space(0, 3.0),
        "bag-of-words": _space(7, 1.0),
    }
    family = {
        "agent-seed0": "agent",
        "agent-seed1": "agent",
        "untrained-agent": "control",
        "dec": "decoder",
        "enc": "encoder",
        "bag-of-words": "control",
    }
    models = {
        "dec": {"last": np.stack([spaces["bag-of-words"], spaces["dec"]])},
        "enc": {"mean": np.stack([spaces["bag-of-words"], spaces["enc"]])},
    }
    curve = R.specification_curve(spaces["agent-seed0"], models, n_perm=20, n_perm_retrieval=5)
    seeds = R.seed_spread(spaces, ["agent-seed0", "agent-seed1"])
    return spaces, family, curve, seeds


def test_block_means_average_the_right_blocks(world):
    spaces, family, _, _ = world
    matrix = al.pair_matrix(spaces, "mutual_knn", k=15)
    blocks = rp.block_means(matrix, family, "agent-seed0", N, 15)
    assert blocks["agent vs agent (different seeds)"] == pytest.approx(matrix.loc["agent-seed0", "agent-seed1"])
    assert blocks["language model vs language model"] == pytest.approx(matrix.loc["dec", "enc"])
    assert blocks["action vs language models"] == pytest.approx(
        (matrix.loc["agent-seed0", "dec"] + matrix.loc["agent-seed0", "enc"]) / 2
    )
    assert blocks["chance k/(N-1)"] == pytest.approx(15 / (N - 1))


def test_paper_table_puts_our_scores_beside_the_papers(world):
    spaces, family, _, _ = world
    matrix = al.pair_matrix(spaces, "mutual_knn", k=15)
    head = pd.DataFrame(
        [
            {"model": n, "metric": m, "score": al.measure(m, spaces["agent-seed0"], spaces[n], k=15)}
            for n in spaces
            if n != "agent-seed0"
            for m in ("mutual_knn", "procrustes_retrieval")
        ]
    )
    table = rp.paper_table(head, matrix, family, "agent-seed0", N, 15)
    assert table.loc["action vs decoder LLMs", "paper (precision@15)"] == "0.70-0.73"
    assert table.loc["action vs decoder LLMs", "ours: mutual k-NN@15"] == pytest.approx(
        matrix.loc["agent-seed0", "dec"]
    )
    assert table.loc["agent vs agent (seeds)", "ours: retrieval@15"] == pytest.approx(
        al.measure("procrustes_retrieval", spaces["agent-seed0"], spaces["agent-seed1"], k=15)
    )


def test_verdicts_count_specifications_and_name_the_outcome(world):
    spaces, family, curve, seeds = world
    found = rp.verdicts(curve, family, spaces, "agent-seed0", seeds)
    assert len(found) == 6
    for level in found[:2]:  # the decoder shares the agent's meanings: high under both precision metrics
        assert level.total == 2 * 2 and level.status == "holds"
    assert "mutual k-NN" in found[0].claim and "retrieval" in found[1].claim
    order = [v for v in found if v.claim.startswith("Decoders align")]
    # 1 pooling x 2 layer choices x 2 normalisations x 4 metrics, all above the noisier encoder
    assert order[0].status == "holds" and order[0].support == order[0].total == 16
    assert order[1].status == "holds" and order[1].total == 2  # both seeds
    training = [v for v in found if v.claim.startswith("Check: training")][0]
    assert (
        training.total == 2 * 4 and training.status == "holds"
    )  # trained agent shares the meanings, untrained does not
    table = rp.verdict_table(rp.verdicts(curve, family, spaces, "agent-seed0", seeds))
    assert list(table.columns) == ["claim", "verdict", "support", "share"] and len(table) == 6


@pytest.mark.parametrize(
    "support,total,status",
    [(2, 3, "holds"), (1, 3, "does not hold"), (1, 2, "depends on the specification"), (0, 0, "not testable here")],
)
def test_verdict_status_thresholds(support, total, status):
    v = rp.Verdict("claim", support, total, "detail")
    assert v.status == status and status in v.sentence()


def test_verdicts_read_the_anchors_scores_from_the_headline(world, monkeypatch):
    """Given the headline table, the anchor's scores are read from it; the verdicts are the same."""
    spaces, family, curve, seeds = world
    alone = rp.verdicts(curve, family, spaces, "agent-seed0", seeds)
    options = {m: al.k_options(m, 15) for m in al.METRICS}
    headline = al.headline(spaces, "agent-seed0", n_perm=5, n_perm_retrieval=2, n_boot=0, options=options)
    real = al.measure
    monkeypatch.setattr(
        al,
        "measure",
        lambda m, A, B, **o: pytest.fail("anchor rescored") if A is spaces["agent-seed0"] else real(m, A, B, **o),
    )
    assert rp.verdicts(curve, family, spaces, "agent-seed0", seeds, headline=headline) == alone
