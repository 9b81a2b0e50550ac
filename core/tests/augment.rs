//! Device-side resampling of crops against scipy (`augment/make_augment_reference.py`): bilinear
//! with edge clamping inside the image, zeros in the padding, mirrored columns.

use burn::tensor::Device;
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
