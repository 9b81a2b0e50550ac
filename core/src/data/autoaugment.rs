//! AutoAugment (Cubuk et al. 2019), the augmentation of the paper's Tables C.5, C.6 and E.3, as
//! torchvision implements it (`torchvision.transforms.AutoAugment` on uint8 tensors).
//!
//! For each training image a policy picks one of its 25 sub-policies uniformly; each of the
//! sub-policy's two operations is applied with its probability, at its magnitude (one of 10
//! bins), with a random sign where the operation has one. The operations act on the cropped,
//! resized and flipped `uint8` image, exactly as torchvision's tensor implementation does:
//! geometry (shear, translation, rotation) by nearest-neighbour sampling about the image centre
//! (shears about the top-left corner) with black fill; colour by blends computed in `f32` and
//! truncated back to `uint8`; equalisation, auto-contrast, posterisation, solarisation and
//! inversion by their lookup tables. `autoaugment/make_autoaugment_reference.py` checks every
//! operation at several magnitudes against torchvision.
//!
//! Images are interleaved `[height, width, channels]` `uint8` (the [`ImageSet`] layout), with 1
//! or 3 channels; grey images skip the saturation change, as torchvision does.
//!
//! [`ImageSet`]: crate::data::ImageSet

use serde::{Deserialize, Serialize};

use crate::rng::SplitMix64;

/// One of AutoAugment's image operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Horizontal shear by `m` (the image's rows shift by `m·y`), about the top-left corner.
    ShearX,
    /// Vertical shear by `m`, about the top-left corner.
    ShearY,
    /// Horizontal translation by `⌊m⌋` pixels (towards zero).
    TranslateX,
    /// Vertical translation by `⌊m⌋` pixels.
    TranslateY,
    /// Rotation by `m` degrees, counter-clockwise, about the centre.
    Rotate,
    /// Brightness: blend with black, factor `1 + m`.
    Brightness,
    /// Saturation: blend with the grey image, factor `1 + m`.
    Color,
    /// Contrast: blend with the mean grey level, factor `1 + m`.
    Contrast,
    /// Sharpness: blend with a 3 × 3 smoothed image (borders kept), factor `1 + m`.
    Sharpness,
    /// Keep the `m` most significant bits.
    Posterize,
    /// Invert the values at or above the threshold `m`.
    Solarize,
    /// Stretch each channel to the full range.
    AutoContrast,
    /// Equalise each channel's histogram.
    Equalize,
    /// `255 − v`.
    Invert,
}

/// Magnitude bins of every operation (torchvision's `num_bins`).
pub const BINS: usize = 10;

/// `torch.linspace(start, end, steps)[i]` in `f32`, as torch computes it (forwards from the
/// start for the first half, backwards from the end for the rest).
fn linspace_f32(start: f32, end: f32, steps: usize, i: usize) -> f32 {
    let step = (end - start) / (steps - 1) as f32;
    if i < steps / 2 {
        start + step * i as f32
    } else {
        end - step * (steps - i - 1) as f32
    }
}

impl Op {
    /// Every operation.
    pub const ALL: [Op; 14] = [
        Op::ShearX,
        Op::ShearY,
        Op::TranslateX,
        Op::TranslateY,
        Op::Rotate,
        Op::Brightness,
        Op::Color,
        Op::Contrast,
        Op::Sharpness,
        Op::Posterize,
        Op::Solarize,
        Op::AutoContrast,
        Op::Equalize,
        Op::Invert,
    ];

    /// torchvision's name of the operation (`ShearX`, `AutoContrast`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Op::ShearX => "ShearX",
            Op::ShearY => "ShearY",
            Op::TranslateX => "TranslateX",
            Op::TranslateY => "TranslateY",
            Op::Rotate => "Rotate",
            Op::Brightness => "Brightness",
            Op::Color => "Color",
            Op::Contrast => "Contrast",
            Op::Sharpness => "Sharpness",
            Op::Posterize => "Posterize",
            Op::Solarize => "Solarize",
            Op::AutoContrast => "AutoContrast",
            Op::Equalize => "Equalize",
            Op::Invert => "Invert",
        }
    }

    /// Whether a random sign applies to the magnitude.
    pub fn signed(self) -> bool {
        matches!(
            self,
            Op::ShearX
                | Op::ShearY
                | Op::TranslateX
                | Op::TranslateY
                | Op::Rotate
                | Op::Brightness
                | Op::Color
                | Op::Contrast
                | Op::Sharpness
        )
    }

    /// The magnitude of bin `bin` (0 to 9) on an image of `height × width`, before the sign
    /// (torchvision's `_augmentation_space`: shear 0–0.3, translation 0–150/331 of the side,
    /// rotation 0–30°, enhancements 0–0.9, posterise 8 down to 4 bits, solarise 255 down to 0);
    /// 0 for the operations without one.
    pub fn magnitude(self, bin: usize, height: usize, width: usize) -> f64 {
        let lin = |end: f32| f64::from(linspace_f32(0.0, end, BINS, bin));
        match self {
            Op::ShearX | Op::ShearY => lin(0.3),
            Op::TranslateX => lin((150.0 / 331.0 * width as f64) as f32),
            Op::TranslateY => lin((150.0 / 331.0 * height as f64) as f32),
            Op::Rotate => lin(30.0),
            Op::Brightness | Op::Color | Op::Contrast | Op::Sharpness => lin(0.9),
            Op::Posterize => (8.0 - (bin as f32 / ((BINS - 1) as f32 / 4.0)).round_ties_even()) as f64,
            Op::Solarize => f64::from(linspace_f32(255.0, 0.0, BINS, bin)),
            Op::AutoContrast | Op::Equalize | Op::Invert => 0.0,
        }
    }

    /// Applies the operation at `magnitude` (signed where it has a sign) to an image.
    ///
    /// # Shapes
    /// - `pixels`: `[height, width, channels]`, channels 1 or 3
    pub fn apply(self, pixels: &mut [u8], [height, width, channels]: [usize; 3], magnitude: f64) {
        let (h, w) = (height as f64, width as f64);
        match self {
            Op::ShearX => {
                let shear = [magnitude.atan().to_degrees(), 0.0];
                let m = inverse_affine([-w * 0.5, -h * 0.5], 0.0, [0.0, 0.0], shear);
                resample(pixels, [height, width, channels], m);
            }
            Op::ShearY => {
                let shear = [0.0, magnitude.atan().to_degrees()];
                let m = inverse_affine([-w * 0.5, -h * 0.5], 0.0, [0.0, 0.0], shear);
                resample(pixels, [height, width, channels], m);
            }
            Op::TranslateX => {
                let m = inverse_affine([0.0, 0.0], 0.0, [magnitude.trunc(), 0.0], [0.0, 0.0]);
                resample(pixels, [height, width, channels], m);
            }
            Op::TranslateY => {
                let m = inverse_affine([0.0, 0.0], 0.0, [0.0, magnitude.trunc()], [0.0, 0.0]);
                resample(pixels, [height, width, channels], m);
            }
            Op::Rotate => {
                let m = inverse_affine([0.0, 0.0], -magnitude, [0.0, 0.0], [0.0, 0.0]);
                resample(pixels, [height, width, channels], m);
            }
            Op::Brightness => {
                let black = vec![0.0f32; pixels.len()];
                blend(pixels, &black, 1.0 + magnitude);
            }
            Op::Color => {
                if channels == 3 {
                    let grey: Vec<f32> = pixels
                        .chunks_exact(3)
                        .flat_map(|p| std::iter::repeat_n(f32::from(grey(p)), 3))
                        .collect();
                    blend(pixels, &grey, 1.0 + magnitude);
                }
            }
            Op::Contrast => {
                let sum: f64 = if channels == 3 {
                    pixels.chunks_exact(3).map(|p| f64::from(grey(p))).sum()
                } else {
                    pixels.iter().map(|&v| f64::from(v)).sum()
                };
                // An exact integer sum, divided once: what torch's f32 mean gives.
                let mean = (sum / (height * width) as f64) as f32;
                blend(pixels, &vec![mean; pixels.len()], 1.0 + magnitude);
            }
            Op::Sharpness => {
                if height > 2 && width > 2 {
                    let smooth = smoothed(pixels, [height, width, channels]);
                    blend(pixels, &smooth, 1.0 + magnitude);
                }
            }
            Op::Posterize => {
                let bits = magnitude as u32;
                let mask = !((1u32 << (8 - bits.min(8))) - 1) as u8;
                pixels.iter_mut().for_each(|v| *v &= mask);
            }
            Op::Solarize => {
                pixels
                    .iter_mut()
                    .for_each(|v| *v = if f64::from(*v) >= magnitude { 255 - *v } else { *v });
            }
            Op::AutoContrast => auto_contrast(pixels, channels),
            Op::Equalize => equalize(pixels, channels),
            Op::Invert => pixels.iter_mut().for_each(|v| *v = 255 - *v),
        }
    }
}

/// torchvision's grey level of an RGB pixel: `0.2989 r + 0.587 g + 0.114 b` in `f32`, truncated.
fn grey(p: &[u8]) -> u8 {
    let [r, g, b] = [p[0], p[1], p[2]].map(f32::from);
    (0.2989f32 * r + 0.587f32 * g + 0.114f32 * b) as u8
}

/// torchvision's `_blend(img, other, ratio)`: `ratio · img + (1 − ratio) · other` in `f32`,
/// clamped to [0, 255] and truncated.
fn blend(pixels: &mut [u8], other: &[f32], ratio: f64) {
    let (a, b) = (ratio as f32, (1.0 - ratio) as f32);
    for (v, &o) in pixels.iter_mut().zip(other) {
        *v = (a * f32::from(*v) + b * o).clamp(0.0, 255.0) as u8;
    }
}

/// The image smoothed by the 3 × 3 kernel `[1 1 1; 1 5 1; 1 1 1] / 13` in `f32` and rounded,
/// its border pixels unchanged (torchvision's `_blurred_degenerate_image`).
fn smoothed(pixels: &[u8], [h, w, c]: [usize; 3]) -> Vec<f32> {
    let one = 1.0f32 / 13.0;
    let five = 5.0f32 / 13.0;
    let mut out: Vec<f32> = pixels.iter().map(|&v| f32::from(v)).collect();
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            for ch in 0..c {
                let at = |dy: usize, dx: usize| f32::from(pixels[((y + dy - 1) * w + x + dx - 1) * c + ch]);
                let mut sum = 0.0f32;
                for dy in 0..3 {
                    for dx in 0..3 {
                        let k = if dy == 1 && dx == 1 { five } else { one };
                        sum += k * at(dy, dx);
                    }
                }
                out[(y * w + x) * c + ch] = sum.round_ties_even();
            }
        }
    }
    out
}

/// Stretches each channel from its own [min, max] to [0, 255] (in `f32`, truncated, with
/// torch's rounding of the scale); a flat channel is left as it is.
fn auto_contrast(pixels: &mut [u8], c: usize) {
    for ch in 0..c {
        let values = pixels.iter().skip(ch).step_by(c);
        let (lo, hi) = values.fold((u8::MAX, u8::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        if lo == hi {
            continue;
        }
        // torch evaluates `255 / (max − min)` as `(1 / (max − min)) · 255`.
        let (lo, scale) = (f32::from(lo), (1.0f32 / (f32::from(hi) - f32::from(lo))) * 255.0);
        for v in pixels.iter_mut().skip(ch).step_by(c) {
            *v = ((f32::from(*v) - lo) * scale).clamp(0.0, 255.0) as u8;
        }
    }
}

/// Equalises each channel's histogram (torchvision's `_scale_channel`, after PIL): with
/// `step = ⌊(count − count of the last level present) / 255⌋`, level `i` maps to
/// `⌊(Σ_{j<i} hist_j + ⌊step/2⌋) / step⌋`; a channel with `step = 0` is left as it is.
fn equalize(pixels: &mut [u8], c: usize) {
    for ch in 0..c {
        let mut hist = [0u64; 256];
        for &v in pixels.iter().skip(ch).step_by(c) {
            hist[usize::from(v)] += 1;
        }
        let last = hist.iter().rev().find(|&&n| n > 0).copied().unwrap_or(0);
        let step = (hist.iter().sum::<u64>() - last) / 255;
        if step == 0 {
            continue;
        }
        let mut lut = [0u8; 256];
        let mut cumulative = 0u64;
        for (level, &n) in hist.iter().enumerate() {
            lut[level] = ((cumulative + step / 2) / step).min(255) as u8;
            cumulative += n;
        }
        for v in pixels.iter_mut().skip(ch).step_by(c) {
            *v = lut[usize::from(*v)];
        }
    }
}

/// torchvision's `_get_inverse_affine_matrix` (in `f64`): the map from output to input
/// coordinates, both relative to the image centre, of a rotation by `angle` degrees, a
/// translation and a shear (degrees) about `center`.
fn inverse_affine(center: [f64; 2], angle: f64, translate: [f64; 2], shear: [f64; 2]) -> [f64; 6] {
    let rot = angle.to_radians();
    let (sx, sy) = (shear[0].to_radians(), shear[1].to_radians());
    let [cx, cy] = center;
    let [tx, ty] = translate;
    let a = (rot - sy).cos() / sy.cos();
    let b = -(rot - sy).cos() * sx.tan() / sy.cos() - rot.sin();
    let c = (rot - sy).sin() / sy.cos();
    let d = -(rot - sy).sin() * sx.tan() / sy.cos() + rot.cos();
    let mut m = [d, -b, 0.0, -c, a, 0.0];
    m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty);
    m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty);
    m[2] += cx;
    m[5] += cy;
    m
}

/// Nearest-neighbour resampling through the inverse map `m`, black outside the image, with
/// torch's arithmetic: the affine grid and `grid_sample(align_corners = False)` in `f32`,
/// coordinates rounded half to even.
fn resample(pixels: &mut [u8], [h, w, c]: [usize; 3], m: [f64; 6]) {
    let t = m.map(|v| v as f32);
    let (half_w, half_h) = (0.5 * w as f32, 0.5 * h as f32);
    let theta = [
        t[0] / half_w,
        t[1] / half_w,
        t[2] / half_w,
        t[3] / half_h,
        t[4] / half_h,
        t[5] / half_h,
    ];
    let source = pixels.to_vec();
    for i in 0..h {
        let y = i as f32 - half_h + 0.5;
        for j in 0..w {
            let x = j as f32 - half_w + 0.5;
            let gx = x * theta[0] + y * theta[1] + theta[2];
            let gy = x * theta[3] + y * theta[4] + theta[5];
            let ix = (((gx + 1.0) * w as f32 - 1.0) / 2.0).round_ties_even();
            let iy = (((gy + 1.0) * h as f32 - 1.0) / 2.0).round_ties_even();
            let out = &mut pixels[(i * w + j) * c..(i * w + j + 1) * c];
            if ix >= 0.0 && iy >= 0.0 && ix < w as f32 && iy < h as f32 {
                let at = (iy as usize * w + ix as usize) * c;
                out.copy_from_slice(&source[at..at + c]);
            } else {
                out.fill(0);
            }
        }
    }
}

/// One operation of a sub-policy: the operation, its probability and its magnitude bin.
pub type Step = (Op, f64, Option<usize>);

/// The learned AutoAugment policies (torchvision's `AutoAugmentPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Learned on ImageNet: the one the paper trains with.
    #[default]
    Imagenet,
    /// Learned on CIFAR-10.
    Cifar10,
    /// Learned on SVHN.
    Svhn,
}

impl Policy {
    /// Its 25 sub-policies of two steps each.
    pub fn sub_policies(self) -> &'static [[Step; 2]; 25] {
        match self {
            Policy::Imagenet => &IMAGENET,
            Policy::Cifar10 => &CIFAR10,
            Policy::Svhn => &SVHN,
        }
    }

    /// Augments one image: a sub-policy drawn uniformly, each step applied with its
    /// probability and, where signed, a random sign (torchvision's `AutoAugment.forward`).
    ///
    /// # Shapes
    /// - `pixels`: `[height, width, channels]`
    pub fn apply(self, pixels: &mut [u8], shape: [usize; 3], rng: &mut SplitMix64) {
        let policies = self.sub_policies();
        let chosen = &policies[(rng.next_u64() % policies.len() as u64) as usize];
        for &(op, probability, bin) in chosen {
            let (draw, negative) = (rng.uniform(), rng.uniform() < 0.5);
            if draw <= probability {
                let mut magnitude = bin.map_or(0.0, |b| op.magnitude(b, shape[0], shape[1]));
                if op.signed() && negative {
                    magnitude = -magnitude;
                }
                op.apply(pixels, shape, magnitude);
            }
        }
    }
}

use Op::*;

const IMAGENET: [[Step; 2]; 25] = [
    [(Posterize, 0.4, Some(8)), (Rotate, 0.6, Some(9))],
    [(Solarize, 0.6, Some(5)), (AutoContrast, 0.6, None)],
    [(Equalize, 0.8, None), (Equalize, 0.6, None)],
    [(Posterize, 0.6, Some(7)), (Posterize, 0.6, Some(6))],
    [(Equalize, 0.4, None), (Solarize, 0.2, Some(4))],
    [(Equalize, 0.4, None), (Rotate, 0.8, Some(8))],
    [(Solarize, 0.6, Some(3)), (Equalize, 0.6, None)],
    [(Posterize, 0.8, Some(5)), (Equalize, 1.0, None)],
    [(Rotate, 0.2, Some(3)), (Solarize, 0.6, Some(8))],
    [(Equalize, 0.6, None), (Posterize, 0.4, Some(6))],
    [(Rotate, 0.8, Some(8)), (Color, 0.4, Some(0))],
    [(Rotate, 0.4, Some(9)), (Equalize, 0.6, None)],
    [(Equalize, 0.0, None), (Equalize, 0.8, None)],
    [(Invert, 0.6, None), (Equalize, 1.0, None)],
    [(Color, 0.6, Some(4)), (Contrast, 1.0, Some(8))],
    [(Rotate, 0.8, Some(8)), (Color, 1.0, Some(2))],
    [(Color, 0.8, Some(8)), (Solarize, 0.8, Some(7))],
    [(Sharpness, 0.4, Some(7)), (Invert, 0.6, None)],
    [(ShearX, 0.6, Some(5)), (Equalize, 1.0, None)],
    [(Color, 0.4, Some(0)), (Equalize, 0.6, None)],
    [(Equalize, 0.4, None), (Solarize, 0.2, Some(4))],
    [(Solarize, 0.6, Some(5)), (AutoContrast, 0.6, None)],
    [(Invert, 0.6, None), (Equalize, 1.0, None)],
    [(Color, 0.6, Some(4)), (Contrast, 1.0, Some(8))],
    [(Equalize, 0.8, None), (Equalize, 0.6, None)],
];

const CIFAR10: [[Step; 2]; 25] = [
    [(Invert, 0.1, None), (Contrast, 0.2, Some(6))],
    [(Rotate, 0.7, Some(2)), (TranslateX, 0.3, Some(9))],
    [(Sharpness, 0.8, Some(1)), (Sharpness, 0.9, Some(3))],
    [(ShearY, 0.5, Some(8)), (TranslateY, 0.7, Some(9))],
    [(AutoContrast, 0.5, None), (Equalize, 0.9, None)],
    [(ShearY, 0.2, Some(7)), (Posterize, 0.3, Some(7))],
    [(Color, 0.4, Some(3)), (Brightness, 0.6, Some(7))],
    [(Sharpness, 0.3, Some(9)), (Brightness, 0.7, Some(9))],
    [(Equalize, 0.6, None), (Equalize, 0.5, None)],
    [(Contrast, 0.6, Some(7)), (Sharpness, 0.6, Some(5))],
    [(Color, 0.7, Some(7)), (TranslateX, 0.5, Some(8))],
    [(Equalize, 0.3, None), (AutoContrast, 0.4, None)],
    [(TranslateY, 0.4, Some(3)), (Sharpness, 0.2, Some(6))],
    [(Brightness, 0.9, Some(6)), (Color, 0.2, Some(8))],
    [(Solarize, 0.5, Some(2)), (Invert, 0.0, None)],
    [(Equalize, 0.2, None), (AutoContrast, 0.6, None)],
    [(Equalize, 0.2, None), (Equalize, 0.6, None)],
    [(Color, 0.9, Some(9)), (Equalize, 0.6, None)],
    [(AutoContrast, 0.8, None), (Solarize, 0.2, Some(8))],
    [(Brightness, 0.1, Some(3)), (Color, 0.7, Some(0))],
    [(Solarize, 0.4, Some(5)), (AutoContrast, 0.9, None)],
    [(TranslateY, 0.9, Some(9)), (TranslateY, 0.7, Some(9))],
    [(AutoContrast, 0.9, None), (Solarize, 0.8, Some(3))],
    [(Equalize, 0.8, None), (Invert, 0.1, None)],
    [(TranslateY, 0.7, Some(9)), (AutoContrast, 0.9, None)],
];

const SVHN: [[Step; 2]; 25] = [
    [(ShearX, 0.9, Some(4)), (Invert, 0.2, None)],
    [(ShearY, 0.9, Some(8)), (Invert, 0.7, None)],
    [(Equalize, 0.6, None), (Solarize, 0.6, Some(6))],
    [(Invert, 0.9, None), (Equalize, 0.6, None)],
    [(Equalize, 0.6, None), (Rotate, 0.9, Some(3))],
    [(ShearX, 0.9, Some(4)), (AutoContrast, 0.8, None)],
    [(ShearY, 0.9, Some(8)), (Invert, 0.4, None)],
    [(ShearY, 0.9, Some(5)), (Solarize, 0.2, Some(6))],
    [(Invert, 0.9, None), (AutoContrast, 0.8, None)],
    [(Equalize, 0.6, None), (Rotate, 0.9, Some(3))],
    [(ShearX, 0.9, Some(4)), (Solarize, 0.3, Some(3))],
    [(ShearY, 0.8, Some(8)), (Invert, 0.7, None)],
    [(Equalize, 0.9, None), (TranslateY, 0.6, Some(6))],
    [(Invert, 0.9, None), (Equalize, 0.6, None)],
    [(Contrast, 0.3, Some(3)), (Rotate, 0.8, Some(4))],
    [(Invert, 0.8, None), (TranslateY, 0.0, Some(2))],
    [(ShearY, 0.7, Some(6)), (Solarize, 0.4, Some(8))],
    [(Invert, 0.6, None), (Rotate, 0.8, Some(4))],
    [(ShearY, 0.3, Some(7)), (TranslateX, 0.9, Some(3))],
    [(ShearX, 0.1, Some(6)), (Invert, 0.6, None)],
    [(Solarize, 0.7, Some(2)), (TranslateY, 0.6, Some(7))],
    [(ShearY, 0.8, Some(4)), (Invert, 0.8, None)],
    [(ShearX, 0.7, Some(9)), (TranslateY, 0.8, Some(3))],
    [(ShearY, 0.8, Some(5)), (AutoContrast, 0.7, None)],
    [(ShearX, 0.7, Some(2)), (Invert, 0.1, None)],
];
