"""The language models this process holds in memory (chapter 5), so that a model asked for
again is not loaded again, within a budget of weight bytes."""

from __future__ import annotations

import gc
import time
from pathlib import Path

from lva import models as M

#: The models held, oldest first, their weights together at most :data:`HELD_BYTES`: the fast
#: profile's three stay loaded between chapter 5's two passes, while Qwen2.5-Coder-1.5B of the
#: full profile is held alone, so that the full profile's decoders are never all in memory at
#: once. A model asked for again after it was let go is reloaded from its converted weights.
HELD: dict[str, M.Loaded] = {}
HELD_BYTES = 4_000_000_000


def load(name: str, path: str | Path | None, device: str | None) -> tuple[M.Loaded, float]:
    """(the model, seconds spent loading it now: 0.0 when this process held it already). The
    oldest held models are let go first when the new one would not fit :data:`HELD_BYTES`."""
    key = f"{name}|{path}|{device}"
    if key in HELD:
        return HELD[key], 0.0
    # float32 weights, as on a CPU; a local folder's size is unknown
    expected = 0 if path is not None else 4 * (M.get_spec(name).parameters or 0)
    while HELD and sum(m.weight_bytes for m in HELD.values()) + expected > HELD_BYTES:
        del HELD[next(iter(HELD))]  # the oldest goes before the next one loads, not after
        gc.collect()
    t0 = time.perf_counter()
    HELD[key] = M.load(name, path=path, device=device)
    return HELD[key], time.perf_counter() - t0


def clear() -> None:
    """Forget the models held in this process (frees their memory unless the caller holds them)."""
    HELD.clear()
    gc.collect()
