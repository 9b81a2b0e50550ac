"""Reference values of prediction agreement, modal-vote ensembles and average-linkage clustering
(core/src/analysis/agreement.rs), from numpy and scipy.

Six networks' predictions on 300 examples of 5 classes, made so that networks 0-2 and 3-5 err
alike. Agreement as in the paper's Figs. C.4/C.5; ensembles by numpy's bincount-argmax modal vote
(the smallest class wins a tie); the clustering by scipy.cluster.hierarchy.linkage(method=
"average") on 1 - same_error, and the dendrogram's leaf order.

Run once by hand from this folder: `python make_agreement_reference.py`; it writes
reference.json, which is committed.
"""

import json

import numpy as np
from scipy.cluster.hierarchy import dendrogram, linkage
from scipy.spatial.distance import squareform

N, K, M = 300, 5, 6


def predictions():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, K, size=N)
    group_errors = [rng.integers(0, K, size=N) for _ in range(2)]
    out = []
    for m in range(M):
        p = labels.copy()
        wrong = rng.random(N) < 0.25 + 0.03 * m
        shared = rng.random(N) < 0.7
        own = rng.integers(0, K, size=N)
        p[wrong] = np.where(shared, group_errors[m // 3], own)[wrong]
        out.append(p)
    return np.array(out), labels


def main():
    p, y = predictions()
    same_prediction = np.array([[np.mean(p[i] == p[j]) for j in range(M)] for i in range(M)])
    same_correctness = np.array([[np.mean((p[i] == y) == (p[j] == y)) for j in range(M)] for i in range(M)])
    same_error = np.zeros((M, M))
    for i in range(M):
        for j in range(M):
            both = (p[i] != y) & (p[j] != y)
            same_error[i, j] = np.mean(p[i][both] == p[j][both])
    distance = 1.0 - same_error
    np.fill_diagonal(distance, 0.0)
    z = linkage(squareform(distance, checks=False), method="average")
    leaves = dendrogram(z, no_plot=True)["leaves"]
    ensembles = {}
    for name, members in {"first3": [0, 1, 2], "last3": [3, 4, 5], "pair": [0, 3], "all": list(range(M))}.items():
        votes = np.array([np.bincount(p[members, k], minlength=K).argmax() for k in range(N)])
        ensembles[name] = {"members": members, "votes": votes.tolist(), "accuracy": float(np.mean(votes == y))}
    out = {
        "predictions": p.tolist(),
        "labels": y.tolist(),
        "same_prediction": same_prediction.tolist(),
        "same_correctness": same_correctness.tolist(),
        "same_error": same_error.tolist(),
        "linkage": z.tolist(),
        "leaves": [int(v) for v in leaves],
        "ensembles": ensembles,
    }
    with open("reference.json", "w") as fh:
        json.dump(out, fh)
        fh.write("\n")
    print("leaves", leaves)


if __name__ == "__main__":
    main()
