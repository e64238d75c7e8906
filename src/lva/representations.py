"""Every representation of the instructions, for chapters 5-6: the trained agents' and the
vision-grounded encoders' E_L, their untrained twins, the language models and the controls, named
as :mod:`lva.names` says and in one fixed order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lva import models as M
from lva import names as N
from lva.catalogue import model_names
from lva.embeddings import embed


def agent_embeddings(agents: dict[int, Any], untrained: Any, texts: Sequence[str]) -> dict[str, np.ndarray]:
    """E_L of ``texts`` for each trained agent (``agent-seed<N>``) and the untrained one."""
    out = {N.agent_name(seed): np.asarray(agent.embed(texts), dtype=np.float32) for seed, agent in agents.items()}
    out[N.UNTRAINED_AGENT] = np.asarray(untrained.embed(texts), dtype=np.float32)
    return out


def representations(
    cfg: Any,
    agents: dict[int, Any],
    models: str | Sequence[str] = "offline",
    show_progress: bool = True,
    vision: dict[int, Any] | None = None,
) -> dict[str, np.ndarray]:
    """Every representation of every instruction: an ordered dict name -> ``(396, d)`` float32,
    rows in :func:`lva.instructions.all_instructions` order.

    Order: ``agent-seed<N>`` for each trained agent of ``agents`` (seed -> agent, as
    :func:`lva.pipeline.agents` returns them); ``untrained-agent`` (the same
    architecture built by ``build_agent(cfg, agent_seeds[0])``, i.e. the first agent before
    training); with ``vision`` (seed -> encoder, as :func:`lva.pipeline.vision_encoders` returns
    them), ``vision-seed<N>`` for each vision-grounded encoder's text tower and
    ``untrained-vision`` (``lva.grounding.build_encoder(cfg, agent_seeds[0])``, untrained); the
    language models of ``lva.models.select(models)`` at their registered pooling
    and layer (``models``: ``"offline"``, ``"paper"`` or a list of names; a missing one fails at
    once, naming it; ``"offline"`` also includes the profile's ``cfg.extra_models``, e.g. the
    optional Qwen2.5-Coder-1.5B of the ``full`` profile); then every default control of the registry
    (``random``, ``bag-of-words``, ``semantic-features``). Language-model and control vectors come
    from :func:`lva.embeddings.embed`'s cache; E_L is recomputed from the cached checkpoints
    (milliseconds), so a warm call takes seconds.
    """
    from lva.agent import build_agent
    from lva.instructions import all_instructions

    texts = [i.text for i in all_instructions()]
    names = model_names(cfg, models)
    lms = [n for n in names if M.REGISTRY[n].family != N.CONTROL]
    controls = [s.name for s in M.REGISTRY.values() if s.family == N.CONTROL and s.default]
    controls += [n for n in names if M.REGISTRY[n].family == N.CONTROL and n not in controls]
    untrained = build_agent(cfg, cfg.agent_seeds[0])
    out = agent_embeddings(agents, untrained, texts)
    if vision is not None:
        from lva.grounding import build_encoder

        out.update(
            {N.vision_name(seed): np.asarray(enc.embed(texts), dtype=np.float32) for seed, enc in vision.items()}
        )
        out[N.UNTRAINED_VISION] = np.asarray(build_encoder(cfg, cfg.agent_seeds[0]).embed(texts), dtype=np.float32)
    for name in lms + controls:
        out[name] = np.asarray(embed(name, texts), dtype=np.float32)
    for name, x in out.items():
        if x.shape[0] != len(texts) or not np.isfinite(x).all():
            raise RuntimeError(f"{name}: expected ({len(texts)}, d) finite vectors, got {x.shape}")
    return out
