//! A procedurally generated image-classification dataset that needs no download: any number of
//! classes and images, any size, identical for a given seed on every machine.
//!
//! Each class is a random template drawn from the seed: an oriented sinusoidal grating (angle,
//! spatial frequency), a colour pair, and a Gaussian blob at a class-specific place. Each image
//! renders its class's template with a random phase, a random shift of the blob, a random
//! brightness and per-pixel noise, so the classes overlap enough that a network has to learn
//! them. Two seeds give two unrelated sets of classes, which makes a source and a target task.

use serde::{Deserialize, Serialize};

use crate::data::images::ImageSet;
use crate::error::{Result, invalid_setting};
use crate::rng::SplitMix64;

/// Settings of a procedural dataset.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProceduralConfig {
    /// Number of classes, ≥ 2.
    pub classes: usize,
    /// Images per class, ≥ 1.
    pub per_class: usize,
    /// Height and width in pixels, ≥ 8.
    pub size: usize,
    /// Seed of the class templates and of the images.
    pub seed: u64,
    /// Standard deviation of the per-pixel noise, in units of the full 0–255 range. Default 0.15.
    #[serde(default = "ProceduralConfig::default_noise")]
    pub noise: f64,
}

impl ProceduralConfig {
    fn default_noise() -> f64 {
        0.15
    }

    /// Refuses empty or degenerate datasets.
    pub fn validate(&self) -> Result<()> {
        if self.classes < 2 {
            return invalid_setting("classes", self.classes.to_string(), "at least 2");
        }
        if self.per_class == 0 {
            return invalid_setting("images per class", "0", "at least 1");
        }
        if self.size < 8 {
            return invalid_setting("image size", self.size.to_string(), "at least 8 pixels");
        }
        if !(self.noise.is_finite() && self.noise >= 0.0) {
            return invalid_setting("noise", self.noise.to_string(), "a finite number ≥ 0");
        }
        // Three bytes per pixel of every image, before anything is generated.
        let bytes = (self.classes as u128) * (self.per_class as u128) * (self.size as u128).pow(2) * 3;
        crate::input::check_memory(
            "procedural dataset",
            format!(
                "{} classes × {} images of {} px",
                self.classes, self.per_class, self.size
            ),
            bytes,
        )
    }
}

struct Template {
    angle: f64,
    frequency: f64,
    colors: [[f64; 3]; 2],
    blob: [f64; 2],
    blob_color: [f64; 3],
}

fn template(rng: &mut SplitMix64) -> Template {
    let color = |rng: &mut SplitMix64| [rng.uniform(), rng.uniform(), rng.uniform()];
    Template {
        angle: std::f64::consts::PI * rng.uniform(),
        frequency: 1.5 + 3.0 * rng.uniform(),
        colors: [color(rng), color(rng)],
        blob: [0.25 + 0.5 * rng.uniform(), 0.25 + 0.5 * rng.uniform()],
        blob_color: color(rng),
    }
}

/// Generates the dataset, images ordered class by class.
pub fn procedural(config: &ProceduralConfig) -> Result<ImageSet> {
    config.validate()?;
    let s = config.size;
    let mut class_rng = SplitMix64::new(config.seed ^ 0x05EE_DC1A_55E5_u64);
    let templates: Vec<Template> = (0..config.classes).map(|_| template(&mut class_rng)).collect();
    let mut pixels = Vec::with_capacity(config.classes * config.per_class * s * s * 3);
    let mut labels = Vec::with_capacity(config.classes * config.per_class);
    for (k, t) in templates.iter().enumerate() {
        for i in 0..config.per_class {
            let mut rng = SplitMix64::new(
                config
                    .seed
                    .wrapping_mul(0x9E37_79B9)
                    .wrapping_add((k * 1_000_003 + i) as u64),
            );
            let phase = std::f64::consts::TAU * rng.uniform();
            let angle = t.angle + 0.15 * rng.normal();
            let (dx, dy) = (0.12 * rng.normal(), 0.12 * rng.normal());
            let brightness = 0.8 + 0.4 * rng.uniform();
            let (c, sn) = (angle.cos(), angle.sin());
            for y in 0..s {
                for x in 0..s {
                    let (u, v) = (x as f64 / s as f64, y as f64 / s as f64);
                    let wave = 0.5 + 0.5 * (std::f64::consts::TAU * t.frequency * (u * c + v * sn) + phase).sin();
                    let (bx, by) = (u - t.blob[0] - dx, v - t.blob[1] - dy);
                    let blob = (-(bx * bx + by * by) / 0.02).exp();
                    for ch in 0..3 {
                        let base = t.colors[0][ch] * wave + t.colors[1][ch] * (1.0 - wave);
                        let value =
                            brightness * ((1.0 - blob) * base + blob * t.blob_color[ch]) + config.noise * rng.normal();
                        pixels.push((value.clamp(0.0, 1.0) * 255.0).round() as u8);
                    }
                }
            }
            labels.push(k);
        }
    }
    Ok(ImageSet::uniform(
        [s, s],
        3,
        pixels,
        labels,
        (0..config.classes).map(|k| format!("class{k:03}")).collect(),
        format!(
            "procedural(classes={}, per_class={}, size={}, seed={})",
            config.classes, config.per_class, s, config.seed
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_balanced_and_seed_dependent() {
        let config = ProceduralConfig {
            classes: 4,
            per_class: 5,
            size: 16,
            seed: 1,
            noise: 0.15,
        };
        let a = procedural(&config).unwrap();
        assert_eq!(a, procedural(&config).unwrap());
        a.validate().unwrap();
        assert_eq!(a.len(), 20);
        assert_eq!(a.class_counts(), vec![5; 4]);
        let b = procedural(&ProceduralConfig { seed: 2, ..config }).unwrap();
        assert_ne!(a.pixels, b.pixels);
        assert!(procedural(&ProceduralConfig { classes: 1, ..config }).is_err());
    }
}
