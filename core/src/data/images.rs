//! A labelled set of same-sized 8-bit images held in memory: what every dataset reader produces
//! and the training loop consumes.

use crate::error::{Error, Result};
use crate::features::Layer;

/// Images `[count, height, width, channels]` (row-major, channels last) with labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSet {
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// Channels per pixel (3 for RGB, 1 for gray).
    pub channels: usize,
    /// Pixel values, `[count, height, width, channels]`.
    pub pixels: Vec<u8>,
    /// Class index of each image, in `0..classes.len()`.
    pub labels: Vec<usize>,
    /// Class names, in label order.
    pub classes: Vec<String>,
    /// Where the images came from, for messages and manifests.
    pub source: String,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values per image.
    pub fn image_len(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// The pixels of image `i`, `[height, width, channels]`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Images per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for &l in &self.labels {
            counts[l] += 1;
        }
        counts
    }

    /// The images at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> ImageSet {
        let mut pixels = Vec::with_capacity(indices.len() * self.image_len());
        for &i in indices {
            pixels.extend_from_slice(self.image(i));
        }
        ImageSet {
            pixels,
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            classes: self.classes.clone(),
            source: self.source.clone(),
            ..*self
        }
    }

    /// Gray images repeated into three channels (RGB sets are returned unchanged).
    pub fn into_rgb(self) -> ImageSet {
        if self.channels != 1 {
            return self;
        }
        let pixels = self.pixels.iter().flat_map(|&v| [v, v, v]).collect();
        ImageSet {
            channels: 3,
            pixels,
            ..self
        }
    }

    /// The images with `channels` channels, as a network taking that many reads them: unchanged,
    /// or gray repeated into RGB. Any other conversion is refused.
    pub fn with_channels(self, channels: usize) -> Result<ImageSet> {
        match (self.channels, channels) {
            (a, b) if a == b => Ok(self),
            (1, 3) => Ok(self.into_rgb()),
            (a, b) => Err(Error::invalid_setting(
                "data",
                &self.source,
                format!("images with {b} channels for this network (they have {a})"),
            )),
        }
    }

    /// Each image average-pooled over `factor × factor` blocks (all channels kept), scaled to
    /// `[0, 1]`: a simple fixed feature map of raw pixels, e.g. for probe tests and benchmarks.
    /// Each value is `Σ block / (factor² · 255)` computed in `f64` and rounded to `f32`.
    ///
    /// # Shapes
    /// - returns `[count, (height / factor) · (width / factor) · channels]`
    pub fn pooled_features(&self, factor: usize) -> Result<Layer> {
        if factor == 0 || !self.height.is_multiple_of(factor) || !self.width.is_multiple_of(factor) {
            return crate::error::invalid_setting(
                "pooling factor",
                factor,
                format!("a divisor of the image size {}×{}", self.height, self.width),
            );
        }
        let (h, w, c) = (self.height / factor, self.width / factor, self.channels);
        let scale = (factor * factor * 255) as f64;
        let mut data = Vec::with_capacity(self.len() * h * w * c);
        for i in 0..self.len() {
            let img = self.image(i);
            for r in 0..h {
                for col in 0..w {
                    for ch in 0..c {
                        let mut sum = 0.0;
                        for y in r * factor..(r + 1) * factor {
                            for x in col * factor..(col + 1) * factor {
                                sum += f64::from(img[(y * self.width + x) * c + ch]);
                            }
                        }
                        data.push((sum / scale) as f32);
                    }
                }
            }
        }
        Ok(Layer::from_f32(
            format!("pooled{factor}x{factor}"),
            self.len(),
            h * w * c,
            data,
        ))
    }

    /// Checks that sizes agree, labels are in range and every class has an image.
    pub fn validate(&self) -> Result<()> {
        let format = |reason: String| {
            Err(Error::Format {
                path: self.source.clone().into(),
                reason,
            })
        };
        if self.is_empty() {
            return format("the dataset has no images".into());
        }
        if self.height == 0 || self.width == 0 || self.channels == 0 {
            return format(format!(
                "images of {}×{}×{} hold no pixels",
                self.height, self.width, self.channels
            ));
        }
        if self.pixels.len() != self.len() * self.image_len() {
            return format(format!(
                "{} pixel values for {} images of {}×{}×{}",
                self.pixels.len(),
                self.len(),
                self.height,
                self.width,
                self.channels
            ));
        }
        if let Some((i, &l)) = self.labels.iter().enumerate().find(|&(_, &l)| l >= self.classes.len()) {
            return format(format!(
                "image {i} has label {l} but there are {} classes",
                self.classes.len()
            ));
        }
        if let Some(k) = self.class_counts().iter().position(|&c| c == 0) {
            return format(format!("class {k} (`{}`) has no images", self.classes[k]));
        }
        Ok(())
    }
}
