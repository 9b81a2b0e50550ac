//! Device-side resampling of crops against scipy (`augment/make_augment_reference.py`): bilinear
//! with edge clamping inside the image, zeros in the padding, mirrored columns; Mixup's draws,
//! mixed images and targets.

use burn::tensor::{Device, Tensor, TensorData};
use losslens_core::data::ImageSet;
use losslens_core::data::augment::{ChannelStats, Crop, batch};
use serde_json::Value;

#[test]
fn crops_match_scipy() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/augment/reference.json")).unwrap();
    let r: Value = serde_json::from_str(&text).unwrap();
    let dim = |k: &str| r[k].as_u64().unwrap() as usize;
    let set = ImageSet::uniform(
        [dim("height"), dim("width")],
        dim("channels"),
        r["pixels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u8)
            .collect(),
        vec![0],
        vec!["a".into()],
        "reference".into(),
    );
    // mean 0, std 1/255: the normalisation leaves pixel values as they are.
    let identity = ChannelStats {
        mean: vec![0.0; 3],
        std: vec![1.0 / 255.0; 3],
    };
    for (i, case) in r["cases"].as_array().unwrap().iter().enumerate() {
        let f = |k: &str| case[k].as_f64().unwrap();
        let crop = Crop {
            top: f("top"),
            left: f("left"),
            height: f("height"),
            width: f("width"),
            flip: case["flip"].as_bool().unwrap(),
        };
        let size = case["size"].as_u64().unwrap() as usize;
        let got = batch(&set, &[0], &[crop], size, &identity, &Device::flex())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let want: Vec<f64> = case["expected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(got.len(), want.len(), "case {i}");
        for (j, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (f64::from(*g) - w).abs() < 1e-3,
                "case {i} ({crop:?}), element {j}: {g} vs {w}"
            );
        }
    }
}

/// Mixup's draws: λ from Beta(α, α) (its mean and variance over many draws), partners a
/// permutation, the same draw from the same stream.
#[test]
fn mixup_draws_beta_weights_and_a_permutation() {
    use losslens_core::data::mixup::MixupConfig;
    use losslens_core::rng::SplitMix64;
    let mixup = MixupConfig { alpha: 0.2 };
    let mut rng = SplitMix64::new(11);
    let n = 20_000;
    let lambdas: Vec<f64> = (0..n).map(|_| mixup.draw(&mut rng, 4).lambda).collect();
    assert!(lambdas.iter().all(|&l| (0.0..=1.0).contains(&l)));
    let mean = lambdas.iter().sum::<f64>() / n as f64;
    let var = lambdas.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    // Beta(α, α): mean ½, variance 1 / (4 (2α + 1)) = 0.1786 at α = 0.2.
    assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
    assert!((var - 1.0 / (4.0 * 1.4)).abs() < 0.005, "variance {var}");
    let draw = mixup.draw(&mut SplitMix64::new(3), 64);
    let mut sorted = draw.partner.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..64).collect::<Vec<_>>());
    assert_eq!(draw, mixup.draw(&mut SplitMix64::new(3), 64), "one stream, one draw");
    assert!(MixupConfig { alpha: 0.0 }.validate().is_err());
    assert!(MixupConfig { alpha: f64::NAN }.validate().is_err());
}

/// Mixed images and targets, checked element by element against the definition.
#[test]
fn mixup_mixes_images_and_targets() {
    use losslens_core::data::mixup::MixupDraw;
    let device = Device::flex();
    let (n, c, h, w) = (3, 2, 2, 2);
    let values: Vec<f32> = (0..n * c * h * w).map(|v| (v as f32 * 0.7).sin()).collect();
    let images = Tensor::<4>::from_data(TensorData::new(values.clone(), [n, c, h, w]), &device);
    let draw = MixupDraw {
        lambda: 0.3,
        partner: vec![2, 0, 1],
    };
    let mixed: Vec<f32> = draw.images(images).into_data().try_to_vec::<f32>().unwrap();
    let per = c * h * w;
    for i in 0..n {
        for j in 0..per {
            let expected = 0.3 * values[i * per + j] + 0.7 * values[draw.partner[i] * per + j];
            assert!((mixed[i * per + j] - expected).abs() < 1e-6, "image {i}, value {j}");
        }
    }
    let labels = [1, 0, 1];
    let targets: Vec<f32> = draw
        .targets(&labels, 3, &device)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    #[rustfmt::skip]
    let expected = [
        0.0, 1.0, 0.0, // 0.3 e₁ + 0.7 e₁ (its partner, image 2, is also class 1)
        0.3, 0.7, 0.0, // 0.3 e₀ + 0.7 e₁
        0.7, 0.3, 0.0, // 0.3 e₁ + 0.7 e₀
    ];
    for (t, e) in targets.iter().zip(expected) {
        assert!((t - e).abs() < 1e-6, "{targets:?}");
    }
    assert_eq!(draw.dominant(&labels), [1, 1, 0], "the partner's label where λ < ½");
    // One device's share of the batch mixes within itself, by the permutation π induces there.
    let draw = MixupDraw {
        lambda: 0.6,
        partner: vec![3, 2, 0, 1],
    };
    assert_eq!(draw.restricted(0, 2).partner, [1, 0], "0 → 3 → 1; 1 → 2 → 0");
    assert_eq!(draw.restricted(2, 4).partner, [1, 0], "2 → 0 → 3; 3 → 1 → 2");
    assert_eq!(draw.restricted(0, 4), draw);
}
