//! Fuzzing the parsers of untrusted input, on stable Rust and inside `cargo test`: valid seed
//! files of every format are mutated at random (bit flips, bytes overwritten with boundary
//! values, truncation, insertion, a span repeated) and every parser must answer with a value or
//! an error: never a panic, never an abort. proptest draws the mutations and shrinks any failure
//! to a small reproducer.
//!
//! `LOSSLENS_FUZZ_CASES` sets the mutated inputs per format (default 256: seconds; `scripts/fuzz`
//! runs a long session). Formats: `.npy`, `.npz`, safetensors, IDX (raw and gzip), CIFAR binary
//! batches and study files (TOML).

use std::io::Write;
use std::path::Path;

use losslens_core::data::idx::parse_idx;
use losslens_core::data::{Split, cifar::read_cifar, idx::read_idx_set};
use losslens_core::features::{Array, ArrayData, FeatureFile, Format, npy_bytes, npz_bytes, parse_npy, parse_npz};
use losslens_core::study::StudyConfig;
use proptest::prelude::*;

/// One change to a file.
#[derive(Debug, Clone)]
enum Mutation {
    /// Flip one bit at a position (taken modulo the length).
    Flip(u64, u8),
    /// Overwrite a byte with a value.
    Set(u64, u8),
    /// Overwrite four bytes with a boundary value (0, 1, 0x7f…, 0xff…), little endian.
    Boundary(u64, u32),
    /// Cut the file at a position.
    Truncate(u64),
    /// Insert bytes at a position.
    Insert(u64, Vec<u8>),
    /// Repeat a span of the file in place.
    Repeat(u64, u16),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let boundary = prop_oneof![
        Just(0u32),
        Just(1),
        Just(0x7f),
        Just(0xff),
        Just(0x7fff_ffff),
        Just(0xffff_ffff),
        Just(0x8000_0000),
        any::<u32>()
    ];
    prop_oneof![
        3 => (any::<u64>(), 0u8..8).prop_map(|(p, b)| Mutation::Flip(p, b)),
        3 => (any::<u64>(), any::<u8>()).prop_map(|(p, v)| Mutation::Set(p, v)),
        2 => (any::<u64>(), boundary).prop_map(|(p, v)| Mutation::Boundary(p, v)),
        1 => any::<u64>().prop_map(Mutation::Truncate),
        1 => (any::<u64>(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(p, v)| Mutation::Insert(p, v)),
        1 => (any::<u64>(), 1u16..512).prop_map(|(p, n)| Mutation::Repeat(p, n)),
    ]
}

fn apply(seed: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for m in mutations {
        let at = |p: u64, len: usize| if len == 0 { 0 } else { (p % len as u64) as usize };
        match m {
            Mutation::Flip(p, bit) if !bytes.is_empty() => {
                let i = at(*p, bytes.len());
                bytes[i] ^= 1 << bit;
            }
            Mutation::Set(p, v) if !bytes.is_empty() => {
                let i = at(*p, bytes.len());
                bytes[i] = *v;
            }
            Mutation::Boundary(p, v) if bytes.len() >= 4 => {
                let i = at(*p, bytes.len() - 3);
                bytes[i..i + 4].copy_from_slice(&v.to_le_bytes());
            }
            Mutation::Truncate(p) => {
                let i = at(*p, bytes.len() + 1);
                bytes.truncate(i);
            }
            Mutation::Insert(p, v) => {
                let i = at(*p, bytes.len() + 1);
                bytes.splice(i..i, v.iter().copied());
            }
            Mutation::Repeat(p, n) if !bytes.is_empty() => {
                let i = at(*p, bytes.len());
                let end = (i + *n as usize).min(bytes.len());
                let span = bytes[i..end].to_vec();
                bytes.splice(end..end, span);
            }
            _ => {}
        }
    }
    bytes
}

fn cases() -> u32 {
    std::env::var("LOSSLENS_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Feature arrays of every kind losslens reads.
fn arrays() -> Vec<(String, Array)> {
    vec![
        (
            "block1".into(),
            Array::from_f32(3, 4, (0..12).map(|i| i as f32 * 0.5).collect()),
        ),
        (
            "maps".into(),
            Array::new(vec![2, 2, 2, 2], ArrayData::F64((0..16).map(f64::from).collect())),
        ),
        ("labels".into(), Array::from_labels(&[0, 1, 2])),
    ]
}

fn npy_seeds() -> Vec<Vec<u8>> {
    arrays().iter().map(|(_, a)| npy_bytes(a)).collect()
}

fn npz_seed() -> Vec<u8> {
    let members: Vec<(String, Vec<u8>)> = arrays().iter().map(|(n, a)| (n.clone(), npy_bytes(a))).collect();
    npz_bytes(&members).unwrap()
}

fn safetensors_seed() -> Vec<u8> {
    let file = FeatureFile::new("x.safetensors", arrays(), Some(serde_json::json!({ "model": "small" })));
    file.to_bytes(Format::Safetensors).unwrap()
}

fn idx_seeds() -> Vec<Vec<u8>> {
    let mut images = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 3];
    images.extend((0..18).map(|i| i as u8 * 13));
    let labels = vec![0, 0, 8, 1, 0, 0, 0, 2, 1, 7];
    vec![images, labels]
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn study_seeds() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/studies");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    seeds.sort();
    seeds
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn npy_never_panics(seed in 0usize..3, mutations in prop::collection::vec(mutation(), 1..6)) {
        let bytes = apply(&npy_seeds()[seed], &mutations);
        let _ = parse_npy(&bytes, Path::new("fuzz.npy"), "x");
        let _ = FeatureFile::from_bytes("fuzz.npy", Format::Npy, &bytes).and_then(|mut f| f.take_layers());
    }

    #[test]
    fn npz_never_panics(mutations in prop::collection::vec(mutation(), 1..6)) {
        let bytes = apply(&npz_seed(), &mutations);
        let _ = parse_npz(&bytes, Path::new("fuzz.npz"));
        if let Ok(mut file) = FeatureFile::from_bytes("fuzz.npz", Format::Npz, &bytes) {
            let _ = file.labels();
            let _ = file.take_layers();
        }
    }

    #[test]
    fn safetensors_never_panics(mutations in prop::collection::vec(mutation(), 1..6)) {
        let bytes = apply(&safetensors_seed(), &mutations);
        if let Ok(mut file) = FeatureFile::from_bytes("fuzz.safetensors", Format::Safetensors, &bytes) {
            let _ = file.labels();
            let _ = file.take_layers();
        }
    }

    #[test]
    fn idx_never_panics(seed in 0usize..2, gz in any::<bool>(), mutations in prop::collection::vec(mutation(), 1..6)) {
        let seeds = idx_seeds();
        if gz {
            // Mutate the compressed stream, read through the file reader (bounded inflation).
            let dir = tempfile::tempdir().unwrap();
            let images = dir.path().join("images.gz");
            let labels = dir.path().join("labels.gz");
            std::fs::write(&images, apply(&gzip(&seeds[0]), if seed == 0 { &mutations } else { &[] })).unwrap();
            std::fs::write(&labels, apply(&gzip(&seeds[1]), if seed == 1 { &mutations } else { &[] })).unwrap();
            let _ = read_idx_set(&images, &labels);
        } else {
            let _ = parse_idx(&apply(&seeds[seed], &mutations));
        }
    }

    #[test]
    fn cifar_never_panics(mutations in prop::collection::vec(mutation(), 1..6)) {
        let dir = tempfile::tempdir().unwrap();
        let record: Vec<u8> = (0..3073).map(|i| (i % 10) as u8).collect();
        let batch: Vec<u8> = record.iter().chain(&record).copied().collect();
        std::fs::write(dir.path().join("test_batch.bin"), apply(&batch, &mutations)).unwrap();
        std::fs::write(dir.path().join("batches.meta.txt"), "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n").unwrap();
        let _ = read_cifar(dir.path(), Split::Test);
    }

    #[test]
    fn study_files_never_panic(seed in 0usize..3, mutations in prop::collection::vec(mutation(), 1..6)) {
        let seeds = study_seeds();
        let text = String::from_utf8_lossy(&apply(&seeds[seed % seeds.len()], &mutations)).into_owned();
        if let Ok(study) = toml::from_str::<StudyConfig>(&text) {
            let _ = study.validate();
        }
    }
}
