"""The chapters' sentences about which models a run holds follow its representations (lva.prose):
the offline book says what it lacks, a ``paper`` run names what it has."""

from __future__ import annotations

from lva import models as M
from lva import prose
from lva.catalogue import family_of
from lva.config import PAPER_MODELS, get_config

FAST = ["agent-seed0", "untrained-agent", "vision-seed0", *M.select("offline")]
PAPER = [*FAST, *get_config("paper").extra_models]


def _family(names):
    return {n: family_of(n) for n in names}


def test_every_hub_entry_belongs_to_one_of_the_papers_families():
    hub = [n for n, spec in M.REGISTRY.items() if not spec.offline and spec.source.startswith("hf:")]
    assert hub and all(prose.paper_family(n) in prose.PAPER_FAMILIES for n in hub), hub
    assert prose.paper_family("qwen2.5-coder-0.5b") == "Qwen"
    assert prose.paper_family("gemma-3-270m") is None and prose.paper_family("agent-seed0") is None


def test_the_offline_run_says_what_it_lacks():
    fam = _family(FAST)
    sentence = prose.zoo(FAST, fam)
    assert sentence.startswith("Our offline zoo has no LLaMA, DeepSeek, BERT, CLIP or BLIP")
    assert "`gemma-3-270m`" in sentence and "`minilm`" in sentence
    assert "cannot be installed here" in prose.vision_language(FAST, fam)
    assert "never contacts" in prose.paper_models_here(FAST) and "no hub" in prose.paper_run(FAST)
    assert "offline language models" in prose.language_models(FAST, fam)
    assert prose.differences(FAST).startswith("our smaller offline models")


def test_a_paper_run_names_the_paper_models_it_has():
    fam = _family(PAPER)
    sentence = prose.zoo(PAPER, fam)
    assert " no " not in sentence and "every family the paper compares" in sentence
    assert all(f"`{n}`" in sentence for n in PAPER_MODELS)
    assert "cannot be installed" not in prose.vision_language(PAPER, fam)
    assert all(f"`{n}`" in prose.paper_run(PAPER) for n in PAPER_MODELS)
    assert "offline" not in prose.language_models(PAPER, fam)
    partial = [*FAST, "llama-3.1-8b"]
    assert prose.zoo(partial, _family(partial)).startswith("This run has no DeepSeek, BERT, CLIP or BLIP")
    assert prose.words(["a"]) == "a" and prose.words(["a", "b", "c"], "or") == "a, b or c"
