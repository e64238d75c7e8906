"""One configuration for the whole pipeline: profiles, seeds, sizes and every artifact path.

Every chapter starts from ``get_config(profile)``; a stage's artifacts (:meth:`Config.artifact`)
are keyed by exactly the config sections the stage depends on (:data:`STAGES`), so changing a
knob invalidates what it influenced and nothing else.
``get_config`` checks the type and range of every value it is given (``ValueError`` naming the
field, the value and what is allowed) and normalises them before anything is hashed: an int
field takes ints only (``0``, not ``0.0`` or ``'0'``), a float field takes ints too (``1`` is
``1.0``), a tuple field takes a list too.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import numbers
import os
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cache import Artifact

#: Bumped when the meaning of a cached artifact changes without a config change.
SCHEMA_VERSION = 1

PROFILES = ("fast", "full")  # the book's own profiles: CPU only, offline
#: The paper's model families at their usual sizes (online entries of lva.models.registry): one GPU and a hub.
PAPER_PROFILE = "paper"
PAPER_MODELS = (
    "llama-3.1-8b",
    "qwen2.5-7b",
    "deepseek-llm-7b",
    "bert-base",
    "bert-large",
    "clip-vit-l14",
    "blip-itm-base",
)
ALL_PROFILES = (*PROFILES, PAPER_PROFILE)  # what get_config, the book runner and the command line accept
VISIONS = ("grid", "imagenet")  # AgentConfig.vision (see lva.agent)
TOKEN_INITS = ("random", "identical")  # AgentConfig.token_init
EXPERT_MODES = ("shortest", "look-first")  # DemoConfig.expert (see lva.expert)


def repo_root() -> Path:
    """The repository root (the folder holding ``pyproject.toml``), else the working directory."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").exists() and (parent / "src" / "lva").exists():
            return parent
    return Path.cwd()


@dataclass(frozen=True)
class EnvConfig:
    """The single-room world of chapter 1 (see :mod:`lva.env` for the rules)."""

    room_size: int = 8  # outer size including walls: a 6 x 6 interior, as BabyAI's *Local levels
    num_distractors: int = 3  # balls / boxes / keys besides the target (never the target's twin)
    num_doors: int = 2  # doors in the walls, target door included
    max_steps: int = 64
    escape_distance: int = 4  # ESCAPE-FROM succeeds at >= this many path steps from the object
    escape_start_max: int = 1  # ... starting at most this many path steps from it
    view_size: int = 7  # egocentric partial view (cells)
    rgb_tile: int = 8  # pixels per cell of the RGB agent view (7 * 8 = 56 px)


@dataclass(frozen=True)
class DemoConfig:
    """Expert demonstrations for behavioural cloning."""

    episodes_per_task: int = 6000
    seed: int = 0
    expert: str = "look-first"  # see lva.expert.EXPERT_MODES: actions a partial-view agent can infer


@dataclass(frozen=True)
class CheckConfig:
    """Sizes of chapter 1's expert checks (not part of any artifact's cache key)."""

    expert_episodes_per_task: int = 300
    bot_episodes: int = 100
    eval_episodes_per_task: int = 300  # final evaluation of trained agents on fresh episodes
    compare_visions: tuple[str, ...] = ()  # chapter 3 also trains these encoders (seed = cfg.seed) for comparison


@dataclass(frozen=True)
class AgentConfig:
    """The behavioural-cloning agent's architecture (see :mod:`lva.agent`).

    The size of the view it looks at is not set here: it is ``EnvConfig.view_size``, which
    :func:`lva.agent.build_agent` reads from the full :class:`Config`.
    """

    token_dim: int = 100  # learned token embeddings, as in the paper
    embed_dim: int = 128  # the language embedding E_L, as in the paper
    heads: int = 4  # attention heads of the single transformer block (must divide token_dim)
    mlp_dim: int = 256  # hidden width of the transformer block's MLP
    max_len: int = 16  # longest instruction (in words) the positional table covers
    token_init: str = "random"  # "random" (unit normal) or "identical" (one shared start vector)
    vision: str = "grid"  # "grid" (small residual CNN on the symbolic view) or "imagenet" (later)
    channels: int = 32  # feature-map channels of the vision CNN and of the FiLM blocks
    vision_blocks: int = 2  # residual blocks of the grid CNN
    film_blocks: int = 2  # FiLM-modulated residual conv blocks fusing E_L into vision
    direction_dim: int = 16  # embedding of the agent's heading (0..3)
    match: bool = True  # a language-conditioned match map (query(E_L) . each cell's input) joins the FiLM input
    hidden: int = 128  # fused feature / memory size
    memory: bool = True  # GRU memory over time steps (False: purely reactive policy)


@dataclass(frozen=True)
class TrainConfig:
    """Behavioural cloning (see :mod:`lva.train`): fixed epoch counts, not wall-clock limits, so runs reproduce."""

    epochs: int = 3
    batch_episodes: int = 32  # episodes per batch (~5 transitions each)
    lr: float = 1e-3
    grad_clip: float = 1.0
    val_fraction: float = 0.05  # episodes held out for validation loss and accuracy
    eval_every: int = 1  # epochs between evaluations on fresh episodes
    monitor_episodes_per_task: int = (
        60  # per periodic evaluation during training (the final one: checks.eval_episodes_per_task)
    )


@dataclass(frozen=True)
class GroundConfig:
    """The vision-grounded text encoder trained here (see :mod:`lva.grounding`; its text tower is
    built from the ``agent`` section). Fixed epoch counts, so a seed reproduces an encoder."""

    episodes_per_task: int = 1500  # demonstrations used per task (the first ones: balanced over instructions)
    views: tuple[str, ...] = ("first", "final")  # the episode views the image tower reads (lva.grounding.VIEWS)
    width: int = 32  # channels of the image tower's convolutions
    epochs: int = 12
    batch_size: int = 256  # pairs per batch (same-meaning pairs are masked, not negatives)
    lr: float = 1e-3
    grad_clip: float = 1.0
    temperature: float = 0.1  # initial softmax temperature
    learn_temperature: bool = True  # CLIP-style learned temperature (else fixed)
    holdout_fraction: float = 0.1  # episodes held out: validation loss and the retrieval pool
    pool_size: int = 500  # held-out episodes in the text -> image retrieval pool


@dataclass(frozen=True)
class AlignConfig:
    """Chapter 6's alignment statistics (see :mod:`lva.alignment`; not part of any cache key)."""

    k: int = 15  # neighbourhood size of mutual k-NN and retrieval (the paper's precision@15)
    ks: tuple[int, ...] = (1, 2, 5, 10, 15, 20, 30, 50, 75, 100)  # precision@k against k
    n_perm: int = 1000  # permutations of each null (CKA, RSA, mutual k-NN, disparity)
    n_perm_retrieval: int = 1000  # ... of procrustes_retrieval (refits W for every fold and permutation)
    n_boot: int = 1000  # bootstrap resamples over instructions for each confidence interval
    level: float = 0.95  # confidence level of the intervals
    alpha: float = 0.05  # the null quantile 1 - alpha of the calibrated scores
    seed: int = 0  # permutations and bootstrap draws


@dataclass(frozen=True)
class Config:
    """All knobs of one run; build it with :func:`get_config`."""

    profile: str = "fast"
    seed: int = 0
    threads: int = (
        2  # torch threads of every stage that computes, processes generating demonstrations (the one thread setting)
    )
    agent_seeds: tuple[int, ...] = (
        0,
        1,
    )  # which trained agents exist: their E_L are compared in chapters 5-6 (>= 2: an action ceiling); no cache key
    extra_models: tuple[str, ...] = ()  # optional offline models added to the default zoo (see lva.models)
    cache_dir: Path = field(default_factory=lambda: default_cache_dir())
    env: EnvConfig = field(default_factory=EnvConfig)
    demos: DemoConfig = field(default_factory=DemoConfig)
    checks: CheckConfig = field(default_factory=CheckConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    ground: GroundConfig = field(default_factory=GroundConfig)
    align: AlignConfig = field(default_factory=AlignConfig)

    def section(self, name: str) -> Any:
        """One named section (``"env"``, ``"demos"``, ...)."""
        if name not in _SECTIONS:
            raise ValueError(f"unknown config section {name!r}; valid sections: {', '.join(_SECTIONS)}")
        return getattr(self, name)

    def key(self, *sections: str) -> str:
        """A short hash of the named sections (plus the schema version): the cache key of a stage."""
        payload = {name: dataclasses.asdict(self.section(name)) for name in sections}
        payload["schema"] = SCHEMA_VERSION
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def inputs(self, stage: str) -> dict[str, Any]:
        """What a stage's artifacts are built from (its manifests record it, see :mod:`lva.cache`):
        the stage, its cache key and the config sections the key covers."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; valid stages: {', '.join(STAGES)}")
        sections = STAGES[stage]
        return {
            "stage": stage,
            "key": self.key(*sections),
            "schema": SCHEMA_VERSION,
            **{name: dataclasses.asdict(self.section(name)) for name in sections},
        }

    def artifact(self, stage: str, name: str, **built_from: Any) -> Artifact:
        """One artifact of a pipeline stage (:class:`lva.cache.Artifact`): built from the stage's
        :meth:`inputs` plus ``built_from`` (a seed, a size), under ``<cache>/<stage>/``."""
        from .cache import Artifact

        return Artifact(Path(self.cache_dir), stage, name, {**self.inputs(stage), **built_from})

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view, for printing in the book."""
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))


#: Which config sections each stage's artifacts depend on.
STAGES: dict[str, tuple[str, ...]] = {
    "demos": ("env", "demos"),
    "features": ("env", "demos"),
    "agent": ("env", "demos", "agent", "train"),
    "vision-pairs": (
        "env",
        "demos",
    ),  # episode views + ImageNet features; the file name carries ground.episodes_per_task and ground.views
    "vision": ("env", "demos", "agent", "ground"),  # the vision-grounded encoders (text tower: cfg.agent)
}

_SECTIONS = ("env", "demos", "checks", "agent", "train", "ground", "align")

#: Per profile: section overrides (``{"demos": {...}}``) and top-level fields (``"agent_seeds": ...``).
_PROFILE_OVERRIDES: dict[str, dict[str, Any]] = {
    "fast": {"demos": {"episodes_per_task": 6000}, "align": {"n_perm_retrieval": 100, "n_boot": 100}},
    "full": {
        "agent_seeds": (0, 1, 2),
        "extra_models": ("qwen2.5-coder-1.5b",),  # a second Qwen size for the score-vs-scale figure
        "demos": {"episodes_per_task": 12000},
        "agent": {"vision": "imagenet"},
        "ground": {"episodes_per_task": 4000, "epochs": 20, "pool_size": 1000},
        "checks": {
            "expert_episodes_per_task": 1000,
            "bot_episodes": 500,
            "eval_episodes_per_task": 1000,
            "compare_visions": ("grid",),
        },
    },
}
#: ``paper``: ``full`` (so its agents and encoders are full's, from the same cache) plus the paper's families.
_PROFILE_OVERRIDES[PAPER_PROFILE] = {
    **_PROFILE_OVERRIDES["full"],
    "extra_models": (*_PROFILE_OVERRIDES["full"]["extra_models"], *PAPER_MODELS),
}


def _cache_folder(value: Any, where: str) -> Path:
    """``value`` as an absolute folder path (``~`` expanded), or ``ValueError`` if it is a file."""
    path = Path(os.path.expandvars(os.path.expanduser(str(value)))).resolve()
    if path.exists() and not path.is_dir():
        raise ValueError(f"{where}={value!s} is a file, not a folder: point it at a folder (created if missing)")
    return path


def default_cache_dir() -> Path:
    """``$LVA_CACHE`` (``~`` expanded, made absolute) if set, else ``<repo>/.cache/lva``."""
    env = os.environ.get("LVA_CACHE")
    return _cache_folder(env, "LVA_CACHE") if env else repo_root() / ".cache" / "lva"


# ------------------------------------------------------------------------------------------------
# Checking and normalising values
# ------------------------------------------------------------------------------------------------

Rule = tuple[Callable[[Any], bool], str]


def _at_least(low: float) -> Rule:
    return (lambda v: v >= low), f"a number >= {low}"


def _inside(low: float, high: float) -> Rule:
    return (lambda v: low < v < high), f"a number strictly between {low} and {high}"


def _one_of(choices: tuple[str, ...]) -> Rule:
    return (lambda v: v in choices), f"one of the valid choices: {', '.join(choices)}"


_POSITIVE, _ANY = _at_least(1), ((lambda v: True), "")
#: Range of each field (``section.field``; top-level fields by name); every other int is >= 0.
_RULES: dict[str, Rule] = {
    "threads": _POSITIVE,
    "env.room_size": _at_least(5),
    "env.num_doors": _POSITIVE,
    "env.max_steps": _POSITIVE,
    "env.escape_distance": _POSITIVE,
    "env.view_size": ((lambda v: v >= 3 and v % 2 == 1), "an odd number >= 3"),
    "env.rgb_tile": _POSITIVE,
    "demos.episodes_per_task": _POSITIVE,
    "demos.expert": _one_of(EXPERT_MODES),
    "checks.eval_episodes_per_task": _POSITIVE,
    "checks.compare_visions": _one_of(VISIONS),
    **{
        f"agent.{f}": _POSITIVE
        for f in ("token_dim", "embed_dim", "heads", "mlp_dim", "max_len", "channels", "direction_dim", "hidden")
    },
    "agent.token_init": _one_of(TOKEN_INITS),
    "agent.vision": _one_of(VISIONS),
    **{f"train.{f}": _POSITIVE for f in ("epochs", "batch_episodes", "eval_every", "monitor_episodes_per_task")},
    "train.lr": ((lambda v: v > 0), "a number > 0"),
    "train.grad_clip": ((lambda v: v > 0), "a number > 0"),
    "train.val_fraction": _inside(0, 1),
    **{f"align.{f}": _POSITIVE for f in ("k", "ks", "n_perm", "n_perm_retrieval")},
    "align.level": _inside(0, 1),
    "align.alpha": _inside(0, 1),
}
_NON_EMPTY = {"agent_seeds", "align.ks"}  # tuples that need at least one item (the others may be empty)


def _bad(where: str, value: Any, allowed: str) -> ValueError:
    return ValueError(f"config field {where} = {value!r} ({type(value).__name__}) is not allowed: must be {allowed}")


def _scalar(where: str, value: Any, kind: type) -> Any:
    """``value`` as a plain ``kind`` (int, float, str or bool), or ValueError."""
    if kind is bool:
        if isinstance(value, bool) or type(value).__name__ == "bool_":
            return bool(value)
        raise _bad(where, value, "True or False")
    if kind is str:
        if isinstance(value, str):
            return value
        raise _bad(where, value, "a string")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _bad(where, value, "an integer (not a float or a string)" if kind is int else "a number")
    if kind is int:
        if not isinstance(value, numbers.Integral):
            raise _bad(where, value, "an integer (not a float or a string)")
        return int(value)
    if value != value or abs(value) == float("inf"):
        raise _bad(where, value, "a finite number")
    return float(value)


def _rule(where: str, kind: Any) -> Rule:
    return _RULES.get(where, _at_least(0) if kind is int else _ANY)


def _checked(where: str, value: Any, hint: Any) -> Any:
    """``value`` checked against its field's type ``hint`` and range, and normalised."""
    if hint is Path:
        if not isinstance(value, (str, os.PathLike)):
            raise _bad(where, value, "a folder path")
        return _cache_folder(value, where)
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)):
            raise _bad(where, value, f"a tuple of {item.__name__} (a list is fine)")
        if where in _NON_EMPTY and not value:
            raise _bad(where, value, f"a non-empty tuple of {item.__name__}")
        items = tuple(_scalar(f"{where}[{i}]", v, item) for i, v in enumerate(value))
        if where == "agent_seeds" and len(set(items)) != len(items):
            raise _bad(where, value, "distinct seeds")
        test, allowed = _rule(where, item)
        if not all(test(v) for v in items):
            raise _bad(where, value, f"made of items that are {allowed}")
        return items
    normal = _scalar(where, value, hint)
    test, allowed = _rule(where, hint)
    if not test(normal):
        raise _bad(where, value, allowed)
    return normal


def _check_fields(cls: type, values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {name: _checked(f"{prefix}{name}", v, hints[name]) for name, v in values.items()}


def get_config(profile: str = "fast", **overrides: Any) -> Config:
    """The config of a profile, with optional overrides.

    Overrides are top-level fields (``seed=1``) or ``section__field`` pairs
    (``env__room_size=10``). Unknown profiles or fields raise ``ValueError`` naming the choices.
    """
    if profile not in ALL_PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid profiles: {', '.join(ALL_PROFILES)}")
    profile_overrides = _PROFILE_OVERRIDES[profile]
    sections: dict[str, dict[str, Any]] = {name: dict(v) for name, v in profile_overrides.items() if name in _SECTIONS}
    top: dict[str, Any] = {"profile": profile, **{k: v for k, v in profile_overrides.items() if k not in _SECTIONS}}
    top_fields = {f.name for f in dataclasses.fields(Config)} - set(_SECTIONS) - {"profile"}
    for name, value in overrides.items():
        if "__" in name:
            sec, fld = name.split("__", 1)
            if sec not in _SECTIONS:
                raise ValueError(f"unknown config section {sec!r}; valid sections: {', '.join(_SECTIONS)}")
            valid = {f.name for f in dataclasses.fields(typing.get_type_hints(Config)[sec])}
            if fld not in valid:
                raise ValueError(f"unknown field {fld!r} in section {sec!r}; valid fields: {', '.join(sorted(valid))}")
            sections.setdefault(sec, {})[fld] = value
        elif name in top_fields:
            top[name] = value
        else:
            choices = sorted(top_fields) + [f"{s}__<field>" for s in _SECTIONS]
            raise ValueError(f"unknown config override {name!r}; valid: {', '.join(choices)}")
    top = _check_fields(Config, top)
    base = Config(cache_dir=top["cache_dir"]) if "cache_dir" in top else Config()  # LVA_CACHE unread if overridden
    built = {
        sec: dataclasses.replace(getattr(base, sec), **_check_fields(type(getattr(base, sec)), vals, f"{sec}."))
        for sec, vals in sections.items()
    }
    cfg = dataclasses.replace(base, **top, **built)
    if cfg.agent.token_dim % cfg.agent.heads:
        raise ValueError(
            f"config field agent.heads = {cfg.agent.heads} must divide agent.token_dim = {cfg.agent.token_dim}"
        )
    if cfg.env.escape_start_max >= cfg.env.escape_distance:
        raise ValueError(
            f"config field env.escape_start_max = {cfg.env.escape_start_max} must be smaller than "
            f"env.escape_distance = {cfg.env.escape_distance}"
        )
    return cfg
