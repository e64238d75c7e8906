"""The language-vision-action triangle (lva.triangle) on synthetic spaces."""

import numpy as np
import pandas as pd
import pytest

from lva import alignment as al
from lva import triangle as T
from lva.config import get_config

N = 40


def spaces(seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Action and vision share a latent structure; the language model sees half of it; controls are noise."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((N, 6))

    def noisy(x, s):
        return x @ rng.standard_normal((x.shape[1], 10)) + s * rng.standard_normal((N, 10))

    reps = {
        "agent-seed0": noisy(z, 0.3),
        "agent-seed1": noisy(z, 0.3),
        "untrained-agent": rng.standard_normal((N, 10)),
        "vision-seed0": noisy(z, 0.3),
        "vision-seed1": noisy(z, 0.3),
        "untrained-vision": rng.standard_normal((N, 10)),
        "minilm": noisy(z[:, :3], 1.0),
        "bag-of-words": rng.standard_normal((N, 10)),
        T.REFERENT: noisy(z[:, :1], 1.0),
    }
    family = {
        "agent-seed0": "agent",
        "agent-seed1": "agent",
        "vision-seed0": "vision-grounded",
        "vision-seed1": "vision-grounded",
        "minilm": "encoder",
        "untrained-agent": "control",
        "untrained-vision": "control",
        "bag-of-words": "control",
        T.REFERENT: "control",
    }
    return reps, family


def test_pair_list_covers_every_kind_of_pair_once():
    reps, family = spaces()
    listed = T.pair_list(list(reps), family)
    kinds = pd.Series([p[0] for p in listed]).value_counts()
    assert kinds["action–vision"] == 4 and kinds[T.CEILINGS[0]] == 1 and kinds[T.CEILINGS[1]] == 1
    assert kinds["action–language"] == kinds["vision–language"] == 2
    assert kinds["action–control"] == kinds["vision–control"] == 2 * 4
    assert ("action–vision", "", "agent-seed0", "vision-seed1") in listed


def test_seed_pairs_and_spread_match_single_measures():
    reps, family = spaces()
    pairs = T.seed_pairs(reps, family, metrics=("mutual_knn", "cka"), k=5)
    row = pairs[(pairs["a"] == "agent-seed1") & (pairs["b"] == "vision-seed0") & (pairs["metric"] == "mutual_knn")]
    assert float(row["score"].iloc[0]) == al.measure("mutual_knn", reps["agent-seed1"], reps["vision-seed0"], k=5)
    table = T.spread(pairs)
    av = table[(table["pair"] == "action–vision") & (table["metric"] == "cka")].iloc[0]
    scores = pairs[(pairs["pair"] == "action–vision") & (pairs["metric"] == "cka")]["score"]
    assert av["seed pairs"] == 4 and av["mean"] == pytest.approx(scores.mean()) and av["min"] == scores.min()
    tops = T.top_pairs(table)
    assert list(tops.index) == ["mutual_knn", "cka"] and (tops["on top"] == "action–vision").all()


def fake(av: float, al_: float, vl: float, p: float, with_referent: bool = True):
    rows = [
        ("action–vision", "", av),
        ("action–language", "lm1", al_),
        ("action–language", "lm2", al_ - 0.1),
        ("vision–language", "lm1", vl),
        (T.CEILINGS[0], "", 0.8),
        (T.CEILINGS[1], "", 0.9),
    ]
    if with_referent:
        rows += [("action–control", T.REFERENT, 0.2), ("vision–control", T.REFERENT, 0.3)]
    table = pd.DataFrame(
        [
            {"pair": k, "partner": q, "metric": m, "mean": s + (0.01 if m == "cka" else 0)}
            for k, q, s in rows
            for m in ("mutual_knn", "cka")
        ]
    )
    head = pd.DataFrame(
        [
            {"pair": "action–vision", "metric": "mutual_knn", "p": p},
            {"pair": "action–vision", "metric": "mutual_knn", "p": p / 2},
        ]
    )
    return table, head


def test_verdict_states_the_top_pair_and_the_claim_from_the_numbers():
    v = T.verdict(*fake(0.5, 0.4, 0.3, 0.001), n=N, k=5)
    assert (
        v.top == "action–vision" and v.status == "holds" and v.metrics_on_top == 2 and v.best_language == ("lm1", 0.4)
    )
    s = v.sentence()
    assert "**action–vision** (0.500)" in s and "**holds**" in s and "0.800 (agent vs agent)" in s
    assert "62% of the lower seed ceiling" in s and "(lm1, 0.400)" in s and "0.200 with action (40% of" in s
    assert f"chance {al.chance('mutual_knn', N, 5):.3f}" in s
    part = T.verdict(*fake(0.3, 0.4, 0.5, 0.001), n=N, k=5)
    assert (
        part.top == "vision–language" and part.status == "holds in part" and "below action-language" in part.sentence()
    )
    no = T.verdict(*fake(0.6, 0.4, 0.5, 0.2, with_referent=False), n=N, k=5)
    assert no.status == "does not hold" and "largest p = 0.200" in no.sentence() and "referent" not in no.sentence()
    with pytest.raises(ValueError, match="no action–vision"):
        T.verdict(fake(0.5, 0.4, 0.3, 0.01)[0], pd.DataFrame(columns=["pair", "metric", "p"]), n=N)


def test_headline_labels_both_anchors_rows():
    reps, family = spaces()
    cfg = get_config("fast", align__k=5, align__n_perm=5, align__n_perm_retrieval=2, align__n_boot=0)
    rows = T.headline(reps, family, cfg.align)
    by_anchor = rows.groupby("anchor")["model"].unique()
    assert set(by_anchor["agent-seed0"]) == {
        "vision-seed0",
        "vision-seed1",
        "agent-seed1",
        "minilm",
        "untrained-agent",
        "untrained-vision",
        T.REFERENT,
        "bag-of-words",
    }
    assert set(by_anchor["vision-seed0"]) == {
        "vision-seed1",
        "minilm",
        "untrained-agent",
        "untrained-vision",
        T.REFERENT,
        "bag-of-words",
    }
    assert rows["pair"].notna().all() and set(rows["metric"]) == set(al.METRICS)
    knn = rows[
        (rows["metric"] == "mutual_knn") & (rows["anchor"] == "vision-seed0") & (rows["model"] == "vision-seed1")
    ]
    assert knn["pair"].iloc[0] == T.CEILINGS[1]
    assert knn["score"].iloc[0] == al.measure("mutual_knn", reps["vision-seed0"], reps["vision-seed1"], k=5)
    with pytest.raises(ValueError, match="at least one agent"):
        T.headline({k: v for k, v in reps.items() if not k.startswith("vision-seed")}, family, cfg.align)


def test_headline_copies_known_rows_and_computes_the_rest(monkeypatch):
    """Rows already computed from an anchor (with the same sizes) are copied, in the table's own
    order; the result equals computing everything."""
    reps, family = spaces()
    cfg = get_config("fast", align__k=5, align__n_perm=5, align__n_perm_retrieval=2, align__n_boot=3)
    alone = T.headline(reps, family, cfg.align)
    known = al.headline_for({n: reps[n] for n in ("agent-seed0", "minilm", "vision-seed1")}, "agent-seed0", cfg.align)
    computed = []
    real = al.headline_for
    monkeypatch.setattr(
        al, "headline_for", lambda sub, a, align: computed.append((a, set(sub) - {a})) or real(sub, a, align)
    )
    pd.testing.assert_frame_equal(T.headline(reps, family, cfg.align, known={"agent-seed0": known}), alone)
    assert computed[0] == (
        "agent-seed0",
        {"vision-seed0", "agent-seed1", "untrained-agent", "untrained-vision", T.REFERENT, "bag-of-words"},
    )
