"""Which representations a build embeds and the family of each name (chapters 5-6): the names of
:mod:`lva.names` (agents, vision-grounded encoders, their untrained twins) and the registry's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lva import models as M
from lva import names as N


def family_of(name: str) -> str:
    """The family of a representation: ``decoder`` / ``encoder`` / ``vision-language`` /
    ``static`` / ``agent`` / ``vision-grounded`` / ``control`` (:data:`lva.names.FAMILIES`).

    ``agent-seed<N>`` (a trained agent's E_L) is ``agent``; ``vision-seed<N>`` (the text tower of
    the vision-grounded encoder trained here, :mod:`lva.grounding`) is ``vision-grounded``;
    ``untrained-agent`` and ``untrained-vision`` (the same networks at their random
    initialisation) and ``semantic-features`` are ``control``; registry models have their
    registered family. Unknown names raise ``ValueError`` listing the valid ones.
    """
    if (own := N.own_family(name)) is not None:
        return own
    if name in M.REGISTRY:
        return M.REGISTRY[name].family
    valid = [*N.PATTERNS, *M.REGISTRY]
    raise ValueError(f"unknown representation {name!r}; valid: {', '.join(valid)}")


def build_models(cfg: Any) -> list[str]:
    """The language models and controls a build of ``cfg`` embeds: the default zoo and controls,
    then the profile's ``cfg.extra_models`` (e.g. the optional Qwen2.5-Coder-1.5B of ``full``),
    whether or not they are installed here."""
    return list(dict.fromkeys([*M.model_set("offline"), *cfg.extra_models]))


def model_names(cfg: Any, models: str | Sequence[str] = "offline") -> list[str]:
    """``lva.models.select(models)``, where ``"offline"`` is :func:`build_models`: a missing
    model fails at once, naming it."""
    return M.select(build_models(cfg) if isinstance(models, str) and models == "offline" else models)
