"""Benchmark lva.alignment: all-pairs x all-metrics permutation tests, and vectorised kNN.

Run:  python benchmarks/bench_alignment.py  [--n 500] [--n-perm 1000] [--spaces 10]
                                            [--n-perm-retrieval 100]

(a) compare_all on 10 synthetic representations (dims 50..1536) at N=500 with every metric and
    1000 permutations; procrustes_retrieval uses --n-perm-retrieval (default
    DEFAULT_N_PERM["procrustes_retrieval"] = 100), as every permutation refits the map W of
    every fold: 5 SVDs of 32 x 32 per pair and permutation, ~0.12 ms each on this CPU (LAPACK,
    called from the compiled kernel), so 1000 permutations of 45 pairs cost ~27 core-seconds of SVD
    alone.  Prints the time per metric
    and the total (target <= 10 s on 2 cores).  The nulls run in compiled (numba) kernels on
    lva.alignment's own two threads, with BLAS single-threaded (threadpoolctl); the first call
    of a fresh checkout also compiles them (cached afterwards), so a warm-up call runs first.
(b) vectorised mutual_knn against a straightforward per-row Python loop on the same data;
    asserts they agree and prints the speed ratio.
(c) the procrustes_retrieval null of one pair, 10 permutations (compiled: the gather, product,
    SVD and ranking of every fold and permutation run in one kernel) against its definition, the
    score recomputed on each permuted copy of B (PCA, folds and maps refitted); asserts they
    agree and prints the speed ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from lva import alignment as al
from lva.config import get_config

DIMS = (50, 64, 96, 128, 256, 384, 512, 768, 1024, 1536)


def synthetic_spaces(n: int, n_spaces: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random linear read-outs of one shared 16-d latent plus private noise of growing size."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, 16))
    spaces = {}
    for i, d in enumerate((DIMS * 2)[:n_spaces]):
        signal = latent @ rng.standard_normal((16, d)) / 4.0
        spaces[f"rep{i}_d{d}"] = signal + (1.0 + 0.5 * i) * rng.standard_normal((n, d))
    return spaces


def mutual_knn_loop(A: np.ndarray, B: np.ndarray, k: int) -> float:
    """Reference: one row at a time, centred cosine, self excluded, ties by (-similarity, index)."""

    def unit(X: np.ndarray) -> np.ndarray:
        X = X - X.mean(axis=0)
        return X / np.linalg.norm(X, axis=1, keepdims=True)

    A, B = unit(A), unit(B)
    total = 0
    for i in range(len(A)):
        sets = []
        for X in (A, B):
            sims = (X @ X[i]).tolist()
            others = sorted((j for j in range(len(X)) if j != i), key=lambda j: (-sims[j], j))
            sets.append(set(others[:k]))
        total += len(sets[0] & sets[1])
    return total / (k * len(A))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--n-perm", type=int, default=1000)
    ap.add_argument("--spaces", type=int, default=10)
    ap.add_argument("--n-perm-retrieval", type=int, default=al.DEFAULT_N_PERM["procrustes_retrieval"])
    args = ap.parse_args()
    spaces = synthetic_spaces(args.n, args.spaces)
    n_pairs = args.spaces * (args.spaces - 1) // 2
    print(
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (other jobs skew timings), "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}"
    )
    print(
        f"(a) compare_all: {args.spaces} spaces (dims {[x.shape[1] for x in spaces.values()]}),"
        f" N={args.n}, {n_pairs} pairs, n_perm={args.n_perm} "
        f"(procrustes_retrieval: {args.n_perm_retrieval})"
    )
    al.compare_all(dict(list(spaces.items())[:2]), n_perm=2, n_perm_retrieval=2)  # compile
    t0 = time.perf_counter()
    recs = al.compare_all(spaces, n_perm=args.n_perm, n_perm_retrieval=args.n_perm_retrieval, seed=0)
    total = time.perf_counter() - t0
    print(
        f"    all metrics in one compare_all call: {total:.2f} s for {n_pairs} pairs x "
        f"{len(al.METRICS)} metrics (target <= 10 s on 2 cores)"
    )
    print("    per metric group (one call each; CKA and RSA share a pass when called together):")
    groups = [("cka", "cka_biased", "rsa")] + [(m,) for m in al.METRICS if m not in al.QUAD_METRICS]
    for group in groups:
        t0 = time.perf_counter()
        recs = al.compare_all(spaces, metrics=group, n_perm=args.n_perm, n_perm_retrieval=args.n_perm_retrieval, seed=0)
        dt = time.perf_counter() - t0
        scores = [r["score"] for r in recs]
        print(
            f"    {' + '.join(group):22s} {dt:7.2f} s   (n_perm {recs[0]['n_perm']}, scores "
            f"{min(scores):.2f}..{max(scores):.2f})"
        )

    k = get_config().align.k  # the book's neighbourhood size
    print(f"(b) mutual_knn vectorised vs per-row loop, N={args.n}, k={k}")
    A, B = spaces["rep0_d50"], spaces[list(spaces)[-1]]
    t0 = time.perf_counter()
    ref = mutual_knn_loop(A, B, k)
    t_loop = time.perf_counter() - t0
    t0 = time.perf_counter()
    reps = 20
    for _ in range(reps):
        vec = al.measure("mutual_knn", A, B, k=k)
    t_vec = (time.perf_counter() - t0) / reps
    assert abs(ref - vec) < 1e-12, (ref, vec)
    print(
        f"    loop {t_loop:.3f} s, vectorised {t_vec * 1e3:.1f} ms, agree ({vec:.4f}); "
        f"speed ratio {t_loop / t_vec:.0f}x"
    )

    n_ret = 10
    print(f"(c) procrustes_retrieval null vs recomputation per permutation, N={args.n}, k={k}, {n_ret} permutations")
    opts = {"k": k}
    t0 = time.perf_counter()
    null = al.permutation_null("procrustes_retrieval", A, B, n_perm=n_ret, seed=0, **opts)
    t_null = time.perf_counter() - t0
    retrieval = al.METRICS_BY_NAME["procrustes_retrieval"]
    perms = retrieval.permutations(retrieval.prepared(A), len(A), n_ret, 0)  # within the held-out folds
    t0 = time.perf_counter()
    again = [al.measure("procrustes_retrieval", A, B[p], **opts) for p in perms]
    t_again = time.perf_counter() - t0
    assert np.allclose(null, again, rtol=0, atol=1e-10), (null, again)
    print(f"    recomputed {t_again:.3f} s, null {t_null * 1e3:.1f} ms, agree; speed ratio {t_again / t_null:.0f}x")


if __name__ == "__main__":
    main()
