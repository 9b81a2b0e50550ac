"""Reference values of the multi-label probe (Table D.1), from scikit-learn.

ROC AUC: `roc_auc_score` on seeded cases, with tied scores, a perfect ranking, a reversed one and
every score tied.

Probe: the MNIST features of ../probes/make_probe_reference.py (the first 2,000 training and
1,000 test images, 2x2 average-pooled to 196 values) with four 0/1 labels per image derived from
its digit: even (0 2 4 6 8), greater than 4, a closed loop (0 6 8 9), prime (2 3 5 7). For every
lambda of a 12-value log path from 1e-4 to 1e2, each class's L2-regularised binary logistic
regression, LogisticRegression(C = 1 / (2 lambda), solver="lbfgs", tight tolerance), fitted on all
2,000 training examples: its objective (sum of binary cross-entropies + lambda |w|^2, divided by N)
and its test ROC AUC of the decision function. The Rust probe fits all four at once, chooses each
class's lambda on its own validation split and refits on every training example, so its test AUC
is compared with scikit-learn's at the lambda it chose.

Run once by hand from this folder: `python3 make_multilabel_reference.py [DATA_DIR]`; writes
reference.json, which is committed.
"""

import gzip
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

N_TRAIN, N_TEST = 2000, 1000
LAMBDAS = np.logspace(-4, 2, 12)
ATTRIBUTES = {
    "even": [0, 2, 4, 6, 8],
    "greater than 4": [5, 6, 7, 8, 9],
    "closed loop": [0, 6, 8, 9],
    "prime": [2, 3, 5, 7],
}


def idx(path):
    data = gzip.open(path).read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * d : 8 + 4 * d], "big") for d in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def pooled(images, n):
    x = images[:n].astype(np.float64)
    x = x.reshape(n, 14, 2, 14, 2).sum(axis=(2, 4)) / 1020.0
    return x.reshape(n, 196).astype(np.float32)


def attributes(digits):
    return np.stack([np.isin(digits, members) for members in ATTRIBUTES.values()], axis=1).astype(np.int64)


def auc_cases():
    rng = np.random.default_rng(7)
    cases = []
    for n, decimals in [(20, 1), (200, 2), (1000, 6), (57, 0)]:
        scores = np.round(rng.normal(size=n), decimals)
        labels = (rng.random(n) < 0.3).astype(int)
        labels[0], labels[1] = 0, 1  # both kinds present
        cases.append((scores, labels))
    ranked = np.arange(10, dtype=float)
    cases.append((ranked, (ranked >= 6).astype(int)))  # perfect: 1
    cases.append((-ranked, (ranked >= 6).astype(int)))  # reversed: 0
    cases.append((np.zeros(9), np.array([0, 1] * 4 + [1])))  # all tied: 0.5
    return [
        {"scores": s.tolist(), "labels": l.tolist(), "auc": float(roc_auc_score(l, s))} for s, l in cases
    ]


def probe(folder):
    folder = Path(folder)
    xtr = pooled(idx(folder / "train-images-idx3-ubyte.gz"), N_TRAIN).astype(np.float64)
    ytr = attributes(idx(folder / "train-labels-idx1-ubyte.gz")[:N_TRAIN])
    xte = pooled(idx(folder / "t10k-images-idx3-ubyte.gz"), N_TEST).astype(np.float64)
    yte = attributes(idx(folder / "t10k-labels-idx1-ubyte.gz")[:N_TEST])
    out = []
    for lam in LAMBDAS:
        point = {"lambda": float(lam), "objective": [], "test_auc": []}
        for c in range(ytr.shape[1]):
            clf = LogisticRegression(C=1.0 / (2.0 * lam), solver="lbfgs", max_iter=5000, tol=1e-8)
            clf.fit(xtr, ytr[:, c])
            z = clf.decision_function(xtr)
            bce = np.sum(np.logaddexp(0.0, z) - ytr[:, c] * z)
            point["objective"].append(float((bce + lam * np.sum(clf.coef_**2)) / N_TRAIN))
            point["test_auc"].append(float(roc_auc_score(yte[:, c], clf.decision_function(xte))))
        print(f"lambda {lam:.3g}: auc {np.round(point['test_auc'], 4)}")
        out.append(point)
    return {
        "feature_checksum": float(xtr.sum()),
        "classes": list(ATTRIBUTES),
        "train_positives": ytr.sum(axis=0).tolist(),
        "path": out,
    }


def main():
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[4] / "shared" / "data"
    out = {"n_train": N_TRAIN, "n_test": N_TEST, "auc": auc_cases(), "mnist": probe(data / "mnist")}
    with open(Path(__file__).with_name("reference.json"), "w") as fh:
        json.dump(out, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
