//! Where a dataset lives and in which format: the one description `losslens train`, `extract` and
//! study files use, with the format recognised from the folder when it is not given.
//!
//! On the command line a source is `PATH` (format recognised), `FORMAT:PATH` (`folder:`, `cifar:`,
//! `idx:`) or `procedural[:key=value,...]`; in TOML it is a table with a `format` key.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::data::images::ImageSet;
use crate::data::procedural::{ProceduralConfig, procedural};
use crate::data::{Split, cifar, folder, idx};
use crate::error::{Error, Result, invalid_setting};

/// A dataset and its format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DatasetSource {
    /// An ImageFolder tree: `root/{train,test}/<class>/<image>` (or `root/<class>/<image>` for a
    /// tree with a single, training split). Images are decoded once, resized so that the shorter
    /// side is `size` pixels with the aspect ratio kept (nothing is cropped; see
    /// [`crate::data::folder`]), and cached.
    Folder {
        /// The root folder.
        path: PathBuf,
        /// Decoded size in pixels; default: the size of the first image's shorter side, capped
        /// at 256 (the paper's evaluation resize).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<usize>,
    },
    /// CIFAR-10/100 binary batches (the folder holding the `.bin` files).
    Cifar {
        /// The folder.
        path: PathBuf,
    },
    /// IDX files (MNIST, Fashion-MNIST): `{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`.
    Idx {
        /// The folder.
        path: PathBuf,
    },
    /// The generated dataset ([`procedural`]); the test split holds further images of the same
    /// classes.
    Procedural {
        /// Classes, image size, seed and noise; `per_class` is the number of training images per
        /// class.
        #[serde(flatten)]
        config: ProceduralConfig,
        /// Test images per class. Default 50.
        #[serde(default = "default_test_per_class")]
        test_per_class: usize,
    },
}

fn default_test_per_class() -> usize {
    50
}

/// The procedural dataset used when none is configured: 10 classes of 32 × 32 images.
pub(crate) const DEFAULT_PROCEDURAL: ProceduralConfig = ProceduralConfig {
    classes: 10,
    per_class: 500,
    size: 32,
    seed: 0,
    noise: 0.15,
};

impl DatasetSource {
    /// The source at `path`, its format recognised from the files there: CIFAR batches, IDX
    /// files, or else an ImageFolder tree.
    pub fn detect(path: &Path) -> Result<Self> {
        if !path.is_dir() {
            return Err(Error::format(
                path,
                "no such folder (a dataset is a folder: an ImageFolder tree, CIFAR binary batches or IDX files)",
            ));
        }
        let has = |name: &str| path.join(name).exists();
        Ok(
            if has("data_batch_1.bin") || has("test_batch.bin") || has("train.bin") || has("test.bin") {
                DatasetSource::Cifar { path: path.into() }
            } else if idx_files(path, Split::Train).is_some() || idx_files(path, Split::Test).is_some() {
                DatasetSource::Idx { path: path.into() }
            } else {
                DatasetSource::Folder {
                    path: path.into(),
                    size: None,
                }
            },
        )
    }

    /// Reads one split. ImageFolder trees are decoded through a cache file in `cache_dir`
    /// (rebuilt when the tree changes); without a cache folder they are decoded every time.
    pub fn load(&self, split: Split, cache_dir: Option<&Path>) -> Result<ImageSet> {
        match self {
            DatasetSource::Folder { path, size } => {
                let root = folder_split(path, split)?;
                let size = match size {
                    Some(0) => return invalid_setting("size", 0, "at least 1 pixel"),
                    Some(s) => *s,
                    None => default_folder_size(&root)?,
                };
                match cache_dir {
                    Some(dir) => {
                        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                        let name = format!("{}-{}-{size}px.safetensors", cache_stem(path), split_name(split));
                        Ok(folder::load_image_folder(&root, size, &dir.join(name))?.0)
                    }
                    None => Ok(folder::read_image_folder(&root, size)?.0),
                }
            }
            DatasetSource::Cifar { path } => cifar::read_cifar(path, split),
            DatasetSource::Idx { path } => {
                let (images, labels) = idx_files(path, split).ok_or_else(|| {
                    Error::format(
                        path,
                        format!(
                            "no IDX files for the {} split (expected {0}-images-idx3-ubyte[.gz] and {0}-labels-idx1-ubyte[.gz])",
                            idx_prefix(split)
                        ),
                    )
                })?;
                idx::read_idx_set(&images, &labels)
            }
            DatasetSource::Procedural { config, test_per_class } => {
                let train = config.per_class;
                let all = procedural(&ProceduralConfig {
                    per_class: train + test_per_class,
                    ..*config
                })?;
                if split == Split::Test && *test_per_class == 0 {
                    return invalid_setting("test_per_class", 0, "at least 1 to read the test split");
                }
                let per = train + test_per_class;
                let keep: Vec<usize> = (0..all.len())
                    .filter(|i| (i % per < train) == (split == Split::Train))
                    .collect();
                let mut set = all.subset(&keep);
                set.source = format!("{} {}", self, split_name(split));
                Ok(set)
            }
        }
    }
}

impl Default for DatasetSource {
    fn default() -> Self {
        DatasetSource::Procedural {
            config: DEFAULT_PROCEDURAL,
            test_per_class: default_test_per_class(),
        }
    }
}

/// `"train"` or `"test"`.
pub(crate) fn split_name(split: Split) -> &'static str {
    match split {
        Split::Train => "train",
        Split::Test => "test",
    }
}

fn idx_prefix(split: Split) -> &'static str {
    match split {
        Split::Train => "train",
        Split::Test => "t10k",
    }
}

fn idx_files(dir: &Path, split: Split) -> Option<(PathBuf, PathBuf)> {
    let prefix = idx_prefix(split);
    let find = |stem: String| {
        [dir.join(&stem), dir.join(format!("{stem}.gz"))]
            .into_iter()
            .find(|p| p.is_file())
    };
    Some((
        find(format!("{prefix}-images-idx3-ubyte"))?,
        find(format!("{prefix}-labels-idx1-ubyte"))?,
    ))
}

fn folder_split(root: &Path, split: Split) -> Result<PathBuf> {
    let named = root.join(split_name(split));
    if named.is_dir() {
        return Ok(named);
    }
    if root.join("train").is_dir() || root.join("test").is_dir() {
        return Err(Error::format(
            root,
            format!("the tree has no `{}` folder", split_name(split)),
        ));
    }
    match split {
        Split::Train => Ok(root.into()),
        Split::Test => Err(Error::format(
            root,
            "the tree has no `train`/`test` folders, so it only has a training split",
        )),
    }
}

fn default_folder_size(root: &Path) -> Result<usize> {
    let listing = folder::list_image_folder(root)?;
    for (_, files) in &listing {
        for file in files {
            if let Ok((w, h)) = image::image_dimensions(file) {
                return Ok((w.min(h) as usize).clamp(1, 256));
            }
        }
    }
    Err(Error::format(root, "no image in the tree could be read"))
}

fn cache_stem(path: &Path) -> String {
    let name: String = path
        .canonicalize()
        .unwrap_or_else(|_| path.into())
        .display()
        .to_string()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let tail: String = name
        .chars()
        .rev()
        .take(80)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    tail.trim_start_matches('_').to_string()
}

impl fmt::Display for DatasetSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatasetSource::Folder { path, size: None } => write!(f, "folder:{}", path.display()),
            DatasetSource::Folder { path, size: Some(s) } => write!(f, "folder:{} ({s} px)", path.display()),
            DatasetSource::Cifar { path } => write!(f, "cifar:{}", path.display()),
            DatasetSource::Idx { path } => write!(f, "idx:{}", path.display()),
            DatasetSource::Procedural { config, test_per_class } => write!(
                f,
                "procedural:classes={},per-class={},test-per-class={},size={},seed={},noise={}",
                config.classes, config.per_class, test_per_class, config.size, config.seed, config.noise
            ),
        }
    }
}

impl FromStr for DatasetSource {
    type Err = Error;

    /// `PATH`, `folder:PATH`, `cifar:PATH`, `idx:PATH` or `procedural[:key=value,...]` with keys
    /// `classes`, `per-class`, `test-per-class`, `size`, `seed`, `noise`.
    fn from_str(s: &str) -> Result<Self> {
        if let Some(rest) = s.strip_prefix("procedural") {
            let mut config = DEFAULT_PROCEDURAL;
            let mut test_per_class = default_test_per_class();
            let rest = rest.strip_prefix(':').unwrap_or(rest);
            for pair in rest.split(',').filter(|p| !p.is_empty()) {
                let (key, value) = pair
                    .split_once('=')
                    .ok_or_else(|| Error::invalid_setting("data", s, "procedural settings are key=value pairs"))?;
                let int = || {
                    value
                        .parse::<usize>()
                        .map_err(|_| Error::invalid_setting("data", pair, "a whole number"))
                };
                match key {
                    "classes" => config.classes = int()?,
                    "per-class" | "per_class" => config.per_class = int()?,
                    "test-per-class" | "test_per_class" => test_per_class = int()?,
                    "size" => config.size = int()?,
                    "seed" => config.seed = int()? as u64,
                    "noise" => {
                        config.noise = value
                            .parse()
                            .map_err(|_| Error::invalid_setting("data", pair, "a number"))?
                    }
                    _ => {
                        return invalid_setting(
                            "data",
                            pair,
                            "procedural keys are classes, per-class, test-per-class, size, seed, noise",
                        );
                    }
                }
            }
            config.validate()?;
            return Ok(DatasetSource::Procedural { config, test_per_class });
        }
        let explicit = |prefix: &str| s.strip_prefix(prefix).map(PathBuf::from);
        if let Some(path) = explicit("folder:") {
            return Ok(DatasetSource::Folder { path, size: None });
        }
        if let Some(path) = explicit("cifar:") {
            return Ok(DatasetSource::Cifar { path });
        }
        if let Some(path) = explicit("idx:") {
            return Ok(DatasetSource::Idx { path });
        }
        DatasetSource::detect(Path::new(s))
    }
}
