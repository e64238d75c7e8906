"""Chapter 6's summary tables and verdict sentences, computed (and tested) rather than written
in a cell: block means of the pair matrix, our numbers beside the paper's, and each of the
paper's claims checked against every specification of :mod:`lva.robustness`.

A verdict says how many specifications support a claim: "holds" when at least two thirds do,
"does not hold" when at most one third do, "depends on the specification" in between.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lva import alignment as al
from lva import names as N
from lva.robustness import decoder_vs_encoder

#: The paper's headline range for action vs decoder LLMs and BLIP (precision@15).
PAPER_RANGE: tuple[float, float] = (0.70, 0.73)


def _names(family: Mapping[str, str], *kinds: str) -> list[str]:
    return [n for n, f in family.items() if f in kinds]


def _mean_pairs(matrix: pd.DataFrame, rows: Sequence[str], cols: Sequence[str]) -> float:
    values = [matrix.loc[a, b] for a in rows for b in cols if a != b]
    return float(np.mean(values)) if values else float("nan")


def block_means(matrix: pd.DataFrame, family: Mapping[str, str], anchor: str, n: int, k: int) -> pd.Series:
    """Mean pair scores of the matrix's blocks: language models among themselves, agents of
    different seeds (the action ceiling), action vs the language models, vs the untrained agent
    and vs bag-of-words, and chance."""
    lms, agents = _names(family, *N.LANGUAGE_FAMILIES), _names(family, N.AGENT)
    out = {
        "language model vs language model": _mean_pairs(matrix, lms, lms),
        "agent vs agent (different seeds)": _mean_pairs(matrix, agents, agents),
        "action vs language models": _mean_pairs(matrix, [anchor], lms),
    }
    for label, name in (("action vs untrained agent", N.UNTRAINED_AGENT), ("action vs bag-of-words", N.BAG_OF_WORDS)):
        if name in matrix.columns:
            out[label] = float(matrix.loc[anchor, name])
    out["chance k/(N-1)"] = al.chance("mutual_knn", n, k)
    return pd.Series(out, name=f"mutual k-NN precision@{k}")


def paper_table(
    headline: pd.DataFrame, matrix: pd.DataFrame, family: Mapping[str, str], anchor: str, n: int, k: int
) -> pd.DataFrame:
    """Our numbers (registered poolings, mutual k-NN and retrieval) beside the paper's."""
    score = headline.set_index(["model", "metric"])["score"]
    decoders, encoders = _names(family, N.DECODER), _names(family, N.ENCODER)
    agents = [a for a in _names(family, N.AGENT) if a != anchor]
    blocks = block_means(matrix, family, anchor, n, k)

    def mean(names: Sequence[str], metric: str) -> float:
        return float(np.mean([score[m, metric] for m in names])) if names else float("nan")

    rows = {
        "action vs decoder LLMs": ("0.70-0.73", decoders),
        "action vs encoders (BERT / our MiniLM)": ("weaker", encoders),
        "action vs bag-of-words": ("not reported", [N.BAG_OF_WORDS]),
        "action vs untrained agent": ("not reported", [N.UNTRAINED_AGENT]),
        "agent vs agent (seeds)": ("not reported", agents),
    }
    table = {
        label: {
            "paper (precision@15)": paper,
            f"ours: mutual k-NN@{k}": mean(names, "mutual_knn"),
            f"ours: retrieval@{k}": mean(names, "procrustes_retrieval"),
        }
        for label, (paper, names) in rows.items()
    }
    table["LLM vs LLM"] = {
        "paper (precision@15)": "slightly above 0.70-0.73",
        f"ours: mutual k-NN@{k}": blocks["language model vs language model"],
        f"ours: retrieval@{k}": float("nan"),
    }
    return pd.DataFrame(table).T


@dataclass(frozen=True)
class Verdict:
    """One of the paper's claims checked here."""

    claim: str
    support: int  # specifications (or comparisons) that support it
    total: int
    detail: str

    @property
    def share(self) -> float:
        return self.support / self.total if self.total else float("nan")

    @property
    def status(self) -> str:
        if not self.total:
            return "not testable here"
        if self.share >= 2 / 3:
            return "holds"
        if self.share <= 1 / 3:
            return "does not hold"
        return "depends on the specification"

    def sentence(self) -> str:
        return f"{self.claim}: **{self.status}** ({self.support} of {self.total}; {self.detail})."


def verdicts(
    curve: pd.DataFrame,
    family: Mapping[str, str],
    spaces: Mapping[str, np.ndarray],
    anchor: str,
    seeds: pd.DataFrame,
    k: int = al.DEFAULT_K,
    low: float = PAPER_RANGE[0],
    headline: pd.DataFrame | None = None,
) -> list[Verdict]:
    """The paper's claims, each counted over the specification curve (``curve``, from
    :func:`lva.robustness.specification_curve`) or over seeds (``seeds``, from
    :func:`lva.robustness.seed_spread` on mutual k-NN). ``headline``: the headline table of
    ``anchor`` with the same k (:func:`lva.alignment.headline`), whose scores are read rather than
    recomputed."""
    known = {} if headline is None else headline.set_index(["model", "metric"])["score"].to_dict()

    def score(a: str, b: str, m: str) -> float:
        if a == anchor and (b, m) in known:
            return float(known[b, m])
        return al.measure(m, spaces[a], spaces[b], **al.k_options(m, k))

    fam = curve["model"].map(family)
    out = []
    for metric, label in (("mutual_knn", "mutual k-NN"), ("procrustes_retrieval", "retrieval after a Procrustes map")):
        dec = curve[(fam == N.DECODER) & (curve["metric"] == metric)]
        out.append(
            Verdict(
                f"Action aligns with decoder LLMs at precision@{k} >= {low:.2f}, read as {label}",
                int((dec["score"] >= low).sum()),
                len(dec),
                f"decoder specifications; their scores range {dec['score'].min():.2f}-{dec['score'].max():.2f}"
                if len(dec)
                else "no decoder here",
            )
        )

    versus = decoder_vs_encoder(curve, family)
    n_spec = int(versus["specifications"].sum()) if len(versus) else 0
    wins = int(round((versus["specifications"] * versus["share above the encoder"]).sum())) if n_spec else 0
    out.append(
        Verdict(
            "Decoders align with action more than the encoder does",
            wins,
            n_spec,
            "decoder specifications above the encoder's best pooling under the same layer choice, "
            "normalisation and metric",
        )
    )

    lm_rows = curve[fam.isin(N.LANGUAGE_FAMILIES)]
    bow = {m: score(anchor, N.BAG_OF_WORDS, m) for m in lm_rows["metric"].unique()} if N.BAG_OF_WORDS in spaces else {}
    above = int((lm_rows["score"] > lm_rows["metric"].map(bow)).sum()) if bow else 0
    out.append(
        Verdict(
            "Check: language models align with action beyond word overlap (above bag-of-words)",
            above,
            len(lm_rows) if bow else 0,
            "language-model specifications above the bag-of-words control under the same metric",
        )
    )

    if N.UNTRAINED_AGENT in spaces:
        lms = [n for n in spaces if family.get(n) in N.LANGUAGE_FAMILIES]
        metrics = list(dict.fromkeys(curve["metric"]))
        pairs = [(n, m) for n in lms for m in metrics]
        trained = sum(score(anchor, n, m) > score(N.UNTRAINED_AGENT, n, m) for n, m in pairs)
        out.append(
            Verdict(
                "Check: training makes the agent's space more like the language models'",
                int(trained),
                len(pairs),
                "(language model, metric) pairs where the trained agent is closer to the model than the "
                "untrained one (registered poolings)",
            )
        )

    seed_cols = [c for c in seeds.columns if N.is_agent(str(c))]
    decoders, encoders = _names(family, N.DECODER), _names(family, N.ENCODER)
    decoders, encoders = [d for d in decoders if d in seeds.index], [e for e in encoders if e in seeds.index]
    if decoders and encoders and seed_cols:
        per_seed = [
            (s, seeds.loc[decoders, s].astype(float).mean() > seeds.loc[encoders, s].astype(float).max())
            for s in seed_cols
        ]
        out.append(
            Verdict(
                "Decoders align with action more than the encoder, seed by seed",
                sum(w for _, w in per_seed),
                len(per_seed),
                "seeds where the decoders' mean mutual k-NN (registered pooling) is above the encoder's",
            )
        )
    return out


def verdict_table(found: Sequence[Verdict]) -> pd.DataFrame:
    """The verdicts as a table: claim, status, support, share."""
    return pd.DataFrame(
        [
            {"claim": v.claim, "verdict": v.status, "support": f"{v.support} / {v.total}", "share": v.share}
            for v in found
        ]
    )
