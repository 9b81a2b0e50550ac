//! A labelled set of 8-bit images held in memory: what every dataset reader produces and the
//! training loop consumes. Images may differ in size (an ImageFolder cache keeps each image's
//! aspect ratio); sets read from CIFAR, IDX or a generator are all one size.

use crate::error::{Error, Result};
use crate::features::Layer;

/// Images (row-major, channels last, one after the other) with their sizes and labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSet {
    /// Channels per pixel (3 for RGB, 1 for gray).
    pub channels: usize,
    /// Pixel values: image after image, each `[height, width, channels]`.
    pub pixels: Vec<u8>,
    /// Class index of each image, in `0..classes.len()`.
    pub labels: Vec<usize>,
    /// Class names, in label order.
    pub classes: Vec<String>,
    /// Where the images came from, for messages and manifests.
    pub source: String,
    /// `[height, width]` of each image.
    sizes: Vec<[usize; 2]>,
    /// Where each image starts in `pixels`.
    offsets: Vec<usize>,
}

impl ImageSet {
    /// A set of images of one size, `[count, height, width, channels]` in `pixels`. Call
    /// [`ImageSet::validate`] on data read from outside.
    pub fn uniform(
        [height, width]: [usize; 2],
        channels: usize,
        pixels: Vec<u8>,
        labels: Vec<usize>,
        classes: Vec<String>,
        source: String,
    ) -> ImageSet {
        let sizes = vec![[height, width]; labels.len()];
        ImageSet::new(sizes, channels, pixels, labels, classes, source)
    }

    /// A set of images of the given `[height, width]` each, stored one after the other in
    /// `pixels`. Call [`ImageSet::validate`] on data read from outside.
    pub fn new(
        sizes: Vec<[usize; 2]>,
        channels: usize,
        pixels: Vec<u8>,
        labels: Vec<usize>,
        classes: Vec<String>,
        source: String,
    ) -> ImageSet {
        let mut offsets = Vec::with_capacity(sizes.len());
        let mut at = 0usize;
        for &[h, w] in &sizes {
            offsets.push(at);
            at = at.saturating_add(h.saturating_mul(w).saturating_mul(channels));
        }
        ImageSet {
            channels,
            pixels,
            labels,
            classes,
            source,
            sizes,
            offsets,
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// `[height, width]` of image `i`.
    pub fn size(&self, i: usize) -> [usize; 2] {
        self.sizes[i]
    }

    /// `[height, width]` of every image.
    pub fn sizes(&self) -> &[[usize; 2]] {
        &self.sizes
    }

    /// The size every image has, or `None` when they differ (or there are none).
    pub fn uniform_size(&self) -> Option<[usize; 2]> {
        let first = *self.sizes.first()?;
        self.sizes.iter().all(|&s| s == first).then_some(first)
    }

    /// The shortest side of any image: the stored size of an ImageFolder cache (each image's
    /// shorter side), the side of square sets. 0 for an empty set.
    pub fn shorter_side(&self) -> usize {
        self.sizes.iter().map(|&[h, w]| h.min(w)).min().unwrap_or(0)
    }

    /// The pixels of image `i`, `[height, width, channels]`.
    pub fn image(&self, i: usize) -> &[u8] {
        let [h, w] = self.sizes[i];
        let start = self.offsets[i];
        &self.pixels[start..start + h * w * self.channels]
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
        let values = indices.iter().map(|&i| self.image(i).len()).sum();
        let mut pixels = Vec::with_capacity(values);
        for &i in indices {
            pixels.extend_from_slice(self.image(i));
        }
        ImageSet::new(
            indices.iter().map(|&i| self.sizes[i]).collect(),
            self.channels,
            pixels,
            indices.iter().map(|&i| self.labels[i]).collect(),
            self.classes.clone(),
            self.source.clone(),
        )
    }

    /// Gray images repeated into three channels (RGB sets are returned unchanged).
    pub fn into_rgb(self) -> ImageSet {
        if self.channels != 1 {
            return self;
        }
        let pixels = self.pixels.iter().flat_map(|&v| [v, v, v]).collect();
        ImageSet::new(self.sizes, 3, pixels, self.labels, self.classes, self.source)
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
        let Some([height, width]) = self.uniform_size() else {
            return crate::error::invalid_setting(
                "images",
                &self.source,
                "images of one size (pooled pixel features need the same number of values per image)",
            );
        };
        if factor == 0 || !height.is_multiple_of(factor) || !width.is_multiple_of(factor) {
            return crate::error::invalid_setting(
                "pooling factor",
                factor,
                format!("a divisor of the image size {height}×{width}"),
            );
        }
        let (h, w, c) = (height / factor, width / factor, self.channels);
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
                                sum += f64::from(img[(y * width + x) * c + ch]);
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

    /// Checks that sizes agree with the pixels, labels are in range and every class has an image.
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
        if self.sizes.len() != self.len() {
            return format(format!("{} image sizes for {} images", self.sizes.len(), self.len()));
        }
        if self.channels == 0 {
            return format("images with 0 channels hold no pixels".into());
        }
        if let Some((i, [h, w])) = self.sizes.iter().enumerate().find(|(_, [h, w])| *h == 0 || *w == 0) {
            return format(format!("image {i} is {h}×{w} and holds no pixels"));
        }
        let expected = self.sizes.iter().try_fold(0usize, |total, &[h, w]| {
            h.checked_mul(w)?.checked_mul(self.channels)?.checked_add(total)
        });
        if expected != Some(self.pixels.len()) {
            let describe = match self.uniform_size() {
                Some([h, w]) => format!("{} images of {h}×{w}×{}", self.len(), self.channels),
                None => format!("{} images of their sizes ({} channels)", self.len(), self.channels),
            };
            return format(format!("{} pixel values for {describe}", self.pixels.len()));
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
