//! Reading files written by numpy itself (`fixtures/make_fixtures.py`), and writing files numpy
//! can read back.

use std::path::PathBuf;

use losslens_core::features::{Array, ArrayData, FeatureFile, FloatData, Format};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The value every fixture holds at row i, column j.
fn base(rows: usize, cols: usize) -> Vec<f64> {
    (0..rows * cols)
        .map(|k| 0.25 * (k / cols) as f64 - 0.5 * (k % cols) as f64)
        .collect()
}

fn as_f64(data: &FloatData) -> Vec<f64> {
    match data {
        FloatData::F32(v) => v.iter().map(|&x| x as f64).collect(),
        FloatData::F64(v) => v.clone(),
    }
}

#[test]
fn reads_numpy_savez_compressed_with_every_layout() {
    let f = FeatureFile::open(fixture("numpy_compressed.npz")).unwrap();
    assert_eq!(f.layer_names(), vec!["half", "fortran", "big_endian", "conv"]);
    for (name, cols) in [("half", 4), ("fortran", 5), ("big_endian", 3), ("conv", 8)] {
        let layer = f.layer(Some(name)).unwrap();
        assert_eq!((layer.rows, layer.cols), (6, cols), "{name}");
        assert_eq!(as_f64(&layer.data), base(6, cols), "{name}");
    }
    assert_eq!(f.layer(Some("conv")).unwrap().shape, vec![6, 2, 2, 2]);
    assert_eq!(f.labels().unwrap(), vec![0, 1, 2, 0, 1, 2]);
    assert!(f.layer(None).is_err(), "several layers and no --layer is ambiguous");
}

#[test]
fn reads_numpy_savez_and_save() {
    let f = FeatureFile::open(fixture("numpy_stored.npz")).unwrap();
    let only = f.layer(None).unwrap();
    assert_eq!(only.name, "only");
    assert_eq!(as_f64(&only.data), base(6, 4));
    assert_eq!(f.labels().unwrap(), vec![0, 1, 2, 0, 1, 2]);

    let f = FeatureFile::open(fixture("numpy_single.npy")).unwrap();
    let layer = f.layer(None).unwrap();
    assert_eq!(layer.name, "numpy_single");
    assert_eq!(layer.data, FloatData::F64(base(5, 3)));
}

#[test]
fn writes_npz_and_safetensors_that_read_back_with_metadata() {
    let dir = tempfile_dir();
    let arrays = vec![
        (
            "block".to_string(),
            Array::new(vec![2, 1, 2, 1], ArrayData::F32(vec![1.0, 2.0, 3.0, 4.0])),
        ),
        (
            "penultimate".to_string(),
            Array::new(vec![2, 3], ArrayData::F64(vec![0.5, 1.5, 2.5, 3.5, 4.5, 5.5])),
        ),
        ("labels".to_string(), Array::from_labels(&[1, 0])),
    ];
    let meta = serde_json::json!({"model": "resnet18", "objective": "softmax", "seed": 0});
    for ext in ["npz", "safetensors"] {
        let path = dir.join(format!("out.{ext}"));
        FeatureFile::new(&path, arrays.clone(), Some(meta.clone()))
            .save(&path)
            .unwrap();
        let back = FeatureFile::open(&path).unwrap();
        assert_eq!(back.metadata.as_ref(), Some(&meta), "{ext}");
        assert_eq!(back.layer_names(), vec!["block", "penultimate"], "{ext}");
        assert_eq!(back.labels().unwrap(), vec![1, 0]);
        for (name, array) in &arrays {
            assert_eq!(back.array(name), Some(array), "{ext}: {name}");
        }
        assert_eq!(
            Format::from_path(&path).unwrap(),
            if ext == "npz" { Format::Npz } else { Format::Safetensors }
        );
    }
    std::fs::remove_dir_all(dir).ok();
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("losslens-formats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
