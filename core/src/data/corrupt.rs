//! Common corruptions at five severities, ImageNet-C style (Hendrycks & Dietterich 2019), for the
//! robustness column of the paper's Table C.2: the source test images as the network sees them
//! (the evaluation crop), corrupted by each of eight of ImageNet-C's fifteen corruptions with its
//! parameters: Gaussian, shot and impulse noise; Gaussian blur; brightness; contrast; pixelation;
//! JPEG compression.
//!
//! Each follows the reference code (the `imagecorruptions` package): the image scaled to
//! `[0, 1]`, corrupted in `f64`, clipped, scaled back to `[0, 255]` and truncated to `uint8`.
//! Gaussian blur is scipy's `gaussian_filter` (edge pixels repeated, radius `⌊4σ + ½⌋`) as
//! scikit-image calls it; brightness adds to the value channel of scikit-image's HSV; pixelation
//! is PIL's box downscale (8-bit fixed point, horizontal pass first) then nearest upscale; JPEG
//! is encoded as PIL does by default (libjpeg's tables at the reference's quality, 4:2:0 chroma)
//! by the `jpeg-encoder` crate, close to PIL's libjpeg but not bit-identical. Noise draws from a stream of the seed per image, so a corrupted copy is the same
//! every time. The parameters are ImageNet-C's (for 224-pixel images) whatever the image size:
//! on small images (CIFAR) blur and pixelation are harsher than CIFAR-10-C's.

use std::str::FromStr;

use rand_distr::{Distribution, Poisson};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::ImageSet;
use crate::error::{Error, Result, invalid_setting};
use crate::rng::{SplitMix64, stream};

/// A corruption of ImageNet-C.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Corruption {
    /// `x + N(0, c²)`.
    GaussianNoise,
    /// `Poisson(c·x) / c`.
    ShotNoise,
    /// Salt and pepper: each value set to 0 or 1 (equally likely) with probability `c`.
    ImpulseNoise,
    /// Gaussian blur with standard deviation `c` pixels.
    GaussianBlur,
    /// `+c` on the HSV value channel.
    Brightness,
    /// `(x − mean)·c + mean`, the mean per channel over the image.
    Contrast,
    /// Box downscale by `c`, nearest upscale back.
    Pixelate,
    /// JPEG at quality `c`.
    JpegCompression,
}

/// The seed a study corrupts its test images with, the same for every network.
pub const STUDY_SEED: u64 = 19;

/// The severities, 1 (mildest) to 5.
pub const SEVERITIES: std::ops::RangeInclusive<usize> = 1..=5;

impl Corruption {
    /// Every corruption, in ImageNet-C's order (noise, blur, weather, digital).
    pub const ALL: [Corruption; 8] = [
        Corruption::GaussianNoise,
        Corruption::ShotNoise,
        Corruption::ImpulseNoise,
        Corruption::GaussianBlur,
        Corruption::Brightness,
        Corruption::Contrast,
        Corruption::Pixelate,
        Corruption::JpegCompression,
    ];

    /// The name in study files and results (`gaussian-noise`).
    pub fn name(self) -> &'static str {
        match self {
            Corruption::GaussianNoise => "gaussian-noise",
            Corruption::ShotNoise => "shot-noise",
            Corruption::ImpulseNoise => "impulse-noise",
            Corruption::GaussianBlur => "gaussian-blur",
            Corruption::Brightness => "brightness",
            Corruption::Contrast => "contrast",
            Corruption::Pixelate => "pixelate",
            Corruption::JpegCompression => "jpeg-compression",
        }
    }

    /// ImageNet-C's parameter `c` at `severity` (1 to 5).
    pub fn parameter(self, severity: usize) -> Result<f64> {
        if !SEVERITIES.contains(&severity) {
            return invalid_setting("severity", severity, "1 to 5");
        }
        let c: [f64; 5] = match self {
            Corruption::GaussianNoise => [0.08, 0.12, 0.18, 0.26, 0.38],
            Corruption::ShotNoise => [60.0, 25.0, 12.0, 5.0, 3.0],
            Corruption::ImpulseNoise => [0.03, 0.06, 0.09, 0.17, 0.27],
            Corruption::GaussianBlur => [1.0, 2.0, 3.0, 4.0, 6.0],
            Corruption::Brightness => [0.1, 0.2, 0.3, 0.4, 0.5],
            Corruption::Contrast => [0.4, 0.3, 0.2, 0.1, 0.05],
            Corruption::Pixelate => [0.6, 0.5, 0.4, 0.3, 0.25],
            Corruption::JpegCompression => [25.0, 18.0, 15.0, 10.0, 7.0],
        };
        Ok(c[severity - 1])
    }

    /// `image` (`[h, w, channels]` row-major, 1 or 3 channels) corrupted at `severity`; noise
    /// draws from `seed`.
    ///
    /// # Shapes
    /// - `image`, output: `[h, w, channels]`
    pub fn apply(
        self,
        image: &[u8],
        [h, w]: [usize; 2],
        channels: usize,
        severity: usize,
        seed: u64,
    ) -> Result<Vec<u8>> {
        let c = self.parameter(severity)?;
        if image.len() != h * w * channels || !(channels == 1 || channels == 3) || h == 0 || w == 0 {
            return Err(Error::Degenerate {
                what: format!("corruption {}", self.name()),
                reason: format!(
                    "{} values are not an image of {h} × {w} pixels with 1 or 3 channels",
                    image.len()
                ),
            });
        }
        let x: Vec<f64> = image.iter().map(|&v| f64::from(v) / 255.0).collect();
        let mut rng = SplitMix64::new(seed);
        let out = match self {
            Corruption::GaussianNoise => x.iter().map(|v| v + c * rng.normal()).collect(),
            Corruption::ShotNoise => x
                .iter()
                .map(|&v| {
                    let lambda = v * c;
                    let draws = if lambda > 0.0 {
                        Poisson::new(lambda).expect("a positive rate").sample(&mut rng)
                    } else {
                        0.0
                    };
                    draws / c
                })
                .collect(),
            Corruption::ImpulseNoise => x
                .iter()
                .map(|&v| {
                    let (flipped, salted) = (rng.uniform() <= c, rng.uniform() <= 0.5);
                    match (flipped, salted) {
                        (true, true) => 1.0,
                        (true, false) => 0.0,
                        _ => v,
                    }
                })
                .collect(),
            Corruption::GaussianBlur => gaussian_blur(&x, [h, w], channels, c),
            Corruption::Brightness => brightness(&x, channels, c),
            Corruption::Contrast => {
                let mut means = vec![0.0; channels];
                for (i, v) in x.iter().enumerate() {
                    means[i % channels] += v / (h * w) as f64;
                }
                x.iter()
                    .enumerate()
                    .map(|(i, v)| (v - means[i % channels]) * c + means[i % channels])
                    .collect()
            }
            Corruption::Pixelate => return Ok(pixelate(image, [h, w], channels, c)),
            Corruption::JpegCompression => return jpeg(image, [h, w], channels, c as u8),
        };
        Ok(out.into_iter().map(to_u8).collect())
    }
}

/// `clip(v, 0, 1) · 255`, truncated as numpy's `uint8` conversion does.
fn to_u8(v: f64) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0) as u8
}

/// scipy's `gaussian_filter` over the two spatial axes (mode `nearest`, truncate 4).
fn gaussian_blur(x: &[f64], [h, w]: [usize; 2], channels: usize, sigma: f64) -> Vec<f64> {
    let radius = (4.0 * sigma + 0.5) as isize;
    let weights: Vec<f64> = (-radius..=radius)
        .map(|t| (-0.5 * (t * t) as f64 / (sigma * sigma)).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let weights: Vec<f64> = weights.iter().map(|k| k / total).collect();
    let along = |src: &[f64], len: usize, at: &dyn Fn(usize, usize) -> usize, lines: usize| {
        let mut out = vec![0.0; src.len()];
        for line in 0..lines {
            for i in 0..len {
                let mut v = 0.0;
                for (k, weight) in weights.iter().enumerate() {
                    let j = (i as isize + k as isize - radius).clamp(0, len as isize - 1) as usize;
                    v += weight * src[at(line, j)];
                }
                out[at(line, i)] = v;
            }
        }
        out
    };
    // Rows (axis 0) first, then columns, as scipy goes through the axes in order; a "line" is
    // one column × channel, then one row × channel.
    let by_rows = along(
        x,
        h,
        &|line, y| (y * w + line / channels) * channels + line % channels,
        w * channels,
    );
    along(
        &by_rows,
        w,
        &|line, xx| ((line / channels) * w + xx) * channels + line % channels,
        h * channels,
    )
}

/// `+c` on scikit-image's HSV value channel (gray images: on the value itself).
fn brightness(x: &[f64], channels: usize, c: f64) -> Vec<f64> {
    if channels == 1 {
        return x.iter().map(|v| (v + c).clamp(0.0, 1.0)).collect();
    }
    x.chunks(3)
        .flat_map(|rgb| {
            let (h, s, v) = rgb_to_hsv(rgb[0], rgb[1], rgb[2]);
            hsv_to_rgb(h, s, (v + c).clamp(0.0, 1.0))
        })
        .collect()
}

/// scikit-image's `rgb2hsv` of one pixel (where several channels are the largest, blue wins
/// over green over red, as its successive assignments do).
fn rgb_to_hsv(r: f64, g: f64, b: f64) -> (f64, f64, f64) {
    let v = r.max(g).max(b);
    let delta = v - r.min(g).min(b);
    if delta == 0.0 {
        return (0.0, 0.0, v);
    }
    let h = if b == v {
        4.0 + (r - g) / delta
    } else if g == v {
        2.0 + (b - r) / delta
    } else {
        (g - b) / delta
    };
    ((h / 6.0).rem_euclid(1.0), delta / v, v)
}

/// scikit-image's `hsv2rgb` of one pixel.
fn hsv_to_rgb(h: f64, s: f64, v: f64) -> [f64; 3] {
    let hi = (h * 6.0).floor();
    let f = h * 6.0 - hi;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - f * s), v * (1.0 - (1.0 - f) * s));
    match (hi as i64).rem_euclid(6) {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

/// Bits of PIL's fixed-point resampling weights for 8-bit images.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// PIL's box-filter weights from `input` samples to `output`: for each output sample, its
/// first input sample and the fixed-point weights.
fn box_weights(input: usize, output: usize) -> Vec<(usize, Vec<i64>)> {
    let scale = input as f64 / output as f64;
    let filterscale = scale.max(1.0);
    let support = 0.5 * filterscale;
    (0..output)
        .map(|o| {
            let centre = (o as f64 + 0.5) * scale;
            let first = ((centre - support + 0.5) as isize).max(0) as usize;
            let last = ((centre + support + 0.5) as usize).min(input);
            let weights: Vec<f64> = (first..last)
                .map(|i| {
                    let t = (i as f64 - centre + 0.5) / filterscale;
                    if t > -0.5 && t <= 0.5 { 1.0 } else { 0.0 }
                })
                .collect();
            let total: f64 = weights.iter().sum();
            let fixed = weights
                .iter()
                .map(|k| {
                    let k = if total == 0.0 { 0.0 } else { k / total };
                    (k * f64::from(1u32 << PRECISION_BITS) + 0.5).floor() as i64
                })
                .collect();
            (first, fixed)
        })
        .collect()
}

/// One PIL resampling pass along rows (`horizontal`) or columns of an 8-bit image.
fn resample_pass(src: &[u8], [h, w]: [usize; 2], channels: usize, out_len: usize, horizontal: bool) -> Vec<u8> {
    let (input, lines) = if horizontal { (w, h) } else { (h, w) };
    let weights = box_weights(input, out_len);
    let (oh, ow) = if horizontal { (h, out_len) } else { (out_len, w) };
    let mut out = vec![0u8; oh * ow * channels];
    for line in 0..lines {
        for (o, (first, k)) in weights.iter().enumerate() {
            for ch in 0..channels {
                let mut acc: i64 = 1 << (PRECISION_BITS - 1);
                for (j, weight) in k.iter().enumerate() {
                    let i = first + j;
                    let (y, x) = if horizontal { (line, i) } else { (i, line) };
                    acc += i64::from(src[(y * w + x) * channels + ch]) * weight;
                }
                let (y, x) = if horizontal { (line, o) } else { (o, line) };
                out[(y * ow + x) * channels + ch] = (acc >> PRECISION_BITS).clamp(0, 255) as u8;
            }
        }
    }
    out
}

/// PIL's `resize((⌊w·c⌋, ⌊h·c⌋), BOX)` then `resize((w, h), NEAREST)`.
fn pixelate(image: &[u8], [h, w]: [usize; 2], channels: usize, c: f64) -> Vec<u8> {
    let (sh, sw) = (((h as f64 * c) as usize).max(1), ((w as f64 * c) as usize).max(1));
    let wide = resample_pass(image, [h, w], channels, sw, true);
    let small = resample_pass(&wide, [h, sw], channels, sh, false);
    // Nearest upscale as PIL's affine scaling steps through the source coordinates.
    let steps = |out: usize, input: usize| -> Vec<usize> {
        let a = input as f64 / out as f64;
        let mut at = a * 0.5;
        (0..out)
            .map(|_| {
                let i = (at as usize).min(input - 1);
                at += a;
                i
            })
            .collect()
    };
    let (ys, xs) = (steps(h, sh), steps(w, sw));
    let mut out = Vec::with_capacity(h * w * channels);
    for &y in &ys {
        for &x in &xs {
            out.extend_from_slice(&small[(y * sw + x) * channels..(y * sw + x + 1) * channels]);
        }
    }
    out
}

/// The image encoded as JPEG at `quality` and decoded again, as PIL's defaults do it: libjpeg's
/// quantisation tables at that quality, chroma averaged over 2 × 2 pixels (4:2:0).
fn jpeg(image: &[u8], [h, w]: [usize; 2], channels: usize, quality: u8) -> Result<Vec<u8>> {
    use jpeg_encoder::{ChromaSubsamplingMethod, ColorType, Encoder, SamplingFactor};
    let failed = |reason: String| Error::Degenerate {
        what: "corruption jpeg-compression".into(),
        reason,
    };
    let (width, height) = (
        u16::try_from(w).map_err(|_| failed(format!("{w} pixels are too wide for JPEG")))?,
        u16::try_from(h).map_err(|_| failed(format!("{h} pixels are too high for JPEG")))?,
    );
    let mut bytes = Vec::new();
    let mut encoder = Encoder::new(&mut bytes, quality);
    encoder.set_sampling_factor(SamplingFactor::R_4_2_0);
    encoder.set_chroma_subsampling_method(ChromaSubsamplingMethod::Average);
    let kind = if channels == 1 { ColorType::Luma } else { ColorType::Rgb };
    encoder
        .encode(image, width, height, kind)
        .map_err(|e| failed(e.to_string()))?;
    let decoded =
        image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg).map_err(|e| failed(e.to_string()))?;
    Ok(if channels == 1 {
        decoded.into_luma8().into_raw()
    } else {
        decoded.into_rgb8().into_raw()
    })
}

impl FromStr for Corruption {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Corruption::ALL
            .into_iter()
            .find(|c| c.name() == s.trim())
            .ok_or_else(|| {
                let names: Vec<&str> = Corruption::ALL.iter().map(|c| c.name()).collect();
                Error::invalid_setting("corruption", s, format!("one of {}", names.join(", ")))
            })
    }
}

impl std::fmt::Display for Corruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Every image of `set` (all of one size, e.g. evaluation crops) corrupted by `corruption` at
/// `severity`, in parallel; image `i` draws its noise from a stream of `seed` and `i`.
pub fn corrupt_set(set: &ImageSet, corruption: Corruption, severity: usize, seed: u64) -> Result<ImageSet> {
    let n = set.len();
    if n == 0 {
        return Ok(set.clone());
    }
    let [h, w] = set.size(0);
    if (0..n).any(|i| set.size(i) != [h, w]) {
        return Err(Error::Degenerate {
            what: format!("corruption {corruption}"),
            reason: "the images differ in size; corrupt their evaluation crops".into(),
        });
    }
    let images: Vec<Vec<u8>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let seed = stream(seed, 0x636f_7272 + corruption as u64 * 8 + severity as u64, i as u64);
            corruption.apply(set.image(i), [h, w], set.channels, severity, seed)
        })
        .collect::<Result<_>>()?;
    Ok(ImageSet::uniform(
        [h, w],
        set.channels,
        images.concat(),
        set.labels.clone(),
        set.classes.clone(),
        format!("{} ({corruption}, severity {severity})", set.source),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for c in Corruption::ALL {
            assert_eq!(c.name().parse::<Corruption>().unwrap(), c);
        }
        let message = "fog".parse::<Corruption>().unwrap_err().to_string();
        assert!(
            message.contains("gaussian-noise") && message.contains("fog"),
            "{message}"
        );
        assert!(Corruption::Contrast.parameter(0).is_err() && Corruption::Contrast.parameter(6).is_err());
    }

    #[test]
    fn hsv_round_trips() {
        for rgb in [
            [0.2, 0.5, 0.9],
            [1.0, 0.0, 0.0],
            [0.3, 0.3, 0.3],
            [0.9, 0.9, 0.1],
            [0.0, 0.0, 0.0],
        ] {
            let (h, s, v) = rgb_to_hsv(rgb[0], rgb[1], rgb[2]);
            let back = hsv_to_rgb(h, s, v);
            for (a, b) in rgb.iter().zip(back) {
                assert!((a - b).abs() < 1e-12, "{rgb:?} → {back:?}");
            }
        }
    }
}
