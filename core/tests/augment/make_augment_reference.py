"""Reference crops for core/tests/augment.rs, computed with scipy.ndimage.map_coordinates.

Output pixel o of a crop of length L starting at s, resampled to `size` pixels, reads source
coordinate s + (o + 1/2) * L / size - 1/2 (align_corners=False), bilinearly. Crops inside the
image clamp to the edge pixels (mode="nearest"); pad-crops shift by whole pixels into zero
padding (mode="constant"). A flip mirrors the output columns. Run once:

    python3 core/tests/augment/make_augment_reference.py
"""

import json
import pathlib

import numpy as np
from scipy.ndimage import map_coordinates

rng = np.random.default_rng(11)
H, W, C = 9, 7, 3
image = rng.integers(0, 256, size=(H, W, C), dtype=np.uint8)

# (top, left, height, width, flip, size, mode)
crops = [
    (0.0, 0.0, 9.0, 7.0, False, 5, "nearest"),   # whole image, downscaled
    (2.0, 1.0, 4.0, 5.0, True, 6, "nearest"),    # inner crop, upscaled, mirrored
    (1.0, 2.0, 7.0, 3.0, False, 4, "nearest"),   # tall crop
    (0.0, 0.0, 9.0, 7.0, False, 12, "nearest"),  # whole image, upscaled (edge clamping)
    (-2.0, 3.0, 7.0, 7.0, False, 7, "constant"), # pad-crop: 2 rows of padding on top
    (1.0, -3.0, 7.0, 7.0, True, 7, "constant"),  # pad-crop with flip
]

cases = []
for top, left, h, w, flip, size, mode in crops:
    o = np.arange(size)
    ys = top + (o + 0.5) * h / size - 0.5
    xs = left + (o + 0.5) * w / size - 0.5
    if flip:
        xs = xs[::-1]
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    out = np.stack(
        [map_coordinates(image[:, :, c].astype(np.float64), [yy, xx], order=1, mode=mode, cval=0.0) for c in range(C)]
    )  # [C, size, size]
    cases.append(
        {"top": top, "left": left, "height": h, "width": w, "flip": flip, "size": size, "expected": out.ravel().tolist()}
    )

here = pathlib.Path(__file__).parent
(here / "reference.json").write_text(
    json.dumps({"height": H, "width": W, "channels": C, "pixels": image.ravel().tolist(), "cases": cases})
)
print(f"wrote {len(cases)} cases")
