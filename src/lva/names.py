"""The names of representations, families and chapter 6's pairs, built and parsed here only.

These strings are cache keys and table labels (chapters 5-6, the ledger), so every module builds
them with these functions and constants and none types them: a renamed one would orphan caches
and change the book. A registry model's name is its :class:`lva.models.ModelSpec` name; this
module names the representations trained here and their controls, and imports no other module
of the package so that every module, the model registry included, may use it.
"""

from __future__ import annotations

import re
from numbers import Integral

# ------------------------------------------------------------------------------------------------
# Families
# ------------------------------------------------------------------------------------------------

DECODER = "decoder"
ENCODER = "encoder"
VISION_LANGUAGE = "vision-language"
STATIC = "static"
#: A trained agent's E_L (``agent-seed<N>``); no registry entry.
AGENT = "agent"
#: The text tower of a vision-grounded encoder trained here (``vision-seed<N>``); no registry entry.
VISION_GROUNDED = "vision-grounded"
CONTROL = "control"
#: The family of every representation (:func:`lva.catalogue.family_of`).
FAMILIES: tuple[str, ...] = (DECODER, ENCODER, VISION_LANGUAGE, STATIC, AGENT, VISION_GROUNDED, CONTROL)
#: The families a registry entry may have (the others are trained here).
REGISTRY_FAMILIES: tuple[str, ...] = tuple(f for f in FAMILIES if f not in (AGENT, VISION_GROUNDED))
#: The families that count as language models in chapters 5-6's tables.
LANGUAGE_FAMILIES: tuple[str, ...] = (DECODER, ENCODER, VISION_LANGUAGE)

# ------------------------------------------------------------------------------------------------
# Representations trained here, and controls
# ------------------------------------------------------------------------------------------------

AGENT_PREFIX = "agent-seed"
VISION_PREFIX = "vision-seed"
#: The first agent at its random initialisation (a control).
UNTRAINED_AGENT = "untrained-agent"
#: The first vision-grounded encoder at its random initialisation (a control).
UNTRAINED_VISION = "untrained-vision"
#: The registry's word-overlap control, which chapter 6 compares every model with.
BAG_OF_WORDS = "bag-of-words"
#: The referent-only image features of the triangle (:func:`lva.grounding.referent_control`).
REFERENT = "referent-image"
#: How an error message lists the names of this module (``<N>``: any seed).
PATTERNS: tuple[str, ...] = (f"{AGENT_PREFIX}<N>", UNTRAINED_AGENT, f"{VISION_PREFIX}<N>", UNTRAINED_VISION)

_SEEDED = re.compile(rf"^({re.escape(AGENT_PREFIX)}|{re.escape(VISION_PREFIX)})(\d+)$")


def _seeded(prefix: str, seed: int) -> str:
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError(f"a seed is an int >= 0, not {seed!r}")
    return f"{prefix}{int(seed)}"


def agent_name(seed: int) -> str:
    """The name of the trained agent of ``seed`` (its E_L): ``agent-seed<seed>``."""
    return _seeded(AGENT_PREFIX, seed)


def vision_name(seed: int) -> str:
    """The name of the vision-grounded encoder of ``seed`` (its text tower): ``vision-seed<seed>``."""
    return _seeded(VISION_PREFIX, seed)


def agent_seed(name: str) -> int | None:
    """The seed of an agent's name (:func:`agent_name`), ``None`` for any other name."""
    m = _SEEDED.match(name)
    return int(m.group(2)) if m and m.group(1) == AGENT_PREFIX else None


def vision_seed(name: str) -> int | None:
    """The seed of a vision-grounded encoder's name (:func:`vision_name`), ``None`` for any other name."""
    m = _SEEDED.match(name)
    return int(m.group(2)) if m and m.group(1) == VISION_PREFIX else None


def is_agent(name: str) -> bool:
    """Whether ``name`` is a trained agent's (``agent-seed<N>``)."""
    return agent_seed(name) is not None


def own_family(name: str) -> str | None:
    """The family of a name this module builds (an agent, a vision-grounded encoder, their
    untrained twins), ``None`` for any other name (a registry model's family is registered)."""
    if agent_seed(name) is not None:
        return AGENT
    if vision_seed(name) is not None:
        return VISION_GROUNDED
    if name in (UNTRAINED_AGENT, UNTRAINED_VISION):
        return CONTROL
    return None


# ------------------------------------------------------------------------------------------------
# Chapter 6's pairs: "<side>–<side>" (an en dash), the two seed ceilings "<side>–<side> (ceiling)"
# ------------------------------------------------------------------------------------------------

#: The sides of the triangle's pairs: the grounded vertices, the language models, the controls.
ACTION, VISION, LANGUAGE = "action", "vision", "language"
SIDES: tuple[str, ...] = (ACTION, VISION, LANGUAGE, CONTROL)
#: What joins a pair's two sides (an en dash, U+2013).
PAIR_SEP = "\u2013"
_CEILING = " (ceiling)"


def _side(side: str) -> str:
    if side not in SIDES:
        raise ValueError(f"unknown side {side!r}; valid: {', '.join(SIDES)}")
    return side


def pair_name(a: str, b: str) -> str:
    """The name of the pair of sides ``a`` and ``b`` (e.g. ``action–vision``)."""
    return f"{_side(a)}{PAIR_SEP}{_side(b)}"


def ceiling_name(side: str) -> str:
    """The seed ceiling of a grounded side: two networks of that side that differ only in their
    seed (``action–action (ceiling)``)."""
    return pair_name(side, side) + _CEILING


def pair_sides(pair: str) -> tuple[str, str]:
    """The two sides of a pair's name (:func:`pair_name` or :func:`ceiling_name`)."""
    a, sep, b = pair.removesuffix(_CEILING).partition(PAIR_SEP)
    if not sep or a not in SIDES or b not in SIDES:
        raise ValueError(f"{pair!r} is not a pair name (<side>{PAIR_SEP}<side>; sides: {', '.join(SIDES)})")
    return a, b
