"""Feature files for the browser end-to-end test, written by NumPy (not by losslens).

Usage: python3 make_features.py OUT_DIR [--bench]

Writes, deterministically (seed 0):
- a.npz, b.npz: the same 240 examples of 6 classes seen by two "networks" (A: three layers, one
  of them 4-D [N, C, H, W]; B: two layers), with `labels`;
- train.npz, test.npz: 300 / 120 examples of 5 classes, layers `penultimate` and `block4`;
- nan.npz: like a.npz with one NaN; truncated.npz: the first half of a.npz's bytes;
- with --bench, bench.npz: 10,000 x 512 features of 10 classes (the browser benchmark), and
  bench-train.npz / bench-test.npz, an 8,000 / 2,000 split of it for the command line.
"""

import sys
from pathlib import Path

import numpy as np

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)


def clustered(n, classes, dims, spread):
    """Features with class structure: class means plus isotropic noise."""
    labels = np.arange(n) % classes
    means = rng.normal(size=(classes, dims))
    x = means[labels] + spread * rng.normal(size=(n, dims))
    return x.astype(np.float32), labels.astype(np.int64)


x1, labels = clustered(240, 6, 32, 2.0)
mix = rng.normal(size=(32, 48)).astype(np.float32)
x2 = np.maximum(x1 @ mix, 0).astype(np.float32)
x3 = (x2 @ rng.normal(size=(48, 2 * 3 * 3))).reshape(240, 2, 3, 3).astype(np.float32)
np.savez(out / "a.npz", block1=x1, block2=x2, block3=x3, labels=labels)
y1 = (x1 @ rng.normal(size=(32, 20)) + 0.5 * rng.normal(size=(240, 20))).astype(np.float32)
y2 = np.tanh(x2[:, :24] + rng.normal(size=(240, 24))).astype(np.float32)
np.savez(out / "b.npz", block1=y1, penultimate=y2, labels=labels)

xt, lt = clustered(420, 5, 24, 3.0)
deep = np.maximum(xt @ rng.normal(size=(24, 40)), 0).astype(np.float32)
np.savez(out / "train.npz", penultimate=xt[:300], block4=deep[:300], labels=lt[:300])
np.savez(out / "test.npz", penultimate=xt[300:], block4=deep[300:], labels=lt[300:])

bad = x1.copy()
bad[7, 3] = np.nan
np.savez(out / "nan.npz", block1=bad, labels=labels)
whole = (out / "a.npz").read_bytes()
(out / "truncated.npz").write_bytes(whole[: len(whole) // 2])

if "--bench" in sys.argv:
    xb, lb = clustered(10_000, 10, 512, 4.0)
    np.savez(out / "bench.npz", penultimate=xb, labels=lb)
    # An 8,000 / 2,000 split of the same rows for the command-line kNN timed beside the page.
    order = rng.permutation(len(lb))
    np.savez(out / "bench-train.npz", penultimate=xb[order[:8000]], labels=lb[order[:8000]])
    np.savez(out / "bench-test.npz", penultimate=xb[order[8000:]], labels=lb[order[8000:]])
