//! Batched image preprocessing on the device: augmentation, evaluation crops and normalisation.
//!
//! Every transform is a crop rectangle per image, resampled bilinearly to the network's input
//! size and optionally mirrored. The host draws the rectangles and turns them into a gather plan
//! (four source indices and weights per output pixel); the device does the rest in one gather, a
//! weighted sum and the normalisation, so the host never touches float pixels:
//!
//! - **random-resized crop** (ImageNet-style training; Szegedy et al. 2015, as in torchvision):
//!   a rectangle of 10–100 % of the image's area with aspect ratio in [3/4, 4/3] (log-uniform),
//!   up to ten draws, else the whole image; then a horizontal flip with probability ½;
//! - **pad-and-crop** (32 px training): a random 32 × 32 window of the image padded by 4 black
//!   pixels on each side, then the flip;
//! - **evaluation**: the centre `size × size` crop when the stored image is at least that big
//!   (an image stored with shorter side 256 → its centre 224 px is the paper's "resize to 256,
//!   centre-crop 224"), else the whole image resized.
//!
//! Images of a batch may differ in size (an ImageFolder cache keeps aspect ratios): each crop is
//! a rectangle of its own image.
//!
//! Sampling follows `align_corners = false` conventions: output pixel `o` of a crop of length `L`
//! starting at `s` reads source coordinate `s + (o + ½)·L/size − ½`; coordinates inside the
//! image's extent are clamped to its edge pixels, coordinates in the padding read black.

use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::data::images::ImageSet;
use crate::error::{Result, invalid_setting};
use crate::rng::SplitMix64;

/// Per-channel mean of ImageNet training images, in [0, 1] units (RGB).
pub const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
/// Per-channel standard deviation of ImageNet training images, in [0, 1] units (RGB).
pub const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];
/// Per-channel mean of CIFAR-10 training images, in [0, 1] units (RGB).
pub const CIFAR10_MEAN: [f64; 3] = [0.4914, 0.4822, 0.4465];
/// Per-channel standard deviation of CIFAR-10 training images, in [0, 1] units (RGB).
pub const CIFAR10_STD: [f64; 3] = [0.2470, 0.2435, 0.2616];

/// Training-time augmentation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Augmentation {
    /// Random-resized crop and flip (ImageNet-style data).
    RandomResizedCrop {
        /// Smallest crop area, as a fraction of the image. Default 0.1.
        #[serde(default = "defaults::min_area")]
        min_area: f64,
        /// Largest crop area, as a fraction of the image. Default 1.
        #[serde(default = "defaults::max_area")]
        max_area: f64,
        /// Smallest aspect ratio (width / height). Default 3/4.
        #[serde(default = "defaults::min_aspect")]
        min_aspect: f64,
        /// Largest aspect ratio (width / height). Default 4/3.
        #[serde(default = "defaults::max_aspect")]
        max_aspect: f64,
        /// Mirror half of the images horizontally. Default true.
        #[serde(default = "defaults::flip")]
        flip: bool,
    },
    /// Zero-pad by `pad` pixels, take a random window of the input size, flip (32 px data).
    PadCrop {
        /// Padding in pixels on each side. Default 4.
        #[serde(default = "defaults::pad")]
        pad: usize,
        /// Mirror half of the images horizontally. Default true.
        #[serde(default = "defaults::flip")]
        flip: bool,
    },
    /// No augmentation: the evaluation crop.
    None,
}

mod defaults {
    pub fn min_area() -> f64 {
        0.1
    }
    pub fn max_area() -> f64 {
        1.0
    }
    pub fn min_aspect() -> f64 {
        0.75
    }
    pub fn max_aspect() -> f64 {
        4.0 / 3.0
    }
    pub fn flip() -> bool {
        true
    }
    pub fn pad() -> usize {
        4
    }
}

impl Augmentation {
    /// The paper's augmentation for images of `pixels` on a side: random-resized crop and flip
    /// from 64 px up, pad-4 crop and flip below (the same threshold as the network's stem).
    pub fn for_image_size(pixels: usize) -> Self {
        if pixels >= 64 {
            Augmentation::RandomResizedCrop {
                min_area: defaults::min_area(),
                max_area: defaults::max_area(),
                min_aspect: defaults::min_aspect(),
                max_aspect: defaults::max_aspect(),
                flip: true,
            }
        } else {
            Augmentation::PadCrop { pad: 4, flip: true }
        }
    }

    /// Refuses empty or inverted ranges.
    pub fn validate(&self) -> Result<()> {
        if let Augmentation::RandomResizedCrop {
            min_area,
            max_area,
            min_aspect,
            max_aspect,
            ..
        } = *self
        {
            if !(min_area > 0.0 && min_area <= max_area && max_area <= 1.0) {
                return invalid_setting(
                    "augmentation area",
                    format!("[{min_area}, {max_area}]"),
                    "0 < min_area ≤ max_area ≤ 1",
                );
            }
            if !(min_aspect > 0.0 && min_aspect <= max_aspect && max_aspect.is_finite()) {
                return invalid_setting(
                    "augmentation aspect",
                    format!("[{min_aspect}, {max_aspect}]"),
                    "0 < min_aspect ≤ max_aspect",
                );
            }
        }
        Ok(())
    }
}

/// Per-channel normalisation `(x − mean) / std` of pixels in [0, 1].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Normalization {
    /// [`IMAGENET_MEAN`], [`IMAGENET_STD`].
    Imagenet,
    /// [`CIFAR10_MEAN`], [`CIFAR10_STD`].
    Cifar10,
    /// Mean and standard deviation of the training images, computed once.
    Dataset,
    /// Given values, one per channel.
    Custom {
        /// Means, in [0, 1] units.
        mean: Vec<f64>,
        /// Standard deviations, in [0, 1] units, each > 0.
        std: Vec<f64>,
    },
}

impl Normalization {
    /// The explicit mean and standard deviation for images like `set` ([`Normalization::Dataset`]
    /// measures them on `set`).
    pub fn resolve(&self, set: &ImageSet) -> Result<ChannelStats> {
        let c = set.channels;
        let named = |mean: [f64; 3], std: [f64; 3]| -> Result<ChannelStats> {
            if c == 3 {
                Ok(ChannelStats {
                    mean: mean.to_vec(),
                    std: std.to_vec(),
                })
            } else {
                invalid_setting(
                    "normalization",
                    format!("{self:?}"),
                    format!("named RGB constants need 3 channels, the images have {c}; use `dataset`"),
                )
            }
        };
        match self {
            Normalization::Imagenet => named(IMAGENET_MEAN, IMAGENET_STD),
            Normalization::Cifar10 => named(CIFAR10_MEAN, CIFAR10_STD),
            Normalization::Dataset => {
                let (mut sum, mut sq) = (vec![0f64; c], vec![0f64; c]);
                for pixel in set.pixels.chunks_exact(c) {
                    for (ch, &v) in pixel.iter().enumerate() {
                        let v = f64::from(v) / 255.0;
                        sum[ch] += v;
                        sq[ch] += v * v;
                    }
                }
                let n = (set.pixels.len() / c).max(1) as f64;
                let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
                let std: Vec<f64> = sq
                    .iter()
                    .zip(&mean)
                    .map(|(s, m)| (s / n - m * m).max(0.0).sqrt().max(1e-3))
                    .collect();
                Ok(ChannelStats { mean, std })
            }
            Normalization::Custom { mean, std } => {
                if mean.len() != c || std.len() != c {
                    return invalid_setting(
                        "normalization",
                        format!("{} means, {} stds", mean.len(), std.len()),
                        format!("one of each per channel ({c})"),
                    );
                }
                if std.iter().any(|s| !(s.is_finite() && *s > 0.0)) || mean.iter().any(|m| !m.is_finite()) {
                    return invalid_setting("normalization", format!("{std:?}"), "finite means and stds > 0");
                }
                Ok(ChannelStats {
                    mean: mean.clone(),
                    std: std.clone(),
                })
            }
        }
    }
}

/// Resolved per-channel normalisation constants, in [0, 1] pixel units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelStats {
    /// Mean per channel.
    pub mean: Vec<f64>,
    /// Standard deviation per channel (> 0).
    pub std: Vec<f64>,
}

/// A crop rectangle in source pixels and whether to mirror it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Crop {
    /// Top edge (may be negative inside padding).
    pub top: f64,
    /// Left edge.
    pub left: f64,
    /// Height.
    pub height: f64,
    /// Width.
    pub width: f64,
    /// Mirror horizontally.
    pub flip: bool,
}

/// The evaluation crop of an `h × w` image for a `size × size` input.
pub fn eval_crop(h: usize, w: usize, size: usize) -> Crop {
    let (hf, wf, s) = (h as f64, w as f64, size as f64);
    if h >= size && w >= size {
        Crop {
            top: ((h - size) / 2) as f64,
            left: ((w - size) / 2) as f64,
            height: s,
            width: s,
            flip: false,
        }
    } else {
        Crop {
            top: 0.0,
            left: 0.0,
            height: hf,
            width: wf,
            flip: false,
        }
    }
}

/// A random training crop of an `h × w` image for a `size × size` input.
pub fn train_crop(augmentation: &Augmentation, h: usize, w: usize, size: usize, rng: &mut SplitMix64) -> Crop {
    match *augmentation {
        Augmentation::None => eval_crop(h, w, size),
        Augmentation::PadCrop { pad, flip } => {
            // The window slides over the padded image; when the image is not `size` on a side it
            // is first taken whole (scaled), as torchvision's RandomCrop would refuse it.
            let (hf, wf) = (h as f64, w as f64);
            let (ch, cw) = if h >= size && w >= size {
                (size as f64, size as f64)
            } else {
                (hf, wf)
            };
            let span_y = (hf - ch) as usize + 2 * pad;
            let span_x = (wf - cw) as usize + 2 * pad;
            let dy = (rng.next_u64() % (span_y as u64 + 1)) as f64;
            let dx = (rng.next_u64() % (span_x as u64 + 1)) as f64;
            Crop {
                top: dy - pad as f64,
                left: dx - pad as f64,
                height: ch,
                width: cw,
                flip: flip && rng.uniform() < 0.5,
            }
        }
        Augmentation::RandomResizedCrop {
            min_area,
            max_area,
            min_aspect,
            max_aspect,
            flip,
        } => {
            let (hf, wf) = (h as f64, w as f64);
            let area = hf * wf;
            let (log_lo, log_hi) = (min_aspect.ln(), max_aspect.ln());
            let mut crop = None;
            for _ in 0..10 {
                let target = area * (min_area + (max_area - min_area) * rng.uniform());
                let aspect = (log_lo + (log_hi - log_lo) * rng.uniform()).exp();
                let cw = (target * aspect).sqrt().round();
                let ch = (target / aspect).sqrt().round();
                if cw >= 1.0 && ch >= 1.0 && cw <= wf && ch <= hf {
                    let top = (rng.next_u64() % ((hf - ch) as u64 + 1)) as f64;
                    let left = (rng.next_u64() % ((wf - cw) as u64 + 1)) as f64;
                    crop = Some((top, left, ch, cw));
                    break;
                }
            }
            // Fallback as torchvision: the whole image, cut to the aspect range.
            let (top, left, ch, cw) = crop.unwrap_or_else(|| {
                let ratio = wf / hf;
                let (ch, cw) = if ratio < min_aspect {
                    ((wf / min_aspect).round(), wf)
                } else if ratio > max_aspect {
                    (hf, (hf * max_aspect).round())
                } else {
                    (hf, wf)
                };
                (((hf - ch) / 2.0).floor(), ((wf - cw) / 2.0).floor(), ch, cw)
            });
            Crop {
                top,
                left,
                height: ch,
                width: cw,
                flip: flip && rng.uniform() < 0.5,
            }
        }
    }
}

/// Two bilinear taps along one axis: (index, weight) pairs.
type Taps = [(usize, f32); 2];

/// The [`Taps`] of output position `o`, weight 0 for padding.
fn taps(start: f64, length: f64, out: usize, o: usize, extent: usize) -> Taps {
    let coord = start + (o as f64 + 0.5) * length / out as f64 - 0.5;
    let max = extent as f64 - 1.0;
    if coord < -0.5 || coord > max + 0.5 {
        return [(0, 0.0), (0, 0.0)];
    }
    let c = coord.clamp(0.0, max);
    let lo = c.floor();
    let frac = c - lo;
    let lo = lo as usize;
    let hi = (lo + 1).min(extent - 1);
    [(lo, (1.0 - frac) as f32), (hi, frac as f32)]
}

/// The bilinear taps of every output row and column of `crop` of an `h × w` image resampled to
/// `size × size`, columns mirrored when the crop flips.
fn crop_taps(crop: &Crop, size: usize, [h, w]: [usize; 2]) -> (Vec<Taps>, Vec<Taps>) {
    let ys = (0..size).map(|o| taps(crop.top, crop.height, size, o, h)).collect();
    let xs = (0..size)
        .map(|o| {
            let o = if crop.flip { size - 1 - o } else { o };
            taps(crop.left, crop.width, size, o, w)
        })
        .collect();
    (ys, xs)
}

/// The identity crop of a `size × size` image: [`batch`] reads its pixels exactly.
pub fn whole(size: usize) -> Crop {
    Crop {
        top: 0.0,
        left: 0.0,
        height: size as f64,
        width: size as f64,
        flip: false,
    }
}

/// The crop of image `i` of `set` resampled to `size × size` on the host and rounded to `uint8`:
/// what [`batch`] computes on the device before normalising, for the augmentations that act on
/// the cropped image's values (AutoAugment).
///
/// # Shapes
/// - output: `[size, size, channels]`
pub fn crop_pixels(set: &ImageSet, i: usize, crop: &Crop, size: usize) -> Vec<u8> {
    let [h, w] = set.size(i);
    let (c, image) = (set.channels, set.image(i));
    let (ys, xs) = crop_taps(crop, size, [h, w]);
    let mut out = Vec::with_capacity(size * size * c);
    for y in &ys {
        for x in &xs {
            for ch in 0..c {
                let mut v = 0.0f32;
                for (ty, tx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    let ((iy, wy), (ix, wx)) = (y[ty], x[tx]);
                    v += f32::from(image[(iy * w + ix) * c + ch]) * (wy * wx);
                }
                out.push(v.round().clamp(0.0, 255.0) as u8);
            }
        }
    }
    out
}

/// Every image of `set` as a network with `size × size` inputs sees it (its evaluation crop,
/// rounded to `uint8`): one size for all, to corrupt or store.
///
/// # Shapes
/// - output: `[set.len(), size, size, channels]`
pub fn evaluation_crops(set: &ImageSet, size: usize) -> ImageSet {
    let pixels = (0..set.len())
        .flat_map(|i| {
            let [h, w] = set.size(i);
            crop_pixels(set, i, &eval_crop(h, w, size), size)
        })
        .collect();
    ImageSet::uniform(
        [size, size],
        set.channels,
        pixels,
        set.labels.clone(),
        set.classes.clone(),
        set.source.clone(),
    )
}

/// Preprocesses images of `set` into a normalised batch on `device`; `crops[j]` is a rectangle
/// of image `indices[j]` (images may differ in size).
///
/// # Shapes
/// - output: `[indices.len(), channels, size, size]`
pub fn batch(
    set: &ImageSet,
    indices: &[usize],
    crops: &[Crop],
    size: usize,
    normalization: &ChannelStats,
    device: &Device,
) -> Tensor<4> {
    let (b, c) = (indices.len(), set.channels);
    let out = size * size;
    let values: usize = indices.iter().map(|&i| set.image(i).len()).sum();
    // The batch's images one after the other, `[pixels, c]`; each tap indexes a pixel of it.
    let mut pixels = Vec::with_capacity(values);
    let mut index = Vec::with_capacity(b * 4 * out);
    let mut weight = Vec::with_capacity(b * 4 * out);
    for (&i, crop) in indices.iter().zip(crops) {
        let [h, w] = set.size(i);
        let first = (pixels.len() / c) as i64;
        pixels.extend(set.image(i).iter().map(|&v| f32::from(v)));
        let (ys, xs) = crop_taps(crop, size, [h, w]);
        // Tap-major: [4, size·size] per image.
        for (ty, tx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            for y in &ys {
                for x in &xs {
                    let (iy, wy) = y[ty];
                    let (ix, wx) = x[tx];
                    index.push(first + (iy * w + ix) as i64);
                    weight.push(wy * wx);
                }
            }
        }
    }
    let count = pixels.len() / c;
    let source = Tensor::<2>::from_data(TensorData::new(pixels, [count, c]), device).transpose(); // [c, pixels]
    let index = Tensor::<1, Int>::from_data(TensorData::new(index, [b * 4 * out]), device)
        .unsqueeze_dim::<2>(0)
        .expand([c, b * 4 * out]);
    let weight = Tensor::<3>::from_data(TensorData::new(weight, [b, 4, out]), device).unsqueeze_dim::<4>(0);
    let sampled = source.gather(1, index).reshape([c, b, 4, out]);
    let images = (sampled * weight)
        .sum_dim(2)
        .reshape([c, b, size, size])
        .swap_dims(0, 1);
    let (mean, std) = (&normalization.mean, &normalization.std);
    let scale: Vec<f32> = std.iter().map(|s| (1.0 / (255.0 * s)) as f32).collect();
    let shift: Vec<f32> = mean.iter().zip(std).map(|(m, s)| (-m / s) as f32).collect();
    let scale = Tensor::<1>::from_data(TensorData::new(scale, [c]), device).reshape([1, c, 1, 1]);
    let shift = Tensor::<1>::from_data(TensorData::new(shift, [c]), device).reshape([1, c, 1, 1]);
    images * scale + shift
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(h: usize, w: usize) -> ImageSet {
        ImageSet::uniform(
            [h, w],
            1,
            (0..h * w).map(|v| v as u8).collect(),
            vec![0],
            vec!["a".into()],
            "test".into(),
        )
    }

    fn run(s: &ImageSet, crop: Crop, size: usize) -> Vec<f32> {
        let identity = ChannelStats {
            mean: vec![0.0],
            std: vec![1.0 / 255.0],
        };
        batch(s, &[0], &[crop], size, &identity, &Device::flex())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    }

    #[test]
    fn eval_crop_is_exact_centre() {
        let s = set(6, 6);
        let got = run(&s, eval_crop(6, 6, 4), 4);
        let want: Vec<f32> = (1..5).flat_map(|y| (1..5).map(move |x| (y * 6 + x) as f32)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn padding_reads_black_and_flip_mirrors() {
        let s = set(4, 4);
        let crop = Crop {
            top: -1.0,
            left: -1.0,
            height: 4.0,
            width: 4.0,
            flip: false,
        };
        let got = run(&s, crop, 4);
        assert_eq!(&got[..4], &[0.0, 0.0, 0.0, 0.0]);
        assert_eq!(&got[4..8], &[0.0, 0.0, 1.0, 2.0]);
        let flipped = run(&s, Crop { flip: true, ..crop }, 4);
        assert_eq!(&flipped[4..8], &[2.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn upscaling_interpolates_between_pixels() {
        let s = set(2, 2);
        let got = run(&s, eval_crop(2, 2, 4), 4);
        // align_corners=false: 0, 0.25, 0.75, 1 of the way along each axis.
        assert!((got[0] - 0.0).abs() < 1e-6);
        assert!((got[1] - 0.25).abs() < 1e-6);
        assert!((got[2] - 0.75).abs() < 1e-6);
        assert!((got[15] - 3.0).abs() < 1e-6);
    }

    #[test]
    fn images_of_different_sizes_batch_like_each_alone() {
        let sizes = vec![[4, 6], [5, 3], [4, 4]];
        let pixels: Vec<u8> = sizes
            .iter()
            .enumerate()
            .flat_map(|(k, [h, w])| (0..h * w).map(move |v| (v * 7 + k * 50) as u8))
            .collect();
        let s = ImageSet::new(sizes.clone(), 1, pixels, vec![0; 3], vec!["a".into()], "test".into());
        s.validate().unwrap();
        let identity = ChannelStats {
            mean: vec![0.0],
            std: vec![1.0 / 255.0],
        };
        let crops: Vec<Crop> = sizes
            .iter()
            .enumerate()
            .map(|(k, &[h, w])| Crop {
                top: 0.5 * k as f64 - 1.0,
                left: 0.0,
                height: h as f64,
                width: w as f64 - 1.0,
                flip: k == 1,
            })
            .collect();
        let order = [2, 0, 1];
        let together = batch(
            &s,
            &order,
            &[crops[2], crops[0], crops[1]],
            3,
            &identity,
            &Device::flex(),
        )
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
        for (j, &i) in order.iter().enumerate() {
            let alone = batch(&s, &[i], &[crops[i]], 3, &identity, &Device::flex())
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            assert_eq!(&together[j * 9..(j + 1) * 9], &alone[..], "image {i}");
        }
    }

    #[test]
    fn random_crops_stay_in_range() {
        let mut rng = SplitMix64::new(3);
        let aug = Augmentation::for_image_size(224);
        for _ in 0..500 {
            let c = train_crop(&aug, 256, 200, 224, &mut rng);
            assert!(c.top >= 0.0 && c.left >= 0.0);
            assert!(c.top + c.height <= 256.0 && c.left + c.width <= 200.0);
            let area = c.height * c.width / (256.0 * 200.0);
            assert!((0.09..=1.0).contains(&area), "{area}");
        }
        let pad = Augmentation::for_image_size(32);
        for _ in 0..200 {
            let c = train_crop(&pad, 32, 32, 32, &mut rng);
            assert!((-4.0..=4.0).contains(&c.top) && (-4.0..=4.0).contains(&c.left));
        }
    }
}
