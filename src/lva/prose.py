"""The sentences of chapters 5 and 6 that depend on which models a run holds, generated from its
representations so that no chapter says "no LLaMA" when the ``paper`` profile put LLaMA in the
tables (and the offline book keeps saying what it lacks)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from lva import models as M
from lva import names as N

#: The model families the paper compares, in its order.
PAPER_FAMILIES: tuple[str, ...] = ("LLaMA", "Qwen", "DeepSeek", "BERT", "CLIP", "BLIP")
#: The paper's vision-language families (the triangle's third corner).
VISION_LANGUAGE_FAMILIES: tuple[str, ...] = ("CLIP", "BLIP")


def words(items: Sequence[str], last: str = "and") -> str:
    """``items`` as an English list: ``a``, ``a and b``, ``a, b and c`` (``last`` joins the last two)."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {last} {items[-1]}"


def code(names: Iterable[str]) -> list[str]:
    """Each name as inline code (Markdown)."""
    return [f"`{n}`" for n in names]


def paper_family(name: str) -> str | None:
    """The paper's family of a registry model (its name starts with the family's, lower-cased:
    ``qwen2.5-coder-0.5b`` -> ``Qwen``), ``None`` for any other model or representation."""
    if name not in M.REGISTRY:
        return None
    return next((f for f in PAPER_FAMILIES if name.startswith(f.lower())), None)


def paper_families(names: Iterable[str]) -> dict[str, list[str]]:
    """``{paper family: names of it among names}``, in the paper's order, families present only."""
    found: dict[str, list[str]] = {f: [] for f in PAPER_FAMILIES}
    for name in names:
        if (fam := paper_family(name)) is not None:
            found[fam].append(name)
    return {f: found[f] for f in PAPER_FAMILIES if found[f]}


def hub_models(names: Iterable[str]) -> list[str]:
    """The names among ``names`` that are the registry's hub checkpoints (the paper's families at
    its scale, embedded by the ``paper`` profile)."""
    return [n for n in names if n in M.REGISTRY and not M.REGISTRY[n].offline]


_KINDS = {
    N.DECODER: ("a decoder", "decoders"),
    N.ENCODER: ("an encoder", "encoders"),
    N.VISION_LANGUAGE: ("a vision-language text tower", "vision-language text towers"),
    N.STATIC: ("static word vectors", "static word vectors"),
}


def language_models(names: Iterable[str], family: Mapping[str, str]) -> str:
    """How many language models ``names`` holds and of which kinds, e.g. "5 offline language
    models (decoders, an encoder and static word vectors)"; "offline" only if none is a hub's."""
    names = [n for n in names if family.get(n) in _KINDS]
    counts = {k: sum(family[n] == k for n in names) for k in _KINDS}
    kinds = [_KINDS[k][count > 1] for k, count in counts.items() if count]
    where = "" if hub_models(names) else "offline "
    return f"{len(names)} {where}language models ({words(kinds)})"


def zoo(names: Iterable[str], family: Mapping[str, str]) -> str:
    """Which of the paper's families this run's models include and which they lack, then its
    decoders and encoders by name (chapter 6, beside the paper's numbers)."""
    names = list(names)
    present = paper_families(names)
    missing = [f for f in PAPER_FAMILIES if f not in present]
    offline = not hub_models(names)
    owner = "Our offline zoo" if offline else "This run"
    if missing:
        opening = f"{owner} has no {words(missing, 'or')}"
        if present:
            opening += f" (of the paper's families it has {words(list(present))})"
    else:
        opening = f"{owner} has every family the paper compares ({words(list(present))})"
    parts = []
    for kind in (N.DECODER, N.ENCODER, N.VISION_LANGUAGE):
        of_kind = [n for n in names if family.get(n) == kind]
        if of_kind:
            label = _KINDS[kind][len(of_kind) > 1].removeprefix("a ").removeprefix("an ")
            parts.append(f"its {label} {'are' if len(of_kind) > 1 else 'is'} {words(code(of_kind))}")
    return f"{opening}; {', '.join(parts)}." if parts else f"{opening}."


def vision_language(names: Iterable[str], family: Mapping[str, str]) -> str:
    """Whether this run has the paper's vision-language models (the triangle's third corner)."""
    towers = [n for n in names if family.get(n) == N.VISION_LANGUAGE]
    if not towers:
        return (
            f"The paper's third corner is the vision-language models ({words(list(VISION_LANGUAGE_FAMILIES))}), "
            "which cannot be installed here."
        )
    return (
        f"The paper's third corner is the vision-language models ({words(list(VISION_LANGUAGE_FAMILIES))}); "
        f"this run has the text towers of {words(code(towers))}, scored below with the other language "
        "models (the language corner)."
    )


def paper_models_here(names: Iterable[str]) -> str:
    """Chapter 5's sentence on the registry's hub checkpoints: which this run embedded, or that
    this build never contacts a hub."""
    hub = hub_models(names)
    if not hub:
        return "they exist only on a model hub, which this build never contacts. Section 8 shows how to switch to them."
    return (
        f"they come from a model hub; this run embedded {len(hub)} of them ({words(code(hub))}), "
        "beside the offline models. Section 8 says how."
    )


def paper_run(names: Iterable[str]) -> str:
    """Chapter 5 section 8's closing sentence: the paper's checkpoints this run embedded (with
    the families it still lacks), or that without a hub the call stops at once."""
    hub = hub_models(names)
    if not hub:
        return "Here, with no hub, it stops at once, before any work, naming what is missing and how to get it:"
    missing = [f for f in PAPER_FAMILIES if f not in paper_families(hub)]
    lacking = f"; it lacks {words(missing, 'and')}" if missing else ""
    return f"This run embedded {words(code(hub))} from the hub, so every table of chapter 6 includes them{lacking}:"


def differences(names: Iterable[str]) -> str:
    """Chapter 6's list of why our numbers may differ from the paper's: the models first (our
    smaller offline ones, or the sizes of the hub checkpoints a ``paper`` run chose), then the
    agent and the instructions."""
    hub = hub_models(names)
    models = "the checkpoints (the paper does not name its sizes)" if hub else "our smaller offline models"
    return f"{models}, our agent (its vision encoder depends on the profile, chapter 3) and our instruction set"
