"""Reference values for core/tests/calibration.rs, computed with numpy independently of losslens.

Logits of 3 classes for 40 examples (seed 0), labels, and for softmax and for normalised sigmoid
(p_k = sigmoid(z_k / T) / sum_j sigmoid(z_j / T)): the NLL and the 15-bin ECE at T = 1, and the
temperature minimising the NLL, found by a dense search over log T (200,001 points in
[0.01, 100]) - a different method from losslens' bisection and golden-section search.

Usage: python3 make_calibration.py > expected.json
"""

import json

import numpy as np

rng = np.random.default_rng(0)
n, k = 40, 3
labels = rng.integers(0, k, size=n)
logits = rng.normal(size=(n, k)) * 2.0
logits[np.arange(n), labels] += 1.5


def log_probs(z, t, model):
    s = z / t
    if model == "normalized-sigmoid":
        s = -np.logaddexp(0.0, -s)  # log sigmoid
    return s - np.logaddexp.reduce(s, axis=1, keepdims=True)


def nll(z, t, model):
    return float(-log_probs(z, t, model)[np.arange(n), labels].mean())


def ece(z, t, model, bins=15):
    p = np.exp(log_probs(z, t, model))
    conf = p.max(axis=1)
    pred = p.argmax(axis=1)
    b = np.clip(np.ceil(conf * bins).astype(int), 1, bins) - 1
    total = 0.0
    for i in range(bins):
        m = b == i
        if m.any():
            total += abs((pred[m] == labels[m]).sum() - conf[m].sum()) / n
    return float(total)


out = {"logits": logits.ravel().tolist(), "labels": labels.tolist(), "classes": k}
grid = np.exp(np.linspace(np.log(0.01), np.log(100.0), 200001))
for model in ["softmax", "normalized-sigmoid"]:
    values = np.array([nll(logits, t, model) for t in grid])
    best = float(grid[values.argmin()])
    out[model] = {
        "nll": nll(logits, 1.0, model),
        "ece": ece(logits, 1.0, model),
        "temperature": best,
        "nll_at_best": nll(logits, best, model),
        "ece_at_2": ece(logits, 2.0, model),
    }
print(json.dumps(out, indent=1))
