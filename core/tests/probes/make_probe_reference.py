"""Reference values of the probes on real data, from scikit-learn.

Features: the first 2,000 training and first 1,000 test images of MNIST (../shared/data/mnist) and
Fashion-MNIST (Debian's dataset-fashion-mnist, /usr/share/datasets/fashion-mnist), 2x2
average-pooled to 14x14 = 196 values in [0, 1]: (a + b + c + d) / 1020 computed in float64, then
stored as float32. The Rust test builds the identical features from the same IDX files.

Linear: for every lambda of the 45-value path, LogisticRegression(C = 1 / (2 lambda),
solver="lbfgs") fitted on all 2,000 training examples (tight tolerance), its test accuracy and
its objective (sum of cross-entropies + lambda |W|^2, divided by N). The Rust probe chooses lambda
on its own validation split and refits on all training examples, so its test accuracy is compared
with scikit-learn's at the lambda it chose.

kNN: leave-one-out accuracy on the training set for every k in 1..50 (NearestNeighbors with the
cosine metric, brute force, the query itself excluded; majority vote, ties to the smallest label
as KNeighborsClassifier does) and test accuracy of KNeighborsClassifier(k, metric="cosine").

Run once by hand from this folder: `python3 make_probe_reference.py [DATA_DIR]`; writes
reference.json, which is committed.
"""

import gzip
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

N_TRAIN, N_TEST, K_MAX = 2000, 1000, 50
LAMBDAS = np.logspace(-6, 5, 45)


def idx(path):
    data = gzip.open(path).read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * d : 8 + 4 * d], "big") for d in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def pooled(images, n):
    x = images[:n].astype(np.float64)
    x = x.reshape(n, 14, 2, 14, 2).sum(axis=(2, 4)) / 1020.0
    return x.reshape(n, 196).astype(np.float32)


def dataset(folder):
    folder = Path(folder)
    xtr = pooled(idx(folder / "train-images-idx3-ubyte.gz"), N_TRAIN)
    ytr = idx(folder / "train-labels-idx1-ubyte.gz")[:N_TRAIN].astype(int)
    xte = pooled(idx(folder / "t10k-images-idx3-ubyte.gz"), N_TEST)
    yte = idx(folder / "t10k-labels-idx1-ubyte.gz")[:N_TEST].astype(int)
    return xtr, ytr, xte, yte


def mean_per_class(pred, y):
    return float(np.mean([np.mean(pred[y == c] == c) for c in np.unique(y)]))


def linear(xtr, ytr, xte, yte):
    x64, t64 = xtr.astype(np.float64), xte.astype(np.float64)
    out = []
    for lam in LAMBDAS:
        clf = LogisticRegression(C=1.0 / (2.0 * lam), solver="lbfgs", max_iter=3000, tol=1e-6)
        clf.fit(x64, ytr)
        logp = clf.predict_log_proba(x64)
        ce = -logp[np.arange(len(ytr)), ytr].sum()
        objective = (ce + lam * (clf.coef_**2).sum()) / len(ytr)
        pred = clf.predict(t64)
        out.append(
            {
                "lambda": float(lam),
                "test_accuracy": float(np.mean(pred == yte)),
                "test_mean_per_class_accuracy": mean_per_class(pred, yte),
                "objective": float(objective),
                "iterations": int(clf.n_iter_[0]),
            }
        )
        print(f"lambda {lam:.3g}: acc {out[-1]['test_accuracy']:.4f} obj {objective:.6f} it {clf.n_iter_[0]}")
    return out


def knn(xtr, ytr, xte, yte):
    x64, t64 = xtr.astype(np.float64), xte.astype(np.float64)
    nn = NearestNeighbors(n_neighbors=K_MAX, metric="cosine", algorithm="brute").fit(x64)
    _, neighbors = nn.kneighbors()  # the query itself excluded
    loo = []
    for k in range(1, K_MAX + 1):
        votes = np.zeros((len(ytr), 10))
        for j in range(k):
            votes[np.arange(len(ytr)), ytr[neighbors[:, j]]] += 1
        loo.append(float(np.mean(votes.argmax(axis=1) == ytr)))  # argmax: smallest label on ties
    test = []
    for k in range(1, K_MAX + 1):
        clf = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute").fit(x64, ytr)
        test.append(float(np.mean(clf.predict(t64) == yte)))
    return {"loo_accuracy": loo, "test_accuracy": test}


def main():
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[4] / "shared" / "data"
    sets = {"mnist": data / "mnist", "fashion-mnist": Path("/usr/share/datasets/fashion-mnist")}
    out = {"n_train": N_TRAIN, "n_test": N_TEST, "k_max": K_MAX}
    for name, folder in sets.items():
        xtr, ytr, xte, yte = dataset(folder)
        out[name] = {
            "feature_checksum": float(xtr.astype(np.float64).sum()),
            "linear": linear(xtr, ytr, xte, yte),
            "knn": knn(xtr, ytr, xte, yte),
        }
    with open(Path(__file__).with_name("reference.json"), "w") as fh:
        json.dump(out, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
