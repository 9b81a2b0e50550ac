"""Reference values for the nine objectives and their combinations (core/src/objective): losses
and gradients.

An independent numpy implementation in float64: each loss written from the paper's equations
(with the conventions of SPEC section 2: the /2 of the L2 penalties, squared error without 1/K,
sigmoid on z - log K), each gradient derived by hand. The hand-derived gradients are checked
against central finite differences here before anything is written.

Run once by hand from this folder: `python3 make_objectives.py`; it writes expected.json, which
is committed. Inputs are deterministic formulas and are written into the JSON too.
"""

import json

import numpy as np

EPS2 = 1e-12  # the safe norm: sqrt(|v|^2 + EPS2)
B, K, P = 4, 5, 6
TARGETS = np.array([0, 3, 4, 1])


def features():
    i, j = np.meshgrid(np.arange(B), np.arange(P), indexing="ij")
    return 2.0 * np.sin(1.0 + i * P + j)


def weight():  # [P, K], one column per class
    p, k = np.meshgrid(np.arange(P), np.arange(K), indexing="ij")
    return 0.3 * np.cos(0.5 * (p * K + k))


def bias():
    return 0.1 * np.arange(K) - 0.2


def mask():  # a fixed dropout keep-mask
    i, j = np.meshgrid(np.arange(B), np.arange(P), indexing="ij")
    return ((i * 7 + j * 3) % 10 < 7).astype(float)


LOGITS = {
    "regular": features() @ weight() + bias(),
    "extreme": np.array(
        [
            [1e4, -1e4, 0.0, 5e3, -5e3],
            [-1e4, -1e4, -1e4, 1e4, -1e4],
            [1e4, 1e4, 1e4, 1e4, 1e4],
            [-1e4, 1e4, 3.0, -2.0, 0.5],
        ]
    ),
    "zeros": np.zeros((B, K)),
}


def onehot():
    t = np.zeros((B, K))
    t[np.arange(B), TARGETS] = 1.0
    return t


def log_softmax(z):
    m = z.max(axis=1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))


def softmax(z):
    return np.exp(log_softmax(z))


def softplus(z):
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def sigmoid(z):
    return np.exp(-softplus(-z))


def ce(z, t):
    """Mean soft-target cross-entropy and its gradient."""
    return -(t * log_softmax(z)).sum(axis=1).mean(), (softmax(z) - t) / B


def norm_backward(v, g, axis):
    """Gradient through v / sqrt(|v|^2 + EPS2) along `axis`, given the upstream gradient g."""
    n = np.sqrt((v * v).sum(axis=axis, keepdims=True) + EPS2)
    return g / n - v * (v * g).sum(axis=axis, keepdims=True) / n**3


def normalize(v, axis):
    return v / np.sqrt((v * v).sum(axis=axis, keepdims=True) + EPS2)


# --- losses of the logits: (name, params, f(z) -> (loss, dL/dz)) ---


# Every loss takes the targets t ([B, K], one-hot unless given: Mixup's mixtures of two).


def softmax_loss(z, t=None):
    return ce(z, onehot() if t is None else t)


def label_smoothing(alpha):
    def f(z, t=None):
        t = (onehot() if t is None else t) * (1 - alpha) + alpha / K
        loss, g = ce(z, t)
        return loss / (1 - alpha), g / (1 - alpha)

    return f


def sigmoid_loss(z, t=None):
    zs = z - np.log(K)
    t = onehot() if t is None else t
    loss = (softplus(zs) - t * zs).sum(axis=1).mean()
    return loss, (sigmoid(zs) - t) / B


def logit_penalty(beta):
    def f(z, t=None):
        loss, g = ce(z, onehot() if t is None else t)
        return loss + beta / 2 * (z * z).sum(axis=1).mean(), g + beta * z / B

    return f


def logit_norm(tau):
    def f(z, t=None):
        u = normalize(z, 1) / tau
        loss, g = ce(u, onehot() if t is None else t)
        return loss, norm_backward(z, g, 1) / tau

    return f


def squared_error(kappa, m, scale):
    def f(z, t=None):
        t = onehot() if t is None else t
        w = 1 + (kappa - 1) * t
        r = z - m * t
        return scale * (w * r * r).sum(axis=1).mean(), 2 * scale * w * r / B

    return f


def with_logit_penalty(loss_of_logits, beta):
    """A loss of the logits plus the logit penalty beta |z|^2 / 2, averaged over the batch."""

    def f(z, t=None):
        loss, g = loss_of_logits(z, t)
        return loss + beta / 2 * (z * z).sum(axis=1).mean(), g + beta * z / B

    return f


def normalized(loss_of_logits, tau):
    """A loss of the logit-normalised logits z / (tau |z|)."""

    def f(z, t=None):
        loss, g = loss_of_logits(normalize(z, 1) / tau, t)
        return loss, norm_backward(z, g, 1) / tau

    return f


LOGIT_CASES = [
    ("softmax", {}, softmax_loss),
    ("label-smoothing", {"alpha": 0.1}, label_smoothing(0.1)),
    ("label-smoothing", {"alpha": 0.3}, label_smoothing(0.3)),
    ("sigmoid", {}, sigmoid_loss),
    ("logit-penalty", {"beta": 6e-4}, logit_penalty(6e-4)),
    ("logit-penalty", {"beta": 0.25}, logit_penalty(0.25)),
    ("logit-norm", {"temperature": 0.05}, logit_norm(0.05)),
    ("logit-norm", {"temperature": 0.5}, logit_norm(0.5)),
    ("squared-error", {"kappa": 9.0, "m": 60.0, "scale": 10.0}, squared_error(9.0, 60.0, 10.0)),
    ("squared-error", {"kappa": 1.0, "m": 1.0, "scale": 1.0}, squared_error(1.0, 1.0, 1.0)),
]

# --- losses through the head: f(x, W, b) -> (loss, dx, dW, db) ---


def through_linear(loss_of_logits, extra_l2=0.0, keep=None):
    def f(x, w, b, t=None):
        xt = x * mask() / keep if keep is not None else x
        z = xt @ w + b
        loss, g = loss_of_logits(z, t)
        dxt = g @ w.T
        dx = dxt * mask() / keep if keep is not None else dxt
        dw = xt.T @ g + extra_l2 * w
        return loss + extra_l2 / 2 * (w * w).sum(), dx, dw, g.sum(axis=0)

    return f


def cosine(tau, factor, loss_of_logits=softmax_loss, keep=None, beta=0.0):
    """The cosine classifier: factor * loss(z) + beta |z|^2 / 2 with z = cos(W_k, x~) / tau + b_k,
    x~ the features after the dropout mask (when keep is given)."""

    def f(x, w, b, t=None):
        xt = x * mask() / keep if keep is not None else x
        xh, wh = normalize(xt, 1), normalize(w, 0)
        z = xh @ wh / tau + b
        loss, g = loss_of_logits(z, t)
        loss, g = loss * factor, g * factor
        loss, g = loss + beta / 2 * (z * z).sum(axis=1).mean(), g + beta * z / B
        dxh = g @ wh.T / tau
        dwh = xh.T @ g / tau
        dxt = norm_backward(xt, dxh, 1)
        dx = dxt * mask() / keep if keep is not None else dxt
        return loss, dx, norm_backward(w, dwh, 0), g.sum(axis=0)

    return f


HEAD_CASES = [
    ("softmax", {}, through_linear(softmax_loss)),
    ("extra-l2", {"lambda": 8e-4}, through_linear(softmax_loss, extra_l2=8e-4)),
    ("extra-l2", {"lambda": 0.5}, through_linear(softmax_loss, extra_l2=0.5)),
    ("dropout", {"keep_prob": 0.7}, through_linear(softmax_loss, keep=0.7)),
    ("cosine-softmax", {"temperature": 0.05}, cosine(0.05, 1.0)),
    ("cosine-softmax", {"temperature": 0.02}, cosine(0.02, 0.02)),  # auto: scaled by tau
    ("cosine-softmax", {"temperature": 0.02, "loss_scaling": "never"}, cosine(0.02, 1.0)),
    ("cosine-softmax", {"temperature": 0.1, "loss_scaling": "always"}, cosine(0.1, 0.1)),
    # Combinations (Table C.4): one loss, at most one normalisation, any regularisers.
    (
        "cosine-softmax+dropout",
        {"temperature": 0.05, "keep_prob": 0.7},
        cosine(0.05, 1.0, keep=0.7),
    ),
    (
        "cosine-softmax+label-smoothing",
        {"temperature": 0.02, "alpha": 0.1},
        cosine(0.02, 0.02, loss_of_logits=label_smoothing(0.1)),  # auto: scaled by tau
    ),
    (
        "cosine-softmax+sigmoid+logit-penalty",
        {"temperature": 0.1, "beta": 0.01},
        cosine(0.1, 1.0, loss_of_logits=sigmoid_loss, beta=0.01),
    ),
    (
        "label-smoothing+logit-penalty",
        {"alpha": 0.1, "beta": 0.25},
        through_linear(with_logit_penalty(label_smoothing(0.1), 0.25)),
    ),
    ("sigmoid+extra-l2", {"lambda": 0.5}, through_linear(sigmoid_loss, extra_l2=0.5)),
    ("logit-norm+sigmoid", {"temperature": 0.5}, through_linear(normalized(sigmoid_loss, 0.5))),
    (
        "logit-norm+label-smoothing+dropout",
        {"temperature": 0.05, "alpha": 0.1, "keep_prob": 0.7},
        through_linear(normalized(label_smoothing(0.1), 0.05), keep=0.7),
    ),
    (
        "squared-error+dropout+logit-penalty",
        {"kappa": 9.0, "m": 60.0, "scale": 10.0, "keep_prob": 0.7, "beta": 0.1},
        through_linear(with_logit_penalty(squared_error(9.0, 60.0, 10.0), 0.1), keep=0.7),
    ),
]


# Mixup's targets: each example's one-hot target mixed with its partner's, lambda = 0.3.
MIX_LAMBDA = 0.3
MIX_PARTNER = np.array([2, 0, 3, 1])


def mixed_targets():
    return MIX_LAMBDA * onehot() + (1 - MIX_LAMBDA) * onehot()[MIX_PARTNER]


# Losses against mixed targets: each loss of the logits, and objectives through the head.
SOFT_LOGIT_CASES = [
    ("softmax", {}, softmax_loss),
    ("label-smoothing", {"alpha": 0.1}, label_smoothing(0.1)),
    ("sigmoid", {}, sigmoid_loss),
    ("squared-error", {"kappa": 9.0, "m": 60.0, "scale": 10.0}, squared_error(9.0, 60.0, 10.0)),
]
SOFT_HEAD_CASES = [
    ("logit-norm", {"temperature": 0.05}, through_linear(logit_norm(0.05))),
    ("cosine-softmax+label-smoothing", {"temperature": 0.02, "alpha": 0.1},
     cosine(0.02, 0.02, loss_of_logits=label_smoothing(0.1))),
    ("sigmoid+extra-l2", {"lambda": 0.5}, through_linear(sigmoid_loss, extra_l2=0.5)),
    ("squared-error+dropout+logit-penalty",
     {"kappa": 9.0, "m": 60.0, "scale": 10.0, "keep_prob": 0.7, "beta": 0.1},
     through_linear(with_logit_penalty(squared_error(9.0, 60.0, 10.0), 0.1), keep=0.7)),
]


def zero_row_features():
    x = features()
    x[1] = 0.0
    return x


FEATURES = {
    "regular": features(),
    "zero-row": zero_row_features(),
    "zeros": np.zeros((B, P)),
    "huge": features() * 1e4,
}


def finite_difference(f, x, h=1e-6):
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        g[idx] = (f(xp) - f(xm)) / (2 * h)
    return g


def assert_gradient(analytic, numeric, what):
    """Central differences lose ~1e-16 |loss| / h to rounding, so the tolerance follows the scale."""
    atol = 1e-6 * max(1.0, np.abs(numeric).max())
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=atol, err_msg=what)


def check_gradients():
    z, t = LOGITS["regular"], mixed_targets()
    for name, params, f in SOFT_LOGIT_CASES:
        num = finite_difference(lambda v: f(v, t)[0], z)
        assert_gradient(f(z, t)[1], num, f"{name} {params} logits, mixed targets")
    for name, params, f in SOFT_HEAD_CASES:
        x, w, b = features(), weight(), bias()
        _, dx, dw, db = f(x, w, b, t)
        assert_gradient(dx, finite_difference(lambda v: f(v, w, b, t)[0], x), f"{name} mixed features")
        assert_gradient(dw, finite_difference(lambda v: f(x, v, b, t)[0], w), f"{name} mixed weight")
        assert_gradient(db, finite_difference(lambda v: f(x, w, v, t)[0], b), f"{name} mixed bias")
    for name, params, f in LOGIT_CASES:
        num = finite_difference(lambda v: f(v)[0], z)
        assert_gradient(f(z)[1], num, f"{name} {params} logits")
    for name, params, f in HEAD_CASES:
        x, w, b = features(), weight(), bias()
        _, dx, dw, db = f(x, w, b)
        assert_gradient(dx, finite_difference(lambda v: f(v, w, b)[0], x), f"{name} {params} features")
        assert_gradient(dw, finite_difference(lambda v: f(x, v, b)[0], w), f"{name} {params} weight")
        assert_gradient(db, finite_difference(lambda v: f(x, w, v)[0], b), f"{name} {params} bias")


def main():
    check_gradients()
    out = {
        "batch": B,
        "classes": K,
        "features": P,
        "targets": TARGETS.tolist(),
        "weight": weight().ravel().tolist(),
        "bias": bias().tolist(),
        "mask": mask().ravel().tolist(),
        "logits": {k: v.ravel().tolist() for k, v in LOGITS.items()},
        "feature_sets": {k: v.ravel().tolist() for k, v in FEATURES.items()},
        "logit_cases": [],
        "head_cases": [],
        "mixed_targets": mixed_targets().ravel().tolist(),
        "soft_logit_cases": [],
        "soft_head_cases": [],
    }
    t = mixed_targets()
    for name, params, f in SOFT_LOGIT_CASES:
        for key in ["regular", "extreme"]:
            loss, g = f(LOGITS[key], t)
            out["soft_logit_cases"].append(
                {"kind": name, "params": params, "logits": key, "loss": loss, "grad_logits": g.ravel().tolist()}
            )
    for name, params, f in SOFT_HEAD_CASES:
        loss, dx, dw, db = f(features(), weight(), bias(), t)
        out["soft_head_cases"].append(
            {
                "kind": name,
                "params": params,
                "features": "regular",
                "loss": loss,
                "grad_features": dx.ravel().tolist(),
                "grad_weight": dw.ravel().tolist(),
                "grad_bias": db.tolist(),
            }
        )
    for name, params, f in LOGIT_CASES:
        for key, z in LOGITS.items():
            loss, g = f(z)
            assert np.isfinite(loss) and np.isfinite(g).all(), (name, key)
            out["logit_cases"].append(
                {"kind": name, "params": params, "logits": key, "loss": loss, "grad_logits": g.ravel().tolist()}
            )
    for name, params, f in HEAD_CASES:
        for key, x in FEATURES.items():
            if key == "huge" and not name.startswith("cosine-softmax"):
                continue  # huge features are the cosine head's extreme case
            loss, dx, dw, db = f(x, weight(), bias())
            assert np.isfinite(loss) and np.isfinite(dx).all() and np.isfinite(dw).all(), (name, key)
            out["head_cases"].append(
                {
                    "kind": name,
                    "params": params,
                    "features": key,
                    "loss": loss,
                    "grad_features": dx.ravel().tolist(),
                    "grad_weight": dw.ravel().tolist(),
                    "grad_bias": db.tolist(),
                }
            )
    with open("expected.json", "w") as fh:
        json.dump(out, fh, indent=1)
        fh.write("\n")
    print(
        f"{len(out['logit_cases'])} logit cases, {len(out['head_cases'])} head cases, "
        f"{len(out['soft_logit_cases']) + len(out['soft_head_cases'])} with mixed targets"
    )


if __name__ == "__main__":
    main()
