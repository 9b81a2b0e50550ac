//! `losslens extract`: the per-block and penultimate features of a trained run on a dataset
//! split, written as `.npz` or `.safetensors` with labels, the classifier's weights (`weights`,
//! `[classes, features]`), with `--logits` the network's outputs (`logits`, `[examples,
//! classes]`), and metadata.

use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use losslens_core::data::{DatasetSource, Split};
use losslens_core::features::{Array, ArrayData, FeatureFile, LABELS, WEIGHTS};
use losslens_core::inference::{self, Pooling, Request};
use losslens_core::model::PENULTIMATE;
use losslens_core::train::RunDir;

use losslens_core::device::DeviceChoice;

use crate::common::{default_cache_dir, select_device_cached};

/// Options of `losslens extract`.
#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// The run folder `losslens train` wrote.
    pub run: PathBuf,
    /// The dataset: PATH (format recognised), folder:PATH, cifar:PATH, idx:PATH or
    /// procedural[:...]; default the run's training data.
    #[arg(long)]
    pub data: Option<String>,
    /// Which split.
    #[arg(long, value_enum, default_value_t = Split::Test)]
    pub split: Split,
    /// Layers: `all` (every block and penultimate), or a comma-separated list such as
    /// `block4.2,penultimate`.
    #[arg(long, default_value = "all")]
    pub layers: String,
    /// How block outputs are stored.
    #[arg(long, value_enum, default_value_t = Pooling::Mean)]
    pub pool: Pooling,
    /// Only the first N images of the split.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Images per batch.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Output file (.npz or .safetensors).
    #[arg(long, short)]
    pub out: PathBuf,
    /// Device.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    /// Folder for decoded-image caches of ImageFolder datasets.
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Also write the network's outputs as the objective gives them (`logits`, `[examples,
    /// classes]`: what its accuracy is measured on), e.g. to compare networks' predictions.
    #[arg(long)]
    pub logits: bool,
    /// The weights kept at the end of this epoch (`train --keep-every`) instead of the best
    /// epoch's.
    #[arg(long)]
    pub epoch: Option<usize>,
}

/// Runs `losslens extract`.
pub fn run(args: ExtractArgs) -> Result<()> {
    // Refuse an unusable output name before any work.
    losslens_core::features::Format::from_path(&args.out)?;
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let selected = select_device_cached(args.device, args.cache_dir.as_deref())?;
    let run = RunDir::new(&args.run);
    if !run.exists() {
        bail!(
            "{}: not a run folder (no config.toml); train one with `losslens train`",
            args.run.display()
        );
    }
    let trained = match args.epoch {
        Some(epoch) => run.load_kept(epoch, &selected.device)?,
        None => run.load(&selected.device)?,
    };
    let source = match &args.data {
        Some(s) => s.parse::<DatasetSource>()?,
        None => trained.config.data.clone(),
    };
    let split = args.split;
    let cache = args.cache_dir.clone().unwrap_or_else(default_cache_dir);
    let mut set = source.load(split, Some(&cache))?;
    set.validate()?;
    let mut images = "all".to_string();
    if let Some(limit) = args.limit
        && limit < set.len()
    {
        let keep: Vec<usize> = (0..limit).collect();
        set = set.subset(&keep);
        images = format!("first {limit}");
    }
    let set = set.with_channels(trained.info.model.channels)?;
    let taps: Vec<String> = if args.layers == "all" {
        trained
            .info
            .model
            .block_names()
            .into_iter()
            .chain([PENULTIMATE.to_string()])
            .collect()
    } else {
        args.layers.split(',').map(|s| s.trim().to_string()).collect()
    };
    let pooling = args.pool;
    let bar = ProgressBar::new(set.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("extracting [{bar:30}] {pos}/{len} images, {per_sec}, eta {eta}")
            .expect("static template")
            .progress_chars("=> "),
    );
    let request = Request {
        taps: &taps,
        pooling,
        objective: args.logits.then_some(&trained.objective),
        batch_size: args.batch_size,
    };
    let forward = inference::forward(
        &trained.model,
        &set,
        &trained.input,
        &request,
        &selected.device,
        &mut |done, _| bar.set_position(done as u64),
    )?;
    bar.finish_and_clear();
    let n = set.len();
    let mut shapes = std::collections::BTreeMap::new();
    let mut arrays = Vec::new();
    for (name, shape, values) in forward.layers {
        let full: Vec<usize> = std::iter::once(n).chain(shape.iter().copied()).collect();
        shapes.insert(name.clone(), full.clone());
        arrays.push((name, Array::new(full, ArrayData::F32(values))));
    }
    if let Some(outputs) = forward.outputs {
        let classes = trained.info.classes.len();
        arrays.push((
            "logits".to_string(),
            Array::new(vec![n, classes], ArrayData::F32(outputs)),
        ));
    }
    arrays.push((LABELS.to_string(), Array::from_labels(&set.labels)));
    // The classifier as the objective applies it (rows L²-normalised for cosine softmax), so
    // `analyze collapse` and `analyze spectrum` find it in the file.
    let weights = trained.objective.classifier_rows(&trained.model.head); // [classes, features]
    let [classes, width] = weights.dims();
    let weights = weights
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| anyhow!("reading the classifier weights: {e:?}"))?;
    arrays.push((
        WEIGHTS.to_string(),
        Array::new(vec![classes, width], ArrayData::F32(weights)),
    ));
    let mut metadata = trained.feature_metadata((source.to_string(), split), &set, images, shapes, pooling);
    metadata.run = Some(args.run.clone());
    metadata.epoch = args.epoch;
    FeatureFile::new(&args.out, arrays, Some(serde_json::to_value(metadata)?)).save(&args.out)?;
    eprintln!(
        "wrote {} images × {} layers to {} (on {})",
        n,
        taps.len(),
        args.out.display(),
        selected.name
    );
    Ok(())
}
