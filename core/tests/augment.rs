//! Device-side resampling of crops against scipy (`augment/make_augment_reference.py`): bilinear
//! with edge clamping inside the image, zeros in the padding, mirrored columns; AutoAugment's
//! operations against torchvision (`autoaugment/make_autoaugment_reference.py`); Mixup's draws,
//! mixed images and targets.

use std::path::PathBuf;

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

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// `[channels, height, width]` ↔ `[height, width, channels]`.
fn interleave(planar: &[u8], [h, w, c]: [usize; 3]) -> Vec<u8> {
    (0..h * w * c).map(|i| planar[(i % c) * h * w + i / c]).collect()
}

fn planar(interleaved: &[u8], [h, w, c]: [usize; 3]) -> Vec<u8> {
    (0..h * w * c)
        .map(|i| interleaved[(i % (h * w)) * c + i / (h * w)])
        .collect()
}

/// Every AutoAugment operation at several magnitudes (both signs), on three fixed images,
/// against torchvision's own implementation (`autoaugment/make_autoaugment_reference.py`); the
/// magnitude tables and the three policies against torchvision's.
#[test]
fn autoaugment_matches_torchvision() {
    use losslens_core::data::autoaugment::{BINS, Op, Policy};
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/autoaugment/reference.json");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let (h, w) = (
        r["height"].as_u64().unwrap() as usize,
        r["width"].as_u64().unwrap() as usize,
    );
    let op_of = |name: &str| Op::ALL.into_iter().find(|op| op.name() == name).unwrap();
    for (name, magnitudes) in r["magnitudes"].as_object().unwrap() {
        let op = op_of(name);
        assert_eq!(op.signed(), r["signed"][name].as_bool().unwrap(), "{name}");
        for (bin, m) in magnitudes.as_array().unwrap().iter().enumerate() {
            assert_eq!(
                op.magnitude(bin, h, w) as f32,
                m.as_f64().unwrap() as f32,
                "{name} bin {bin}"
            );
        }
        if magnitudes.as_array().unwrap().is_empty() {
            assert!((0..BINS).all(|b| op.magnitude(b, h, w) == 0.0), "{name}");
        }
    }
    for (policy, name) in [
        (Policy::Imagenet, "imagenet"),
        (Policy::Cifar10, "cifar10"),
        (Policy::Svhn, "svhn"),
    ] {
        let ours: Vec<Value> = policy
            .sub_policies()
            .iter()
            .map(|sub| {
                serde_json::json!(
                    sub.iter()
                        .map(|(op, p, bin)| serde_json::json!([op.name(), p, bin]))
                        .collect::<Vec<_>>()
                )
            })
            .collect();
        assert_eq!(Value::Array(ours), r["policies"][name], "{name} policy");
    }
    let mut mismatched = Vec::new();
    for case in r["cases"].as_array().unwrap() {
        let op = op_of(case["op"].as_str().unwrap());
        let magnitude = case["magnitude"].as_f64().unwrap();
        let image = case["image"].as_str().unwrap();
        let shape = [h, w, 3];
        let mut pixels = interleave(&unhex(r["images"][image].as_str().unwrap()), shape);
        op.apply(&mut pixels, shape, magnitude);
        let got = planar(&pixels, shape);
        let want = unhex(case["output"].as_str().unwrap());
        let wrong = got.iter().zip(&want).filter(|(a, b)| a != b).count();
        let worst = got.iter().zip(&want).map(|(&a, &b)| a.abs_diff(b)).max().unwrap();
        if wrong > 0 {
            mismatched.push(format!(
                "{op:?} {magnitude} on {image}: {wrong} values differ, by up to {worst}"
            ));
        }
    }
    assert!(mismatched.is_empty(), "{}", mismatched.join("\n"));
}

/// The host's resampling of a crop (what AutoAugment starts from) is the device's, rounded.
#[test]
fn host_crops_are_the_device_crops_rounded() {
    use losslens_core::data::augment::{crop_pixels, whole};
    let (h, w, c) = (9, 11, 3);
    let pixels: Vec<u8> = (0..h * w * c).map(|v| ((v * 37) % 256) as u8).collect();
    let set = ImageSet::uniform([h, w], c, pixels, vec![0], vec!["a".into()], "t".into());
    let identity = ChannelStats {
        mean: vec![0.0; 3],
        std: vec![1.0 / 255.0; 3],
    };
    let crop = Crop {
        top: -1.0,
        left: 1.5,
        height: 7.3,
        width: 8.0,
        flip: true,
    };
    let size = 6;
    let device: Vec<f32> = batch(&set, &[0], &[crop], size, &identity, &Device::flex())
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let host = crop_pixels(&set, 0, &crop, size);
    for y in 0..size {
        for x in 0..size {
            for ch in 0..c {
                let d = device[(ch * size + y) * size + x];
                let v = host[(y * size + x) * c + ch];
                assert!((f32::from(v) - d).abs() <= 0.5 + 1e-4, "({y}, {x}, {ch}): {v} vs {d}");
            }
        }
    }
    // A crop resampled on the host reads back exactly through the identity crop.
    let again = ImageSet::uniform([size, size], c, host.clone(), vec![0], vec!["a".into()], "t".into());
    let exact: Vec<f32> = batch(&again, &[0], &[whole(size)], size, &identity, &Device::flex())
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    for (i, d) in exact.iter().enumerate() {
        let (ch, p) = (i / (size * size), i % (size * size));
        assert_eq!(*d, f32::from(host[p * c + ch]));
    }
}

/// A policy draws from the stream it is given: the same stream augments alike, and over many
/// images the share it changes stays below the chance that a step fires (some steps, such as
/// posterising to 8 bits, change nothing) and well above none.
#[test]
fn autoaugment_policies_draw_from_their_stream() {
    use losslens_core::data::autoaugment::Policy;
    use losslens_core::rng::SplitMix64;
    let shape = [12, 12, 3];
    let image: Vec<u8> = (0..12 * 12 * 3).map(|v| ((v * 53) % 251) as u8).collect();
    let run = |seed: u64| {
        let mut pixels = image.clone();
        Policy::Imagenet.apply(&mut pixels, shape, &mut SplitMix64::new(seed));
        pixels
    };
    assert_eq!(run(5), run(5));
    let changed = (0..2000).filter(|&s| run(s) != image).count() as f64 / 2000.0;
    // A sub-policy leaves the image as it is at least when neither step fires.
    let fires: f64 = Policy::Imagenet
        .sub_policies()
        .iter()
        .map(|[(_, p, _), (_, q, _)]| 1.0 - (1.0 - p) * (1.0 - q))
        .sum::<f64>()
        / 25.0;
    assert!(
        changed <= fires + 0.03 && changed > 0.5,
        "changed {changed}, steps fire {fires}"
    );
}
