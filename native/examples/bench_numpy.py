"""numpy baseline for `scripts/bench analyses`.

Loads the .npy files the Rust benchmark wrote, runs the same estimators with numpy (BLAS for the
matrix products), and prints one JSON object: seconds per analysis (best of `repeats`) and the
values, so the Rust side can check that both computed the same thing.

Usage: python3 bench_numpy.py DIR REPEATS
"""
import json
import sys
import time

import numpy as np


def linear_cka(x, y):
    """Biased linear CKA in feature space (Kornblith et al. 2019)."""
    x = x - x.mean(0, keepdims=True)
    y = y - y.mean(0, keepdims=True)
    xty = np.linalg.norm(x.T @ y) ** 2
    return xty / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


def minibatch_cka(layers_a, layers_b, batch_size):
    """Minibatch CKA with unbiased HSIC (Nguyen et al. 2021), batches split as losslens does."""
    n = layers_a[0].shape[0]
    batches = -(-n // batch_size)
    sizes = [n // batches + (1 if b < n % batches else 0) for b in range(batches)]
    la, lb = len(layers_a), len(layers_b)
    s_ab, s_aa, s_bb = np.zeros((la, lb)), np.zeros(la), np.zeros(lb)
    start = 0
    for m in sizes:
        def grams(layers):
            g, s = [], []
            for x in layers:
                xb = x[start:start + m]
                xb = xb - xb.mean(0)  # HSIC_1 is translation invariant; as losslens does
                k = xb @ xb.T
                np.fill_diagonal(k, 0)
                g.append(k.ravel())
                s.append(k.sum(0))
            return np.stack(g), np.stack(s)
        ga, sa = grams(layers_a)
        gb, sb = grams(layers_b)
        def hsic(tr, cross, ta, tb):
            return (tr + np.outer(ta, tb) / ((m - 1) * (m - 2)) - 2 / (m - 2) * cross) / (m * (m - 3))
        ta, tb = sa.sum(1), sb.sum(1)
        s_ab += hsic(ga @ gb.T, sa @ sb.T, ta, tb)
        s_aa += np.diag(hsic(ga @ ga.T, sa @ sa.T, ta, ta))
        s_bb += np.diag(hsic(gb @ gb.T, sb @ sb.T, tb, tb))
        start += m
    return s_ab / np.sqrt(np.outer(s_aa, s_bb))


def class_separation(x, labels):
    """Cosine class separation R^2 (Kornblith et al. 2021, eq. 11) through class means."""
    k = labels.max() + 1
    z = x / np.linalg.norm(x, axis=1, keepdims=True)
    order = np.argsort(labels, kind="stable")
    counts = np.bincount(labels, minlength=k)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    means = np.add.reduceat(z[order], offsets, axis=0) / counts[:, None]
    resid = ((z - means[labels]) ** 2).sum(1)
    within = (np.bincount(labels, weights=resid, minlength=k) / counts).mean()
    between = ((means - means.mean(0)) ** 2).sum(1).mean()
    return between / (within + between)


def best_of(repeats, f):
    times, value = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        value = f()
        times.append(time.perf_counter() - t)
    return min(times), value


def main():
    folder, repeats = sys.argv[1], int(sys.argv[2])
    load = lambda name: np.load(f"{folder}/{name}.npy")
    out = {"numpy": np.__version__}
    x, y = load("cka_x"), load("cka_y")
    out["cka_s"], out["cka"] = best_of(repeats, lambda: float(linear_cka(x, y)))
    del x, y
    n_layers = int(open(f"{folder}/layers.txt").read())
    a = [load(f"mb_a{i}") for i in range(n_layers)]
    b = [load(f"mb_b{i}") for i in range(n_layers)]
    batch = int(open(f"{folder}/batch.txt").read())
    out["minibatch_s"], m = best_of(repeats, lambda: minibatch_cka(a, b, batch))
    out["minibatch"] = m.tolist()
    del a, b
    emb, labels = load("sep_x"), load("sep_labels").astype(np.int64)
    out["separation_s"], out["r2"] = best_of(repeats, lambda: float(class_separation(emb, labels)))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
