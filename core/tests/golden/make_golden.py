#!/usr/bin/env python3
"""Independent numpy/scipy/scikit-learn reference values for losslens' analyses.

This script is the golden-test oracle for the Rust crate `losslens-core`. It
builds a handful of deterministic input arrays (closed-form formulas, no RNG),
computes every analysis quantity the crate implements with straightforward
float64 numpy/scipy code written from the papers, and writes

    inputs.npz     the input arrays (np.savez, uncompressed)
    expected.json  the reference values (floats in full repr precision)

next to itself. It is run once by hand (`python3 make_golden.py` from this
folder) and its outputs are committed; it is NOT run in CI.

References
  [K19]  Kornblith, Norouzi, Lee, Hinton. Similarity of Neural Network
         Representations Revisited. ICML 2019 (linear CKA + CKA colab).
  [N21]  Nguyen, Raghu, Kornblith. Do Wide and Deep Networks Learn the Same
         Things? ICLR 2021 (minibatch CKA, unbiased HSIC_1, eq. 3).
  [K21]  Kornblith, Chen, Lee, Norouzi. Why Do Better Loss Functions Lead to
         Less Transferable Features? NeurIPS 2021 (class separation R^2,
         eq. 11/12; neural-collapse metrics, Table E.2).
  [P20]  Papyan, Han, Donoho. Prevalence of Neural Collapse. PNAS 2020.
"""
import json
import math
import os

import numpy as np
import scipy
import scipy.stats
import sklearn
from sklearn.metrics.pairwise import cosine_distances

HERE = os.path.dirname(os.path.abspath(__file__))


def grid(shape, f):
    """Array whose entry at index tuple idx is f(*idx) (float64)."""
    return np.fromfunction(f, shape, dtype=np.float64)


# ----------------------------------------------------------------- inputs ---
inputs = {}
inputs["x"] = grid((60, 7), lambda i, j: np.sin(0.37 * (i + 1) * (j + 1) + 0.11 * j) + 0.05 * j)
inputs["y"] = grid((60, 5), lambda i, j: np.cos(0.23 * (i + 1) + 0.71 * (j + 1) ** 1.3) + 0.3 * np.sin(0.05 * i * j))
inputs["wide"] = grid((20, 40), lambda i, j: np.sin(0.13 * (i + 1) * (j + 2)) * np.cos(0.07 * i - 0.19 * j))
inputs["wide2"] = grid((20, 30), lambda i, j: np.cos(0.29 * (i + 2) * (j + 1)) + 0.1 * i / 20)
labels = np.array([(i * 7 + i // 5) % 4 for i in range(60)], dtype=np.int64)
inputs["labels"] = labels
inputs["emb"] = grid((60, 6), lambda i, j: 1.0 + 0.8 * np.cos(1.7 * labels[i.astype(int)] * (j + 1) + 0.3)
                     + 0.35 * np.sin(0.9 * i + 1.3 * j))
s = grid((60, 3, 2, 2), lambda i, c, h, w: np.sin(0.5 * i + 1.1 * c + 0.7 * h - 0.9 * w))
inputs["relu"] = np.where(s > 0, s, 0.0)
inputs["weights"] = grid((4, 6), lambda c, j: np.cos(0.8 * (c + 1) * (j + 1)) + 0.2 * c)
for l, d in enumerate([4, 6, 3]):
    inputs[f"mb_a{l}"] = grid((50, d), lambda i, j: np.sin(0.31 * (i + 1) * (j + 1 + l) + 0.5 * l) + 0.1 * l * j)
for l, d in enumerate([5, 2]):
    inputs[f"mb_b{l}"] = grid((50, d), lambda i, j: np.cos(0.17 * (i + 1) * (j + 2) + 0.9 * l) * (1 + 0.2 * l))
inputs["stats_a"] = np.array([0.7412, 0.7398, 0.7431, 0.7405, 0.7420])
inputs["stats_b"] = np.array([0.7379, 0.7365, 0.7391, 0.7370])
inputs["spear_x"] = np.array([0.3494, 0.8452, 0.4606, 0.4197, 0.5718, 0.6012, 0.5167, 0.6406, 0.4267])
inputs["spear_y"] = np.array([72.1, 64.0, 70.2, 71.3, 68.0, 67.2, 69.5, 66.1, 71.9])

counts = np.bincount(labels, minlength=4)
print("label counts:", counts.tolist())
assert (counts > 0).all() and counts.size == 4
X, Y, EMB, W = inputs["x"], inputs["y"], inputs["emb"], inputs["weights"]
out = {}


# ------------------------------------------------------ linear CKA [K19] ---
def feature_space_linear_cka(X, Y, debiased=False):
    X = X - X.mean(0, keepdims=True)
    Y = Y - Y.mean(0, keepdims=True)
    xty = np.linalg.norm(X.T @ Y) ** 2
    nx, ny = np.linalg.norm(X.T @ X), np.linalg.norm(Y.T @ Y)
    if debiased:
        n = X.shape[0]
        sx, sy = (X ** 2).sum(1), (Y ** 2).sum(1)
        Nx, Ny = sx.sum(), sy.sum()
        h = lambda v, a, b, A, B: v - n / (n - 2.0) * a.dot(b) + A * B / ((n - 1) * (n - 2))
        xty = h(xty, sx, sy, Nx, Ny)
        nx = np.sqrt(h(nx ** 2, sx, sx, Nx, Nx))
        ny = np.sqrt(h(ny ** 2, sy, sy, Ny, Ny))
    return xty / (nx * ny)


def center_gram(gram, unbiased=False):
    """Exactly as in the CKA colab of [K19]."""
    gram = gram.copy()
    if unbiased:
        n = gram.shape[0]
        np.fill_diagonal(gram, 0)
        means = gram.sum(0) / (n - 2)
        means -= means.sum() / (2 * (n - 1))
        gram -= means[:, None]
        gram -= means[None, :]
        np.fill_diagonal(gram, 0)
    else:
        means = gram.mean(0)
        means -= means.mean() / 2
        gram -= means[:, None]
        gram -= means[None, :]
    return gram


def gram_cka(X, Y, debiased=False):
    K, L = center_gram(X @ X.T, debiased), center_gram(Y @ Y.T, debiased)
    return (K * L).sum() / (np.linalg.norm(K) * np.linalg.norm(L))


def cka(name, A, B, debiased):
    f, g = feature_space_linear_cka(A, B, debiased), gram_cka(A, B, debiased)
    assert abs(f - g) < 1e-10, (name, f, g)
    out[name] = float(f)


for deb, tag in [(False, "biased"), (True, "debiased")]:
    cka(f"cka_xy_{tag}", X, Y, deb)
    cka(f"cka_wide_{tag}", inputs["wide"], inputs["wide2"], deb)
cka("cka_x_relu_biased", X, inputs["relu"].reshape(60, -1), False)


# --------------------------------------------------- minibatch CKA [N21] ---
def hsic1(K, L):
    """Unbiased HSIC estimator, [N21] eq. 3 (Song et al. 2012)."""
    n = K.shape[0]
    K, L = K.copy(), L.copy()
    np.fill_diagonal(K, 0)
    np.fill_diagonal(L, 0)
    one = np.ones(n)
    t = np.trace(K @ L) + (one @ K @ one) * (one @ L @ one) / ((n - 1) * (n - 2)) \
        - 2.0 / (n - 2) * (one @ K @ L @ one)
    return t / (n * (n - 3))


def minibatch_cka(layers_a, layers_b, m):
    N = layers_a[0].shape[0]
    B = math.ceil(N / m)
    sizes = [N // B + (1 if b < N % B else 0) for b in range(B)]  # larger first
    sxy = np.zeros((len(layers_a), len(layers_b)))
    saa, sbb = np.zeros(len(layers_a)), np.zeros(len(layers_b))
    start = 0
    for size in sizes:
        sl = slice(start, start + size)
        start += size
        Ks = [A[sl] @ A[sl].T for A in layers_a]  # linear Gram, features NOT centered
        Ls = [Bm[sl] @ Bm[sl].T for Bm in layers_b]
        for a, K in enumerate(Ks):
            saa[a] += hsic1(K, K)
            for b, L in enumerate(Ls):
                sxy[a, b] += hsic1(K, L)
        for b, L in enumerate(Ls):
            sbb[b] += hsic1(L, L)
    assert start == N
    return sxy / np.sqrt(np.outer(saa, sbb)), sizes


mb_a = [inputs[f"mb_a{l}"] for l in range(3)]
mb_b = [inputs[f"mb_b{l}"] for l in range(2)]
mb, sizes = minibatch_cka(mb_a, mb_b, 16)
assert sizes == [13, 13, 12, 12], sizes
out["minibatch_cka"] = mb.tolist()
mbf, _ = minibatch_cka(mb_a, mb_b, 50)
out["minibatch_cka_full_batch"] = mbf.tolist()
# One batch of HSIC_1 is exactly debiased linear CKA (HSIC_1 is shift invariant).
for a in range(3):
    for b in range(2):
        assert abs(mbf[a, b] - feature_space_linear_cka(mb_a[a], mb_b[b], True)) < 1e-10


# ------------------------------------ class separation R^2 [K21] eq. 11/12 ---
def r2_bruteforce(D, labels):
    """R^2 = 1 - dbar_within / dbar_total from the full N x N distance matrix."""
    ks = np.unique(labels)
    K = len(ks)
    idx = [np.flatnonzero(labels == k) for k in ks]
    within = sum(D[np.ix_(I, I)].sum() / (K * len(I) ** 2) for I in idx)
    total = sum(D[np.ix_(I, J)].sum() / (K * K * len(I) * len(J)) for I in idx for J in idx)
    return 1.0 - within / total


def cosine_dist(A):
    An = A / np.linalg.norm(A, axis=1, keepdims=True)
    D = 1.0 - An @ An.T
    assert np.allclose(D, cosine_distances(A), atol=1e-12)  # sklearn cross-check
    return D


def r2_cosine_closed_form(A, labels):
    An = A / np.linalg.norm(A, axis=1, keepdims=True)
    mu = np.stack([An[labels == k].mean(0) for k in np.unique(labels)])
    return 1.0 - (1.0 - (mu ** 2).sum(1).mean()) / (1.0 - (mu.mean(0) ** 2).sum())


sq_euclid = ((EMB[:, None, :] - EMB[None, :, :]) ** 2).sum(-1)
for name, A in [("r2_cosine", EMB), ("r2_cosine_mean_subtracted", EMB - EMB.mean(0)), ("r2_cosine_x", X)]:
    out[name] = float(r2_bruteforce(cosine_dist(A), labels))
    assert abs(out[name] - r2_cosine_closed_form(A, labels)) < 1e-12, name
out["r2_euclidean"] = float(r2_bruteforce(sq_euclid, labels))

# ------------------------------------------------------ activation sparsity ---
out["sparsity_relu"] = np.count_nonzero(inputs["relu"]) / inputs["relu"].size
out["sparsity_x"] = np.count_nonzero(X) / X.size


# ---------------------------------------- neural collapse [P20], [K21] E.2 ---
def class_means(H, labels):
    mu_c = np.stack([H[labels == c].mean(0) for c in np.unique(labels)])
    return mu_c, mu_c - H.mean(0)  # mu_G = mean over ALL examples


def equinorm(R):
    norms = np.linalg.norm(R, axis=1)
    return norms.std(ddof=1) / norms.mean()


def pair_cosines(R):
    Rn = R / np.linalg.norm(R, axis=1, keepdims=True)
    return (Rn @ Rn.T)[np.triu_indices(R.shape[0], k=1)]


def nc1(H, labels):
    C = len(np.unique(labels))
    mu_c, M = class_means(H, labels)
    Z = H - mu_c[labels]
    Sw = Z.T @ Z / H.shape[0]
    Sb = M.T @ M / C
    lam, V = np.linalg.eigh(Sb)  # ascending
    lam, V = lam[-(C - 1):], V[:, -(C - 1):]
    return np.trace(Sw @ (V / lam) @ V.T) / C


def nc_means(prefix, H):
    C = len(np.unique(labels))
    _, M = class_means(H, labels)
    cos = pair_cosines(M)
    out[prefix + "nc_equinorm_means"] = float(equinorm(M))
    out[prefix + "nc_equiangular_means"] = float(cos.std(ddof=1))
    out[prefix + "nc_maxangle_means"] = float(np.abs(cos + 1.0 / (C - 1)).mean())
    out[prefix + "nc1"] = float(nc1(H, labels))
    return M


M = nc_means("", EMB)
C = W.shape[0]
cw = pair_cosines(W)
out["nc_equinorm_weights"] = float(equinorm(W))
out["nc_equiangular_weights"] = float(cw.std(ddof=1))
out["nc_maxangle_weights"] = float(np.abs(cw + 1.0 / (C - 1)).mean())
out["nc_self_duality"] = float(np.linalg.norm(W / np.linalg.norm(W) - M / np.linalg.norm(M)) ** 2)
nc_means("x_", X)

# ------------------------------------------------- singular value spectra ---
sv = lambda A: np.linalg.svd(A, compute_uv=False).tolist()
out["sv_emb_centered"] = sv(EMB - EMB.mean(0))
out["sv_wide_centered"] = sv(inputs["wide"] - inputs["wide"].mean(0))
out["sv_class_means"] = sv(M)
out["sv_weights"] = sv(W)

# ------------------------------------------------------------- statistics ---
for k in "ab":
    v = inputs[f"stats_{k}"]
    out[f"stats_{k}_mean"], out[f"stats_{k}_sd"] = float(v.mean()), float(v.std(ddof=1))
r = scipy.stats.ttest_ind(inputs["stats_a"], inputs["stats_b"], equal_var=False)
out["welch_t"], out["welch_p"] = float(r.statistic), float(r.pvalue)
r = scipy.stats.spearmanr(inputs["spear_x"], inputs["spear_y"])
out["spearman_rho"], out["spearman_p"] = float(r.statistic), float(r.pvalue)
r = scipy.stats.ttest_ind([1.0, 2.0, 3.0], [1.5, 2.5, 3.5, 4.5], equal_var=False)
out["welch_t_ab_equal"], out["welch_p_ab_equal"] = float(r.statistic), float(r.pvalue)
r = scipy.stats.spearmanr([1, 2, 2, 3, 4, 4, 5], [2.0, 1.0, 3.0, 3.0, 5.0, 4.0, 6.0])
out["spearman_ties_rho"], out["spearman_ties_p"] = float(r.statistic), float(r.pvalue)

# ------------------------------------------------------- sanity and write ---
# Biased CKA and R^2 lie in [0, 1]; the debiased / unbiased-HSIC estimators
# can dip slightly below 0 for nearly unrelated representations.
for k, v in out.items():
    if k.startswith(("cka_", "r2_")):
        lo = -1.0 if k.endswith("debiased") else 0.0
        assert lo <= v <= 1.0, (k, v)
assert all(abs(v) <= 1.0 + 1e-12 for row in out["minibatch_cka"] + out["minibatch_cka_full_batch"] for v in row)
assert 0.0 < out["sparsity_relu"] < 1.0 and out["sparsity_x"] == 1.0
out["versions"] = {"numpy": np.__version__, "scipy": scipy.__version__, "sklearn": sklearn.__version__}

np.savez(os.path.join(HERE, "inputs.npz"), **inputs)
with open(os.path.join(HERE, "expected.json"), "w") as fh:
    json.dump(out, fh, indent=1, allow_nan=False)
    fh.write("\n")
print(f"wrote inputs.npz ({len(inputs)} arrays) and expected.json ({len(out)} keys)")
