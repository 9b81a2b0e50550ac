"""Reference values of the multi-label kNN probe, from scikit-learn, on the features and labels of
make_multilabel_reference.py (MNIST, 2,000 training and 1,000 test images, four digit attributes).

For every k from 1 to 30: the mean over the classes of the leave-one-out ROC AUC on the training
set, each example scored by the share of its k nearest other training examples (cosine,
NearestNeighbors brute force, itself excluded) that have the class; and each class's test ROC AUC
of KNeighborsClassifier(k, metric="cosine").predict_proba. losslens chooses k by the first and is
compared with the second at that k.

Run once by hand from this folder: `python3 make_knn_reference.py [DATA_DIR]`; writes
knn_reference.json, which is committed.
"""

import json
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

from make_multilabel_reference import N_TEST, N_TRAIN, attributes, idx, pooled

K_MAX = 30


def main():
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[4] / "shared" / "data"
    folder = data / "mnist"
    xtr = pooled(idx(folder / "train-images-idx3-ubyte.gz"), N_TRAIN).astype(np.float64)
    ytr = attributes(idx(folder / "train-labels-idx1-ubyte.gz")[:N_TRAIN])
    xte = pooled(idx(folder / "t10k-images-idx3-ubyte.gz"), N_TEST).astype(np.float64)
    yte = attributes(idx(folder / "t10k-labels-idx1-ubyte.gz")[:N_TEST])
    _, neighbors = NearestNeighbors(n_neighbors=K_MAX, metric="cosine", algorithm="brute").fit(xtr).kneighbors()
    loo = []
    for k in range(1, K_MAX + 1):
        share = ytr[neighbors[:, :k]].mean(axis=1)  # [n, classes]
        loo.append(float(np.mean([roc_auc_score(ytr[:, c], share[:, c]) for c in range(ytr.shape[1])])))
    test = []
    for k in range(1, K_MAX + 1):
        aucs = []
        for c in range(ytr.shape[1]):
            clf = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute").fit(xtr, ytr[:, c])
            aucs.append(float(roc_auc_score(yte[:, c], clf.predict_proba(xte)[:, 1])))
        test.append(aucs)
    best = int(np.argmax(loo)) + 1
    print(f"chosen k = {best}: leave-one-out {loo[best - 1]:.4f}, test {np.round(test[best - 1], 4)}")
    out = {"k_max": K_MAX, "leave_one_out_auc": loo, "test_auc": test}
    with open(Path(__file__).with_name("knn_reference.json"), "w") as fh:
        json.dump(out, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
