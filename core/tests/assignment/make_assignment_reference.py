"""Reference values of the class-overlap assignment accuracy (Table F.1), from scipy.

For several seeded cases (source classes S, target classes T, examples N; predictions drawn so
that groups of source classes favour one target class, plus noise): the matching matrix
M[s, t] (examples of target class t predicted as source class s), then for k = 1, 2, ... the best
total of scipy.optimize.linear_sum_assignment(maximize=True) on M with every target class
replicated k times, stopping at the first k whose k + 1 does not improve (the paper's rule,
Appendix F). Writes the cases and the chosen k, the number of correctly mapped examples and the
accuracy to reference.json.

Run once by hand from this folder: `python3 make_assignment_reference.py`; reference.json is
committed.
"""

import json

import numpy as np
from scipy.optimize import linear_sum_assignment


def best_total(m, k):
    replicated = np.tile(m, (1, k))
    rows, cols = linear_sum_assignment(replicated, maximize=True)
    return int(replicated[rows, cols].sum())


def case(seed, s, t, n):
    rng = np.random.default_rng(seed)
    home = rng.integers(0, t, size=s)  # the target class each source class mostly sees
    labels = rng.integers(0, t, size=n)
    predictions = np.empty(n, dtype=np.int64)
    for i, label in enumerate(labels):
        candidates = np.flatnonzero(home == label)
        if len(candidates) and rng.random() < 0.7:
            predictions[i] = rng.choice(candidates)
        else:
            predictions[i] = rng.integers(0, s)
    m = np.zeros((s, t), dtype=np.int64)
    np.add.at(m, (predictions, labels), 1)
    k, total = 1, best_total(m, 1)
    most = -(-s // t)
    while k < most:
        nxt = best_total(m, k + 1)
        if nxt <= total:
            break
        k, total = k + 1, nxt
    return {
        "source_classes": s,
        "target_classes": t,
        "predictions": predictions.tolist(),
        "labels": labels.tolist(),
        "replication": k,
        "correct": total,
        "accuracy": total / n,
    }


def main():
    cases = [case(1, 10, 10, 300), case(2, 40, 7, 500), case(3, 5, 12, 200), case(4, 100, 10, 2000), case(5, 3, 3, 9)]
    with open("reference.json", "w") as f:
        json.dump({"cases": cases}, f)
    for c in cases:
        print(c["source_classes"], c["target_classes"], c["replication"], c["correct"], c["accuracy"])


if __name__ == "__main__":
    main()
