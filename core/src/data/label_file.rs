//! Multi-label datasets (the paper's Table D.1, CheXpert): images listed in a CSV label file with
//! a header row, one row per image: its path relative to the dataset's folder, then one column
//! per class. The split of an image is the first folder of its path named `train`, or `test`,
//! `valid`, `validation` or `val` (CheXpert's `CheXpert-v1.0-small/train/patient…/view1.jpg`
//! is a training image). A class value of 1 is a positive label; 0, −1 (uncertain) and blank
//! (unmentioned) are negative, as the paper counts CheXpert's.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::folder::decode_image;
use crate::data::{ImageSet, Split};
use crate::error::{Error, Result, invalid_setting};
use crate::probe::multilabel::LabelMatrix;

/// A CSV label file of a multi-label dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelFile {
    /// The CSV file.
    pub file: PathBuf,
    /// The class columns, by their header names (CheXpert's five of Table D.1: `Atelectasis`,
    /// `Cardiomegaly`, `Consolidation`, `Edema`, `Pleural Effusion`). Default: every column
    /// after the first (the image path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
}

/// One split of a multi-label dataset.
#[derive(Debug, Clone)]
pub struct MultiLabelSplit {
    /// The images (their single-label `labels` are all 0, of one class named `multi-label`).
    pub images: ImageSet,
    /// Their labels, in the same order.
    pub labels: LabelMatrix,
}

/// The split an image path belongs to.
fn split_of(path: &str) -> Option<Split> {
    path.split(['/', '\\']).find_map(|part| match part {
        "train" => Some(Split::Train),
        "test" | "valid" | "validation" | "val" => Some(Split::Test),
        _ => None,
    })
}

impl LabelFile {
    /// The images of `split` that the file lists, under `root`, decoded to RGB with shorter side
    /// `size` (default: the first image's, at most 256 pixels), in file order, with their labels.
    ///
    /// # Errors
    /// An unreadable or malformed file (no path column, a named class missing, a class value that
    /// is not a number), a row in neither split, no image in `split`, an image that cannot be
    /// decoded.
    pub fn load(&self, root: &Path, split: Split, size: Option<usize>) -> Result<MultiLabelSplit> {
        let bad = |reason: String| Error::format(&self.file, reason);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_path(&self.file)
            .map_err(|e| bad(e.to_string()))?;
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| bad(e.to_string()))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        if header.len() < 2 {
            return Err(bad(
                "the header needs the image path and at least one class column".into()
            ));
        }
        let names: Vec<String> = match &self.classes {
            Some(names) => names.clone(),
            None => header[1..].to_vec(),
        };
        if names.is_empty() {
            return invalid_setting("labels.classes", "[]", "at least one class column");
        }
        let columns = names
            .iter()
            .map(|n| {
                header[1..]
                    .iter()
                    .position(|h| h == n)
                    .map(|i| i + 1)
                    .ok_or_else(|| bad(format!("no column `{n}` (the columns: {})", header[1..].join(", "))))
            })
            .collect::<Result<Vec<usize>>>()?;
        let mut paths = Vec::new();
        let mut values = Vec::new();
        for (row, record) in reader.records().enumerate() {
            let record = record.map_err(|e| bad(e.to_string()))?;
            let line = row + 2;
            let path = record.get(0).unwrap_or("").trim();
            // Images are read from under the dataset's folder only.
            let relative = Path::new(path);
            if relative.is_absolute()
                || relative
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                return Err(bad(format!(
                    "line {line}: `{path}` is not a path inside the dataset's folder (absolute or with `..`)"
                )));
            }
            let Some(of) = split_of(path) else {
                return Err(bad(format!(
                    "line {line}: `{path}` is under no `train`, `test` or `valid` folder, so it is in neither split"
                )));
            };
            if of != split {
                continue;
            }
            for (&c, name) in columns.iter().zip(&names) {
                let field = record.get(c).unwrap_or("").trim();
                let value = match field {
                    "" => 0.0,
                    text => text.parse::<f64>().map_err(|_| {
                        bad(format!(
                            "line {line}, column `{name}`: `{text}` is not a number (1 positive; 0, -1 or blank negative)"
                        ))
                    })?,
                };
                values.push(value == 1.0);
            }
            paths.push(root.join(path));
        }
        if paths.is_empty() {
            return Err(bad(format!(
                "lists no {} image",
                crate::data::source::split_name(split)
            )));
        }
        let size = match size {
            Some(0) => return invalid_setting("size", 0, "at least 1 pixel"),
            Some(s) => s,
            None => {
                let (w, h) = image::image_dimensions(&paths[0]).map_err(|e| Error::format(&paths[0], e.to_string()))?;
                (w.min(h) as usize).clamp(1, 256)
            }
        };
        let decoded: Vec<([usize; 2], Vec<u8>)> = paths
            .par_iter()
            .map(|p| decode_image(p, size).map_err(|reason| Error::format(p, reason)))
            .collect::<Result<_>>()?;
        let n = decoded.len();
        let (sizes, pixels): (Vec<[usize; 2]>, Vec<Vec<u8>>) = decoded.into_iter().unzip();
        let images = ImageSet::new(
            sizes,
            3,
            pixels.concat(),
            vec![0; n],
            vec!["multi-label".into()],
            self.file.display().to_string(),
        );
        images.validate()?;
        let labels = LabelMatrix::new(n, names.len(), values)?.with_names(names)?;
        Ok(MultiLabelSplit { images, labels })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_is_the_first_split_folder_of_the_path() {
        assert_eq!(
            split_of("CheXpert-v1.0-small/train/patient1/view1.jpg"),
            Some(Split::Train)
        );
        assert_eq!(split_of("valid/patient2/study1/view1.jpg"), Some(Split::Test));
        assert_eq!(split_of("test/a.png"), Some(Split::Test));
        assert_eq!(split_of("images/a.png"), None);
    }
}
