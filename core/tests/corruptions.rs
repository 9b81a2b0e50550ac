//! ImageNet-C corruptions against the code ImageNet-C was made with (scikit-image, scipy and PIL,
//! `corruptions/make_corruption_reference.py`) on a fixed image, and the noises by their
//! statistics.

use losslens_core::data::ImageSet;
use losslens_core::data::corrupt::{Corruption, corrupt_set};
use serde_json::Value;

fn reference() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corruptions/reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn bytes(v: &Value) -> Vec<u8> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u8)
        .collect()
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let mse = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    10.0 * (255.0f64.powi(2) / mse).log10()
}

#[test]
fn deterministic_corruptions_match_the_reference_code() {
    let r = reference();
    let size = [
        r["height"].as_u64().unwrap() as usize,
        r["width"].as_u64().unwrap() as usize,
    ];
    let image = bytes(&r["image"]);
    for (name, results) in r["corruptions"].as_object().unwrap() {
        let corruption: Corruption = name.parse().unwrap();
        for (i, expected) in results.as_array().unwrap().iter().enumerate() {
            let severity = i + 1;
            assert_eq!(
                corruption.parameter(severity).unwrap(),
                expected["parameter"].as_f64().unwrap()
            );
            let ours = corruption.apply(&image, size, 3, severity, 0).unwrap();
            assert_eq!(ours.len(), image.len());
            if corruption == Corruption::JpegCompression {
                // Another encoder: the same loss of quality, not the same bytes.
                let (a, b) = (psnr(&image, &ours), expected["psnr"].as_f64().unwrap());
                eprintln!("{name} {severity}: PSNR {a:.2} dB, PIL {b:.2} dB");
                assert!(
                    (a - b).abs() < 0.2,
                    "{name} {severity}: PSNR {a:.2} dB vs PIL's {b:.2} dB"
                );
                continue;
            }
            let theirs = bytes(&expected["pixels"]);
            // Values the reference truncates from within rounding error of an integer may land
            // one apart; nothing more.
            let off: Vec<(usize, u8, u8)> = ours
                .iter()
                .zip(&theirs)
                .enumerate()
                .filter(|(_, (a, b))| a != b)
                .map(|(j, (&a, &b))| (j, a, b))
                .collect();
            assert!(
                off.iter().all(|&(_, a, b)| a.abs_diff(b) <= 1),
                "{name} {severity}: {off:?}"
            );
            assert!(
                off.len() * 100 <= ours.len(),
                "{name} {severity}: {} values differ",
                off.len()
            );
        }
    }
}

fn grey(value: u8, n: usize) -> Vec<u8> {
    vec![value; n * n * 3]
}

fn stats(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = values.clone().count() as f64;
    let mean = values.clone().sum::<f64>() / n;
    (mean, values.map(|v| (v - mean).powi(2)).sum::<f64>() / n)
}

#[test]
fn noises_have_their_distributions_and_are_reproducible() {
    let n = 64;
    let image = grey(128, n);
    let x = 128.0 / 255.0;
    let scaled = |out: &[u8]| out.iter().map(|&v| f64::from(v) / 255.0).collect::<Vec<f64>>();
    for severity in 1..=2 {
        // N(0, c²) added; truncation to uint8 lowers the mean by half a level.
        let c = Corruption::GaussianNoise.parameter(severity).unwrap();
        let out = Corruption::GaussianNoise.apply(&image, [n, n], 3, severity, 7).unwrap();
        let (mean, var) = stats(scaled(&out).into_iter());
        assert!(
            (mean - x + 0.5 / 255.0).abs() < 0.005,
            "gaussian {severity}: mean {mean}"
        );
        assert!(
            (var.sqrt() / c - 1.0).abs() < 0.05,
            "gaussian {severity}: sd {} vs {c}",
            var.sqrt()
        );
        // Poisson(c·x)/c: mean x, variance x/c.
        let c = Corruption::ShotNoise.parameter(severity).unwrap();
        let out = Corruption::ShotNoise.apply(&image, [n, n], 3, severity, 7).unwrap();
        let (mean, var) = stats(scaled(&out).into_iter());
        assert!((mean - x).abs() < 0.01, "shot {severity}: mean {mean}");
        assert!(
            (var / (x / c) - 1.0).abs() < 0.1,
            "shot {severity}: variance {var} vs {}",
            x / c
        );
    }
    for severity in 1..=5 {
        let c = Corruption::ImpulseNoise.parameter(severity).unwrap();
        let out = Corruption::ImpulseNoise.apply(&image, [n, n], 3, severity, 7).unwrap();
        let (salt, pepper) = (
            out.iter().filter(|&&v| v == 255).count() as f64 / out.len() as f64,
            out.iter().filter(|&&v| v == 0).count() as f64 / out.len() as f64,
        );
        assert!(out.iter().all(|&v| v == 0 || v == 128 || v == 255));
        assert!(
            (salt + pepper - c).abs() < 0.015,
            "impulse {severity}: {salt} + {pepper} vs {c}"
        );
        assert!((salt - pepper).abs() < 0.02, "impulse {severity}: {salt} vs {pepper}");
    }
    // The same seed gives the same image, another seed another.
    let a = Corruption::GaussianNoise.apply(&image, [n, n], 3, 3, 1).unwrap();
    assert_eq!(a, Corruption::GaussianNoise.apply(&image, [n, n], 3, 3, 1).unwrap());
    assert_ne!(a, Corruption::GaussianNoise.apply(&image, [n, n], 3, 3, 2).unwrap());
}

#[test]
fn sets_are_corrupted_image_by_image_and_bad_input_is_refused() {
    let n = 12;
    let gray: Vec<u8> = (0..4 * n * n).map(|i| (i * 7 % 256) as u8).collect();
    let set = ImageSet::uniform(
        [n, n],
        1,
        gray,
        vec![0, 1, 0, 1],
        vec!["a".into(), "b".into()],
        "test".into(),
    );
    for corruption in Corruption::ALL {
        for severity in 1..=5 {
            let out = corrupt_set(&set, corruption, severity, 3).unwrap();
            assert_eq!((out.len(), out.channels, out.size(0)), (4, 1, [n, n]));
            assert_eq!(out.labels, set.labels);
            assert_eq!(
                out,
                corrupt_set(&set, corruption, severity, 3).unwrap(),
                "{corruption} is reproducible"
            );
        }
    }
    // Images differ within a set through their noise.
    let noisy = corrupt_set(&set, Corruption::GaussianNoise, 5, 3).unwrap();
    let flat = ImageSet::uniform(
        [n, n],
        1,
        vec![90; 2 * n * n],
        vec![0, 1],
        vec!["a".into(), "b".into()],
        "flat".into(),
    );
    let flat = corrupt_set(&flat, Corruption::GaussianNoise, 5, 3).unwrap();
    assert_ne!(flat.image(0), flat.image(1));
    assert!(noisy.image(0) != set.image(0));
    // Severities outside 1–5, images that are not what they say.
    assert!(Corruption::Contrast.apply(&[0; 12], [2, 2], 3, 6, 0).is_err());
    assert!(Corruption::Contrast.apply(&[0; 11], [2, 2], 3, 1, 0).is_err());
    assert!(Corruption::Contrast.apply(&[0; 8], [2, 2], 2, 1, 0).is_err());
}
