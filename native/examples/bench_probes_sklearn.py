"""scikit-learn's side of `scripts/bench probes`: the same protocol on the same features and split.

Usage: python3 bench_probes_sklearn.py DIR  (DIR holds train.npz, test.npz and holdout.npy written
by `scripts/bench probes`). Prints one JSON object with times and accuracies.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import NearestNeighbors


def main():
    d = Path(sys.argv[1])
    tr, te = np.load(d / "train.npz"), np.load(d / "test.npz")
    x, y = tr["features"].astype(np.float64), tr["labels"].astype(int)
    xt, yt = te["features"].astype(np.float64), te["labels"].astype(int)
    holdout = np.load(d / "holdout.npy")
    mask = np.zeros(len(y), bool)
    mask[holdout] = True

    # Linear: 45 lambdas, increasing, warm-started; choose on the holdout; refit on everything.
    start = time.perf_counter()
    clf = LogisticRegression(solver="lbfgs", max_iter=1000, tol=1e-4, warm_start=True)
    best = (-1.0, None, None)
    for lam in np.logspace(-6, 5, 45):
        clf.set_params(C=1.0 / (2.0 * lam))
        clf.fit(x[~mask], y[~mask])
        acc = float(np.mean(clf.predict(x[mask]) == y[mask]))
        if acc >= best[0]:
            best = (acc, lam, (clf.coef_.copy(), clf.intercept_.copy()))
    clf.set_params(C=1.0 / (2.0 * best[1]))
    clf.coef_, clf.intercept_ = best[2]
    clf.fit(x, y)
    linear_acc = float(np.mean(clf.predict(xt) == yt))
    linear_s = time.perf_counter() - start

    # kNN: leave-one-out accuracy for every k up to 50, then the test set at the best k.
    start = time.perf_counter()
    k_max = 50
    nn = NearestNeighbors(n_neighbors=k_max, metric="cosine", algorithm="brute").fit(x)
    _, idx = nn.kneighbors()
    classes = y.max() + 1
    votes = np.zeros((len(y), classes))
    loo = []
    for k in range(k_max):
        votes[np.arange(len(y)), y[idx[:, k]]] += 1
        loo.append(float(np.mean(votes.argmax(axis=1) == y)))
    k_best = int(np.argmax(loo)) + 1
    _, tidx = nn.kneighbors(xt, n_neighbors=k_best)
    tv = np.zeros((len(yt), classes))
    for k in range(k_best):
        tv[np.arange(len(yt)), y[tidx[:, k]]] += 1
    knn_acc = float(np.mean(tv.argmax(axis=1) == yt))
    knn_s = time.perf_counter() - start
    print(json.dumps({"linear": {"seconds": linear_s, "lambda": float(best[1]), "accuracy": linear_acc},
                      "knn": {"seconds": knn_s, "k": k_best, "accuracy": knn_acc}}))


if __name__ == "__main__":
    main()
