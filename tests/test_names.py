"""lva.names: the names of representations and pairs round-trip, keep their exact spelling (they
are cache keys and table labels), and every family the code and chapters 5-6 use is in FAMILIES."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from lva import embeddings as E
from lva import models as M
from lva import names as N
from lva import triangle

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("seed", [0, 1, 7, 12, 2024, np.int64(3)])
def test_seeded_names_round_trip(seed):
    agent, vision = N.agent_name(seed), N.vision_name(seed)
    assert N.agent_seed(agent) == N.vision_seed(vision) == int(seed)
    assert N.vision_seed(agent) is None and N.agent_seed(vision) is None
    assert N.is_agent(agent) and not N.is_agent(vision)
    assert N.own_family(agent) == N.AGENT and N.own_family(vision) == N.VISION_GROUNDED


def test_names_are_spelled_as_the_caches_and_the_book_have_them():
    assert (N.agent_name(0), N.vision_name(12)) == ("agent-seed0", "vision-seed12")
    assert (N.UNTRAINED_AGENT, N.UNTRAINED_VISION, N.REFERENT) == (
        "untrained-agent",
        "untrained-vision",
        "referent-image",
    )
    assert triangle.PAIRS == ("action\u2013vision", "action\u2013language", "vision\u2013language")
    assert triangle.CEILINGS == ("action\u2013action (ceiling)", "vision\u2013vision (ceiling)")
    assert N.PATTERNS == ("agent-seed<N>", "untrained-agent", "vision-seed<N>", "untrained-vision")


@pytest.mark.parametrize("bad", [-1, 1.0, "0", True, None])
def test_a_seed_must_be_a_non_negative_int(bad):
    with pytest.raises(ValueError, match="seed"):
        N.agent_name(bad)


@pytest.mark.parametrize(
    "name",
    [
        "agent-seed",
        "agent-seedx",
        "Agent-seed0",
        "agent-seed0 ",
        "xagent-seed0",
        "vision-seed-1",
        "minilm",
        "untrained-agent",
        "",
    ],
)
def test_other_names_parse_to_no_seed(name):
    assert N.agent_seed(name) is None and N.vision_seed(name) is None and not N.is_agent(name)


def test_pair_names_round_trip_and_reject_unknown_sides():
    for a in N.SIDES:
        for b in N.SIDES:
            assert N.pair_sides(N.pair_name(a, b)) == (a, b)
    for side in (N.ACTION, N.VISION):
        assert N.pair_sides(N.ceiling_name(side)) == (side, side)
    with pytest.raises(ValueError, match="valid: action, vision, language, control"):
        N.pair_name("action", "sound")
    for bad in ("action-vision", "action", "sound\u2013vision"):
        with pytest.raises(ValueError, match="not a pair name"):
            N.pair_sides(bad)


def test_every_family_of_the_registry_and_of_every_representation_is_in_families():
    assert len(set(N.FAMILIES)) == len(N.FAMILIES)
    assert {s.family for s in M.REGISTRY.values()} <= set(N.REGISTRY_FAMILIES)
    assert set(M.FAMILIES) <= set(N.FAMILIES)  # the registry's own list, until it reads lva.names
    names = [*M.REGISTRY, N.agent_name(0), N.agent_name(5), N.vision_name(0), N.UNTRAINED_AGENT, N.UNTRAINED_VISION]
    assert {E.family_of(n) for n in names} <= set(N.FAMILIES)
    assert {E.family_of(n) for n in names} >= {N.AGENT, N.VISION_GROUNDED, N.CONTROL}
    with pytest.raises(ValueError, match="agent-seed<N>, untrained-agent, vision-seed<N>, untrained-vision"):
        E.family_of("gpt-9")


def test_chapter_six_tables_read_families_from_families():
    assert set(N.LANGUAGE_FAMILIES) <= set(N.FAMILIES)
    names = [N.agent_name(0), N.agent_name(1), N.vision_name(0), "minilm", N.BAG_OF_WORDS, N.UNTRAINED_AGENT]
    family = {n: E.family_of(n) for n in names}
    roles = triangle.roles(names, family)
    assert roles == {
        N.ACTION: names[:2],
        N.VISION: [names[2]],
        N.LANGUAGE: ["minilm"],
        N.CONTROL: [N.UNTRAINED_AGENT, N.BAG_OF_WORDS],
    }
    assert {kind for kind, *_ in triangle.pair_list(names, family)} <= {
        *triangle.PAIRS,
        *triangle.CEILINGS,
        N.pair_name(N.ACTION, N.CONTROL),
        N.pair_name(N.VISION, N.CONTROL),
    }


#: A family compared with a literal: ``family[n] == "agent"``, ``family_of(n) != "control"``,
#: ``family.get(n) in ("decoder", ...)``, ``df["family"].isin(["decoder", ...])``.
_PREFIX = r"famil\w*\"?\]?(?:\.get)?(?:\[[^\]]*\]|\([^()]*\))?\s*"
_EQUALS = re.compile(_PREFIX + r"(?:==|!=)\s*\"([^\"]+)\"")
_AMONG = re.compile(_PREFIX + r"(?:in|\.isin\()\s*[\(\[]([^\)\]]*)[\)\]]")


def _family_literals(code: str) -> set[str]:
    found = set(_EQUALS.findall(code))
    for group in _AMONG.findall(code):
        found |= set(re.findall(r"\"([^\"]+)\"", group))
    return found


def test_every_family_literal_in_the_code_and_chapters_five_and_six_is_a_family():
    files = [*sorted((ROOT / "src" / "lva").rglob("*.py")), *sorted((ROOT / "notebooks").glob("0[56]_*.py"))]
    unknown = {p.name: sorted(bad) for p in files if (bad := _family_literals(p.read_text()) - set(N.FAMILIES))}
    assert not unknown, f"families not in lva.names.FAMILIES: {unknown}"


@pytest.mark.parametrize(
    "code",
    [
        'family[n] == "agnt"',
        'E.family_of(n) != "agnt"',
        'family.get(n) in ("decoder", "agnt")',
        'df["family"].isin(\n    ["agnt", "static"]\n)',
        'family[n]\n    in ("agnt",)',
    ],
)
def test_the_scan_finds_family_literals(code):
    assert "agnt" in _family_literals(code)


def test_chapter_six_colours_every_pair_kind_the_triangle_scores():
    from lva.viz.vision import PAIR_COLORS

    scored = {*triangle.PAIRS, *triangle.CEILINGS, N.pair_name(N.ACTION, N.CONTROL), N.pair_name(N.VISION, N.CONTROL)}
    assert set(PAIR_COLORS) == scored
