//! CIFAR-10 and CIFAR-100 in their binary format (Krizhevsky 2009).
//!
//! CIFAR-10: `data_batch_1.bin` … `data_batch_5.bin` (training) and `test_batch.bin`, records of
//! one label byte and 3,072 pixel bytes (the red, green and blue 32×32 planes); class names in
//! `batches.meta.txt`. CIFAR-100: `train.bin` and `test.bin`, records of a coarse and a fine label
//! byte and the pixels; the fine labels are used, named by `fine_label_names.txt`.

use std::path::Path;

use crate::data::images::ImageSet;
use crate::error::{Error, Result};

/// Which part of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Split {
    /// The training images.
    Train,
    /// The test images.
    Test,
}

const PIXELS: usize = 3 * 32 * 32;

/// Reads a CIFAR-10 or CIFAR-100 binary folder (the one holding the `.bin` files).
pub fn read_cifar(dir: &Path, split: Split) -> Result<ImageSet> {
    let (files, label_bytes, names_file): (Vec<String>, usize, &str) =
        if dir.join("data_batch_1.bin").exists() || dir.join("test_batch.bin").exists() {
            let files = match split {
                Split::Train => (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
                Split::Test => vec!["test_batch.bin".to_string()],
            };
            (files, 1, "batches.meta.txt")
        } else if dir.join("train.bin").exists() || dir.join("test.bin").exists() {
            let file = match split {
                Split::Train => "train.bin",
                Split::Test => "test.bin",
            };
            (vec![file.to_string()], 2, "fine_label_names.txt")
        } else {
            return Err(Error::Format {
                path: dir.into(),
                reason: "no CIFAR binary batches here (expected data_batch_1.bin … test_batch.bin for CIFAR-10, \
                     or train.bin/test.bin for CIFAR-100)"
                    .into(),
            });
        };
    let record = label_bytes + PIXELS;
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for name in &files {
        let path = dir.join(name);
        let bytes = crate::input::read_file(&path)?;
        if bytes.is_empty() || bytes.len() % record != 0 {
            return Err(Error::Format {
                path,
                reason: format!(
                    "{} bytes is not a whole number of {record}-byte CIFAR records (truncated or not CIFAR)",
                    bytes.len()
                ),
            });
        }
        for r in bytes.chunks_exact(record) {
            labels.push(usize::from(r[label_bytes - 1]));
            // Planes [3, 32, 32] -> pixels [32, 32, 3].
            let planes = &r[label_bytes..];
            for p in 0..32 * 32 {
                pixels.extend([planes[p], planes[1024 + p], planes[2048 + p]]);
            }
        }
    }
    let max_label = labels.iter().copied().max().unwrap_or(0);
    let classes = match std::fs::read_to_string(dir.join(names_file)) {
        Ok(text) => text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
        Err(_) => (0..=max_label).map(|k| k.to_string()).collect::<Vec<_>>(),
    };
    if max_label >= classes.len() {
        return Err(Error::Format {
            path: dir.join(names_file),
            reason: format!("label {max_label} found but only {} class names", classes.len()),
        });
    }
    let set = ImageSet::uniform([32, 32], 3, pixels, labels, classes, dir.display().to_string());
    set.validate()?;
    Ok(set)
}
