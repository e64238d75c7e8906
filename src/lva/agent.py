"""The behavioural-cloning agent: language, vision, FiLM fusion, GRU memory and a policy head.

Language pathway (as the paper states): words -> 100-d learned token embeddings (+ learned
positions) -> ONE pre-norm transformer block -> masked mean pooling over the real tokens -> a
linear map to the 128-d language embedding **E_L**. :meth:`Agent.embed` reads E_L exactly there
(after pooling, before any fusion with vision); chapter 5 compares it with language models.

Vision pathway: ``vision="grid"`` is a small residual CNN over MiniGrid's symbolic 7 x 7 x 3 view
(each channel's integer code is embedded and the three embeddings summed per cell);
``vision="imagenet"`` reads frozen EfficientNet-Lite0 features of the RGB view, one 40-d vector
per cell (:mod:`lva.vision`), through a 1x1 conv and a residual block.

Fusion: first a **match map**, one score per cell, ``query(E_L) . cell``, where ``cell`` is what
the vision module received for that cell (one-hot type and colour, or the frozen ImageNet vector);
it joins the feature map as one more channel. Then E_L yields a per-channel scale and shift
(FiLM) for each of a few residual conv blocks; the map is flattened, joined with the heading
embedding, passed through a GRU cell (``memory=True``) and a small MLP to logits over the six
actions. Why the match map: without it (``match=False``) behavioural cloning on the ``fast``
demonstrations never learned *which* object the instruction names (PICK-UP stayed near the 25%
chance of grabbing one of four objects in every variant tried; 74% with the ``full`` profile's
ImageNet features and twice the data), while the same agent given an oracle channel marking the named object
solved every task; the match map makes that binding linear in one trained map, and cloning then
learns it within one epoch. It is computed from E_L like FiLM is, so E_L is still shaped by the
action loss alone.

Token initialisation: ``"random"`` (unit normal, PyTorch's default for embeddings) is the default:
each word starts clearly distinct, so E_L carries colour and object words from the first update
(with GPT-style std 0.02, E_L of "pick up the red ball" and "... blue ball" stayed at cosine 1.00
after two epochs and PICK-UP stayed at chance); ``"identical"`` starts every token from one shared vector, so that
words are told apart only by what behavioural cloning teaches (the paper's description).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import TOKEN_INITS, VISIONS, AgentConfig, Config, EnvConfig
from .env import ACTION_NAMES
from .instructions import vocabulary
from .io import atomic_path

#: Number of actions the policy chooses among: the environment's actions (:data:`lva.env.ACTION_NAMES`).
N_ACTIONS = len(ACTION_NAMES)
#: Sizes of MiniGrid's symbolic codes: object type (0..10), colour (0..5), state (0..2).
CODE_SIZES = (11, 6, 3)

PAD, UNK = "<pad>", "<unk>"


class Tokenizer:
    """Whitespace word tokenizer over the instruction vocabulary; ``<pad>`` = 0, ``<unk>`` = 1."""

    def __init__(self, words: Sequence[str] | None = None) -> None:
        words = vocabulary() if words is None else tuple(w for w in words if w not in (PAD, UNK))
        self.vocab: tuple[str, ...] = (PAD, UNK, *words)
        self.index: dict[str, int] = {w: i for i, w in enumerate(self.vocab)}

    def __len__(self) -> int:
        return len(self.vocab)

    def tokens(self, text: str) -> list[int]:
        """Token ids of one text (lower-cased, split on whitespace); unknown words map to ``<unk>``."""
        words = text.lower().split()
        if not words:
            raise ValueError("cannot encode an empty instruction")
        return [self.index.get(w, 1) for w in words]

    def encode(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Ids ``(n, L)`` padded with 0 to the longest text, and a mask that is True on real tokens."""
        if isinstance(texts, str):
            raise TypeError("encode expects a list of strings, not a single string")
        seqs = [self.tokens(t) for t in texts]
        length = max((len(s) for s in seqs), default=0)
        ids = torch.zeros((len(seqs), length), dtype=torch.long)
        for row, seq in enumerate(seqs):
            ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        return ids, ids != 0


class TransformerBlock(nn.Module):
    """One pre-norm transformer block: masked multi-head self-attention and an MLP, both residual."""

    def __init__(self, dim: int, heads: int, mlp_dim: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"token_dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """``x`` (B, L, D); ``mask`` (B, L) True on real tokens, which never attend to padding."""
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
        x = x + self.proj(att.transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.norm2(x))


class LanguageEncoder(nn.Module):
    """Instruction ids -> E_L: token + position embeddings, one transformer block, masked mean, linear."""

    def __init__(self, cfg: AgentConfig, vocab_size: int) -> None:
        super().__init__()
        if cfg.token_init not in TOKEN_INITS:
            raise ValueError(f"unknown token_init {cfg.token_init!r}; valid choices: {', '.join(TOKEN_INITS)}")
        self.tokens = nn.Embedding(vocab_size, cfg.token_dim, padding_idx=0)
        self.positions = nn.Embedding(cfg.max_len, cfg.token_dim)
        with torch.no_grad():
            if cfg.token_init == "identical":
                self.tokens.weight.copy_(torch.randn(1, cfg.token_dim).expand(vocab_size, -1))
            else:
                self.tokens.weight.normal_(0.0, 1.0)  # unit scale: each word starts clearly distinct
            self.positions.weight.normal_(0.0, 0.02)
        self.block = TransformerBlock(cfg.token_dim, cfg.heads, cfg.mlp_dim)
        self.norm = nn.LayerNorm(cfg.token_dim)
        self.out = nn.Linear(cfg.token_dim, cfg.embed_dim)

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:
        """``(B, L)`` ids and mask -> ``(B, embed_dim)`` E_L; padding does not change a sentence's vector."""
        if ids.shape[1] > self.positions.num_embeddings:
            raise ValueError(f"instruction of {ids.shape[1]} words exceeds max_len {self.positions.num_embeddings}")
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.block(self.tokens(ids) + self.positions(pos)[None], mask)
        w = mask.unsqueeze(-1).to(x.dtype)
        pooled = (self.norm(x) * w).sum(1) / w.sum(1).clamp_min(1.0)
        return self.out(pooled)


class ResBlock(nn.Module):
    """A pre-norm residual block of two 3x3 convolutions; per-sample GroupNorm keeps scales tame."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(1, channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.relu(self.conv1(self.norm(x))))


class GridEncoder(nn.Module):
    """Symbolic (B, 7, 7, 3) uint8 view -> (B, C, 7, 7) feature map, by code embeddings and residual convs."""

    def __init__(self, cfg: AgentConfig) -> None:
        super().__init__()
        self.out_channels = cfg.channels
        # one embedding per code channel, summed per cell (as BabyAI does): a colour or a type is
        # learned once and shared by every object that has it
        self.types = nn.Embedding(CODE_SIZES[0], cfg.channels)
        self.colors = nn.Embedding(CODE_SIZES[1], cfg.channels)
        self.states = nn.Embedding(CODE_SIZES[2], cfg.channels)
        self.stem = nn.Conv2d(cfg.channels, cfg.channels, 3, padding=1)
        self.blocks = nn.Sequential(*[ResBlock(cfg.channels) for _ in range(cfg.vision_blocks)])

    def cells(self, image: Tensor) -> Tensor:
        """``(B, 17, 7, 7)`` one-hot object type and colour of every cell: what the match map reads."""
        codes = image.long()
        onehot = torch.cat([F.one_hot(codes[..., 0], CODE_SIZES[0]), F.one_hot(codes[..., 1], CODE_SIZES[1])], dim=-1)
        return onehot.permute(0, 3, 1, 2).float()

    def forward(self, image: Tensor) -> Tensor:
        """Embed each cell's type, colour and state, sum the three, then convolve."""
        codes = image.long()
        x = self.types(codes[..., 0]) + self.colors(codes[..., 1]) + self.states(codes[..., 2])
        x = x.permute(0, 3, 1, 2)  # (B, C, 7, 7)
        return self.blocks(self.stem(x))


class ImageNetHead(nn.Module):
    """Frozen ImageNet features ``(B, 40, 7, 7)`` (see :mod:`lva.vision`) -> ``(B, C, 7, 7)``: a 1x1
    conv and a residual block.

    The pretrained CNN itself is frozen and lives outside the module (its features are cached per
    view), so checkpoints hold only what behavioural cloning trains.
    """

    def __init__(self, cfg: AgentConfig) -> None:
        super().__init__()
        from .vision import FEATURE_CHANNELS

        self.out_channels = cfg.channels
        self.adapt = nn.Conv2d(FEATURE_CHANNELS, cfg.channels, 1)
        self.blocks = nn.Sequential(*[ResBlock(cfg.channels) for _ in range(cfg.vision_blocks)])

    def cells(self, features: Tensor) -> Tensor:
        """The frozen per-cell ImageNet features themselves: what the match map reads."""
        return features.float()

    def forward(self, features: Tensor) -> Tensor:
        return self.blocks(self.adapt(features.float()))


def cell_dim(cfg: AgentConfig) -> int:
    """Size of the per-cell descriptor the match map reads: 17 one-hot codes, or 40 ImageNet channels."""
    from .vision import FEATURE_CHANNELS

    return CODE_SIZES[0] + CODE_SIZES[1] if cfg.vision == "grid" else FEATURE_CHANNELS


def build_vision(cfg: AgentConfig) -> nn.Module:
    """The vision encoder named by ``cfg.vision``; unknown names raise ``ValueError`` naming the choices."""
    if cfg.vision == "grid":
        return GridEncoder(cfg)
    if cfg.vision == "imagenet":
        return ImageNetHead(cfg)
    raise ValueError(f"unknown vision {cfg.vision!r}; valid choices: {', '.join(VISIONS)}")


class FiLMBlock(nn.Module):
    """A residual conv block whose normalised channels E_L scales and shifts (FiLM): ``h * (1 + gamma) + beta``."""

    def __init__(self, channels: int, cond_dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm = nn.GroupNorm(1, channels, affine=False)
        self.film = nn.Linear(cond_dim, 2 * channels)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        gamma, beta = self.film(cond)[:, :, None, None].chunk(2, dim=1)
        return x + F.relu(self.norm(self.conv(x)) * (1 + gamma) + beta)


class Fusion(nn.Module):
    """Match map + FiLM blocks conditioned on E_L, the map flattened (position matters), heading,
    linear + LayerNorm to ``hidden``.

    ``view_size`` is the side of the egocentric view (``EnvConfig.view_size``): the flattened map has
    ``channels * view_size**2`` features.
    """

    def __init__(self, cfg: AgentConfig, in_channels: int, view_size: int) -> None:
        super().__init__()
        self.match = cfg.match
        if self.match:  # a language-conditioned match map: query(E_L) . (what the vision saw in each cell)
            self.query = nn.Linear(cfg.embed_dim, cell_dim(cfg))
        extra = int(self.match)
        self.adapt = (
            nn.Conv2d(in_channels + extra, cfg.channels, 1) if (in_channels != cfg.channels or extra) else nn.Identity()
        )
        self.blocks = nn.ModuleList([FiLMBlock(cfg.channels, cfg.embed_dim) for _ in range(cfg.film_blocks)])
        self.direction = nn.Embedding(4, cfg.direction_dim)
        self.out = nn.Linear(cfg.channels * view_size * view_size + cfg.direction_dim, cfg.hidden)
        self.norm = nn.LayerNorm(cfg.hidden)

    def match_map(self, e_l: Tensor, cells: Tensor) -> Tensor:
        """``(B, 7, 7)`` scores: how well each cell matches the instruction.

        ``cells`` ``(B, D, 7, 7)`` are the vision module's fixed per-cell inputs (one-hot codes, or
        frozen ImageNet features): the score is linear in the trained query, so that learning *which
        object the instruction names* is a linear problem rather than a product of two random maps.
        """
        if not self.match:
            raise ValueError("this agent has no match map (agent.match = False)")
        return (cells * self.query(e_l)[:, :, None, None]).sum(1)

    def forward(self, e_l: Tensor, features: Tensor, direction: Tensor, cells: Tensor | None = None) -> Tensor:
        if self.match:
            if cells is None:
                raise ValueError("an agent with a match map needs the per-cell inputs (cells=...)")
            features = torch.cat([features, self.match_map(e_l, cells)[:, None]], dim=1)
        x = self.adapt(features)
        for block in self.blocks:
            x = block(x, e_l)
        flat = x.flatten(1)  # keep where things are: the target's place in the view decides the turn
        return F.relu(self.norm(self.out(torch.cat([flat, self.direction(direction.long())], dim=1))))


class Agent(nn.Module):
    """The whole agent; :meth:`forward` is one time step for a batch, :meth:`embed` reads E_L.

    ``view_size`` is the side of the view it looks at, ``EnvConfig.view_size`` (build it from the
    full config with :func:`build_agent`).
    """

    def __init__(
        self, cfg: AgentConfig, tokenizer: Tokenizer | None = None, view_size: int = EnvConfig.view_size
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.view_size = view_size
        self.tokenizer = tokenizer or Tokenizer()
        self.language_encoder = LanguageEncoder(cfg, len(self.tokenizer))
        self.vision = build_vision(cfg)
        self.fusion = Fusion(cfg, self.vision.out_channels, view_size)
        self.memory = nn.GRUCell(cfg.hidden, cfg.hidden) if cfg.memory else None
        self.policy = nn.Sequential(nn.Linear(cfg.hidden, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, N_ACTIONS))

    def view_input(self, images: np.ndarray) -> Tensor:
        """What the vision module consumes for symbolic views ``(B, 7, 7, 3)``: the views, or their
        ImageNet features."""
        if self.cfg.vision == "imagenet":
            from .vision import imagenet_features

            return torch.from_numpy(imagenet_features(images).astype(np.float32))
        return torch.from_numpy(np.ascontiguousarray(images))

    def initial_state(self, batch: int) -> Tensor:
        """Zero memory ``(batch, hidden)`` for the start of episodes."""
        return torch.zeros(batch, self.cfg.hidden, device=self.policy[0].weight.device)

    def language(self, ids: Tensor, mask: Tensor) -> Tensor:
        """E_L ``(B, embed_dim)`` of tokenized instructions."""
        return self.language_encoder(ids, mask)

    def fuse(self, e_l: Tensor, image: Tensor, direction: Tensor) -> Tensor:
        """Vision, match map and FiLM fusion of one time step: ``(B, hidden)`` before the memory."""
        cells = self.vision.cells(image) if self.fusion.match else None
        return self.fusion(e_l, self.vision(image), direction, cells)

    def step(self, e_l: Tensor, image: Tensor, direction: Tensor, hidden: Tensor) -> tuple[Tensor, Tensor]:
        """One time step from a precomputed E_L (lets training reuse E_L over an episode)."""
        x = self.fuse(e_l, image, direction)
        new_hidden = self.memory(x, hidden) if self.memory is not None else x
        return self.policy(new_hidden), new_hidden

    def forward(
        self, ids: Tensor, mask: Tensor, image: Tensor, direction: Tensor, hidden: Tensor
    ) -> tuple[Tensor, Tensor]:
        """One time step: ``(logits (B, N_ACTIONS), new_hidden (B, hidden))``; without memory ``hidden`` is ignored."""
        return self.step(self.language(ids, mask), image, direction, hidden)

    @torch.no_grad()
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """E_L of each text, ``(n, embed_dim)`` float32 in input order, in eval mode without gradients."""
        was_training = self.training
        self.eval()
        try:
            ids, mask = self.tokenizer.encode(list(texts))
            device = self.policy[0].weight.device
            return self.language(ids.to(device), mask.to(device)).float().cpu().numpy().astype(np.float32)
        finally:
            self.train(was_training)

    @torch.no_grad()
    def trace(
        self, texts: Sequence[str], images: np.ndarray, directions: np.ndarray
    ) -> list[tuple[str, str, tuple[int, ...]]]:
        """(pathway, stage, tensor shape) at every stage of one time step on a real batch, for the book."""
        enc = self.language_encoder
        ids, mask = self.tokenizer.encode(list(texts))
        pos = torch.arange(ids.shape[1])
        tokens = enc.tokens(ids) + enc.positions(pos)[None]
        block = enc.block(tokens, mask)
        e_l = self.language(ids, mask)
        view = self.view_input(images)
        feats = self.vision(view)
        fused = self.fuse(e_l, view, torch.as_tensor(directions).long())
        hidden = self.memory(fused, self.initial_state(len(texts))) if self.memory is not None else fused
        logits = self.policy(hidden)
        return [
            ("language", "token ids (padded)", tuple(ids.shape)),
            ("language", "token + position embeddings", tuple(tokens.shape)),
            ("language", "after the transformer block", tuple(block.shape)),
            ("language", "E_L (masked mean, linear)", tuple(e_l.shape)),
            ("vision", f"view input ({self.cfg.vision})", tuple(view.shape)),
            ("vision", "visual feature map", tuple(feats.shape)),
            ("action", "FiLM fusion + heading", tuple(fused.shape)),
            ("action", "GRU memory" if self.memory is not None else "no memory", tuple(hidden.shape)),
            ("action", "action logits", tuple(logits.shape)),
        ]

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters per part (language, vision, fusion, memory, policy) and in total."""
        parts = {
            "language": self.language_encoder,
            "vision": self.vision,
            "fusion": self.fusion,
            "memory": self.memory,
            "policy": self.policy,
        }
        counts = {k: sum(p.numel() for p in m.parameters()) if m is not None else 0 for k, m in parts.items()}
        counts["total"] = sum(p.numel() for p in self.parameters())
        return counts


def build_agent(cfg: Config | AgentConfig, seed: int) -> Agent:
    """A freshly initialised agent, identical for the same seed; the global RNG state is left untouched.

    From a full :class:`Config` the view size is ``cfg.env.view_size``; a bare :class:`AgentConfig`
    gets the default view.
    """
    agent_cfg, view_size = (
        (cfg, EnvConfig.view_size) if isinstance(cfg, AgentConfig) else (cfg.agent, cfg.env.view_size)
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Agent(agent_cfg, view_size=view_size)


def save_checkpoint(agent: Agent, path: str | Path) -> Path:
    """Write the state dict, the AgentConfig (JSON), the view size and the vocabulary to one file, atomically."""
    path = Path(path)
    payload = {
        "config": json.dumps(dataclasses.asdict(agent.cfg), sort_keys=True),
        "view_size": agent.view_size,
        "vocab": list(agent.tokenizer.vocab),
        "state_dict": {k: v.detach().cpu() for k, v in agent.state_dict().items()},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Agent:
    """Rebuild an agent written by :func:`save_checkpoint`, in eval mode."""
    payload = torch.load(Path(path), map_location=map_location, weights_only=True)
    fields = json.loads(payload["config"])
    view_cells = fields.pop("view_cells", None)  # checkpoints written before the view size came from EnvConfig
    view_size = payload.get("view_size") or (math.isqrt(view_cells) if view_cells else EnvConfig.view_size)
    agent = Agent(AgentConfig(**fields), Tokenizer(payload["vocab"]), view_size=view_size)
    agent.load_state_dict(payload["state_dict"])
    return agent.eval()
