"""Reference values of angular visual hardness and of the cosine-distance histograms
(core/src/analysis/angles.rs), from an independent numpy implementation in float64.

AVH(x) = A(x, w_y) / sum_k A(x, w_k), A = arccos of the cosine similarity (Chen et al. 2020);
cosine distances 1 - cos(x_i, x_j) over the pairs i < j, split by same / different class, counted
in 40 equal bins over [0, 2] (values on an inner edge go to the upper bin, as numpy's histogram
puts them).

Run once by hand from this folder: `python make_angles_reference.py`; it writes reference.json,
which is committed.
"""

import json

import numpy as np

N, P, K, BINS = 60, 8, 4, 40


def inputs():
    rng = np.random.default_rng(21)
    labels = np.arange(N) % K
    centres = rng.normal(size=(K, P)) * 2.0
    features = centres[labels] + rng.normal(size=(N, P))
    features[5] = 0.0  # a zero vector: cosine 0 with everything
    weights = centres + 0.3 * rng.normal(size=(K, P))
    return features, labels, weights


def unit(v):
    return v / np.sqrt((v * v).sum(axis=1, keepdims=True) + 1e-12)


def main():
    x, y, w = inputs()
    angles = np.arccos(np.clip(unit(x) @ unit(w).T, -1.0, 1.0))
    avh = angles[np.arange(N), y] / angles.sum(axis=1)
    cos = unit(x) @ unit(x).T
    i, j = np.triu_indices(N, k=1)
    distance = 1.0 - np.clip(cos[i, j], -1.0, 1.0)
    same = y[i] == y[j]
    edges = np.linspace(0.0, 2.0, BINS + 1)
    within, _ = np.histogram(distance[same], bins=edges)
    between, _ = np.histogram(distance[~same], bins=edges)
    out = {
        "features": x.ravel().tolist(),
        "labels": y.tolist(),
        "weights": w.ravel().tolist(),
        "examples": N,
        "width": P,
        "classes": K,
        "bins": BINS,
        "avh": avh.tolist(),
        "within": within.tolist(),
        "between": between.tolist(),
        "within_mean": float(distance[same].mean()),
        "between_mean": float(distance[~same].mean()),
    }
    with open("reference.json", "w") as fh:
        json.dump(out, fh, indent=1)
        fh.write("\n")
    print(f"AVH mean {avh.mean():.4f}; {same.sum()} pairs within, {(~same).sum()} between")


if __name__ == "__main__":
    main()
