"""Reference outputs of AutoAugment's operations (core/src/data/autoaugment.rs), from torchvision.

torchvision's own `_apply_op` on uint8 tensors (its tensor implementation: nearest-neighbour
geometry with zero fill, float blends truncated back to uint8), at the magnitudes of its
augmentation space (10 bins, as AutoAugment draws them), on two fixed images of odd size.

Run once by hand from this folder with an interpreter that has torch and torchvision:
`python make_autoaugment_reference.py`; it writes reference.json, which is committed. Images and
outputs are stored as hex strings of their uint8 values in [channel, row, column] order.
"""

import json

import numpy as np
import torch
import torchvision
from torchvision.transforms import InterpolationMode
from torchvision.transforms.autoaugment import AutoAugment, AutoAugmentPolicy, _apply_op

H, W = 13, 17


def images():
    i, j = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    smooth = np.stack(
        [
            40 + 12 * i + 3 * j,
            200 - 9 * j + 2 * i,
            90 + 60 * np.sin(0.5 * i + 0.3 * j),
        ]
    )
    rng = np.random.default_rng(7)
    noisy = rng.integers(0, 256, size=(3, H, W))
    # Low contrast, a few levels only: what AutoContrast and Equalize stretch.
    dull = 100 + ((i * 3 + j) % 7)[None].repeat(3, axis=0) + np.array([0, 5, 9])[:, None, None]
    return {
        "smooth": np.clip(smooth, 0, 255).astype(np.uint8),
        "noisy": noisy.astype(np.uint8),
        "dull": dull.astype(np.uint8),
    }


def hexed(a):
    return np.ascontiguousarray(a, dtype=np.uint8).tobytes().hex()


def main():
    space = AutoAugment()._augmentation_space(10, (H, W))
    cases = []
    for op, (magnitudes, signed) in space.items():
        bins = [None] if magnitudes.ndim == 0 else [1, 4, 8, 9]
        for b in bins:
            for sign in ([1.0, -1.0] if signed and b is not None else [1.0]):
                magnitude = 0.0 if b is None else float(magnitudes[b].item()) * sign
                for name, img in images().items():
                    out = _apply_op(
                        torch.from_numpy(img), op, magnitude, interpolation=InterpolationMode.NEAREST, fill=None
                    )
                    cases.append(
                        {
                            "op": op,
                            "bin": b,
                            "sign": sign,
                            "magnitude": magnitude,
                            "image": name,
                            "output": hexed(out.numpy()),
                        }
                    )
    magnitudes = {
        op: ([float(m) for m in mags.tolist()] if mags.ndim == 1 else [])
        for op, (mags, _) in space.items()
    }
    policies = {
        p.value: [[list(step) for step in sub] for sub in AutoAugment(p).policies] for p in AutoAugmentPolicy
    }
    out = {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "height": H,
        "width": W,
        "images": {k: hexed(v) for k, v in images().items()},
        "signed": {op: bool(signed) for op, (_, signed) in space.items()},
        "magnitudes": magnitudes,
        "policies": policies,
        "cases": cases,
    }
    with open("reference.json", "w") as fh:
        json.dump(out, fh, indent=1)
        fh.write("\n")
    print(f"{len(cases)} cases")


if __name__ == "__main__":
    main()
