"""Reference outputs of the deterministic ImageNet-C corruptions, from the code ImageNet-C was made
with (as packaged in `imagecorruptions`: scikit-image, scipy and PIL), on a fixed image.

The image: 20 x 24 RGB, smooth colour gradients with a bright square and a dark bar (so that
clipping, hue wrap-around and edges all occur), built here from integers. For each severity 1-5:

- gaussian-blur: skimage.filters.gaussian(x / 255, sigma=c, channel_axis=-1) (scipy's
  gaussian_filter, mode "nearest", truncate 4), clipped, * 255, truncated to uint8;
- brightness: skimage.color.rgb2hsv, V + c clipped to [0, 1], hsv2rgb, * 255, truncated;
- contrast: (x - mean over the image per channel) * c + mean, clipped, * 255, truncated;
- pixelate: PIL resize((int(w * c), int(h * c)), BOX) then resize((w, h), NEAREST);
- jpeg-compression: PIL save as JPEG at quality c and load again; losslens uses another encoder, so
  only the PSNR against the original is compared.

The parameters c are ImageNet-C's (imagecorruptions/corruptions.py). Run once by hand from this
folder: `python3 make_corruption_reference.py`; writes reference.json, which is committed.
"""

import json
from io import BytesIO
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import color
from skimage.filters import gaussian

H, W = 20, 24
PARAMETERS = {
    "gaussian-blur": [1, 2, 3, 4, 6],
    "brightness": [0.1, 0.2, 0.3, 0.4, 0.5],
    "contrast": [0.4, 0.3, 0.2, 0.1, 0.05],
    "pixelate": [0.6, 0.5, 0.4, 0.3, 0.25],
    "jpeg-compression": [25, 18, 15, 10, 7],
}


def image():
    y, x = np.mgrid[0:H, 0:W]
    rgb = np.stack([(x * 255) // (W - 1), (y * 255) // (H - 1), 255 - ((x + y) * 255) // (H + W - 2)], axis=-1)
    rgb[4:10, 5:12] = [250, 240, 30]
    rgb[13:16, :] = [10, 20, 200]
    return rgb.astype(np.uint8)


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def corrupt(name, c, img):
    x = img / 255.0
    if name == "gaussian-blur":
        return np.uint8(np.clip(gaussian(x, sigma=c, channel_axis=-1), 0, 1) * 255)
    if name == "brightness":
        hsv = color.rgb2hsv(x)
        hsv[:, :, 2] = np.clip(hsv[:, :, 2] + c, 0, 1)
        return np.uint8(np.clip(color.hsv2rgb(hsv), 0, 1) * 255)
    if name == "contrast":
        means = np.mean(x, axis=(0, 1), keepdims=True)
        return np.uint8(np.clip((x - means) * c + means, 0, 1) * 255)
    if name == "pixelate":
        pil = Image.fromarray(img)
        pil = pil.resize((int(W * c), int(H * c)), Image.BOX).resize((W, H), Image.NEAREST)
        return np.asarray(pil)
    if name == "jpeg-compression":
        out = BytesIO()
        Image.fromarray(img).save(out, "JPEG", quality=c)
        return np.asarray(Image.open(out))
    raise ValueError(name)


def main():
    img = image()
    out = {"height": H, "width": W, "image": img.ravel().tolist(), "corruptions": {}}
    for name, cs in PARAMETERS.items():
        results = []
        for c in cs:
            y = corrupt(name, c, img)
            entry = {"parameter": c, "psnr": psnr(img, y)}
            if name != "jpeg-compression":
                entry["pixels"] = y.ravel().tolist()
            results.append(entry)
        out["corruptions"][name] = results
        print(name, [round(r["psnr"], 2) for r in results])
    with open(Path(__file__).with_name("reference.json"), "w") as fh:
        json.dump(out, fh, separators=(",", ":"))
        fh.write("\n")


if __name__ == "__main__":
    main()
