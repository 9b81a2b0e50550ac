"""Reference p-values for the two-way ANOVA of Table 2's average column (core/tests/golden.rs
reads anova.json), computed with numpy and scipy independently of losslens: the F-test of the
objective factor by comparing nested least-squares models (effect coding; objective × dataset
with n seeds per cell, and the additive model with one seed).

Usage: python3 make_anova.py > anova.json   (scripts/python/bench.txt has scipy)
"""

import json

import numpy as np
from scipy import stats

rng = np.random.default_rng(7)


def rss(x, y):
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    r = y - x @ beta
    return float(r @ r)


def anova(a, b):
    """F-test p-value of the objective factor; a and b are [datasets][seeds]."""
    y = np.array([a, b], dtype=float)  # [2, D, n]
    _, d, n = y.shape
    rows = [(i, j) for i in range(2) for j in range(d) for _ in range(n)]
    values = y.reshape(-1)
    obj = np.array([1.0 if i == 0 else -1.0 for i, _ in rows])
    data = np.array([[1.0 if j == jj else (-1.0 if j == d - 1 else 0.0) for jj in range(d - 1)] for _, j in rows])
    ones = np.ones(len(rows))
    if n >= 2:
        inter = obj[:, None] * data
        full = np.column_stack([ones, obj, data, inter])
        reduced = np.column_stack([ones, data, inter])
        df = 2 * d * (n - 1)
    else:
        full = np.column_stack([ones, obj, data])
        reduced = np.column_stack([ones, data])
        df = d - 1
    f = (rss(reduced, values) - rss(full, values)) / (rss(full, values) / df)
    return float(stats.f.sf(f, 1, df)), float(f), df


cases = []
for d, n, effect in [(8, 3, 0.0), (8, 3, 0.02), (4, 2, 0.05), (3, 1, 0.01), (8, 1, 0.03), (2, 5, 0.1)]:
    dataset = rng.normal(0.7, 0.1, size=d)
    a = (dataset[:, None] + effect + rng.normal(0, 0.02, size=(d, n))).tolist()
    b = (dataset[:, None] + rng.normal(0, 0.02, size=(d, n))).tolist()
    p, f, df = anova(a, b)
    cases.append({"a": a, "b": b, "p": p, "f": f, "df": df})
print(json.dumps(cases, indent=1))
