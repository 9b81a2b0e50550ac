//! `losslens train`: train a network with one objective, from a TOML file and/or flags.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use losslens_core::data::DatasetSource;
use losslens_core::data::autoaugment::Policy;
use losslens_core::data::mixup::MixupConfig;
use losslens_core::device;
use losslens_core::model::Architecture;
use losslens_core::objective::ObjectiveConfig;
use losslens_core::train::collective::Collective;
use losslens_core::train::{Decay, Event, RunDir, TrainConfig, TrainOptions, TrainPrecision, train};

use losslens_core::device::DeviceChoice;

use crate::common::{default_cache_dir, select_device_cached};
use crate::progress::TrainProgress;

/// Learning-rate decay after the warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DecayArg {
    /// ×factor per epoch (the paper: 0.975).
    Exponential,
    /// Cosine annealing to zero.
    Cosine,
}

/// Options of `losslens train`. Flags override the configuration file; unset options take the
/// paper's recipe (see `TrainConfig` in the README).
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// A TOML configuration (keys as in the run's saved `config.toml`; unknown keys are refused).
    pub config: Option<PathBuf>,
    /// The run folder (configuration, metrics, checkpoints, weights).
    #[arg(long, short)]
    pub out: PathBuf,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Training data: PATH (format recognised), folder:PATH, cifar:PATH, idx:PATH, or
    /// procedural[:classes=10,per-class=500,size=32,seed=0].
    #[arg(long)]
    pub data: Option<String>,
    /// Network: resnet18, resnet34, resnet50, small, inception-v3 (inputs of 75 px and more;
    /// 299 px is its native size: --image-size 299).
    #[arg(long)]
    pub model: Option<Architecture>,
    /// Train Inception v3 with its auxiliary classifier (loss weight 0.4 under the run's
    /// objective; needs --image-size 299).
    #[arg(long)]
    pub aux_head: bool,
    /// Objective, e.g. softmax, cosine-softmax:temperature=0.05 or a combination such as
    /// cosine-softmax+dropout (see `losslens objectives`).
    #[arg(long)]
    pub objective: Option<ObjectiveConfig>,
    /// Epochs (default: the objective's epochs in the paper's Table A.1).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Optimiser steps instead of epochs (rounded up to whole epochs).
    #[arg(long, conflicts_with = "epochs")]
    pub steps: Option<usize>,
    /// Fine-tune a finished run (its folder): its network with a new classifier for this data;
    /// input size, stem and normalisation follow the run, and gray images become RGB for an
    /// RGB network. `--model` defaults to the run's.
    #[arg(long)]
    pub pretrained: Option<PathBuf>,
    /// Plain momentum instead of Nesterov's.
    #[arg(long)]
    pub no_nesterov: bool,
    /// Examples per step (default 256).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Peak learning rate per 256 examples (default 0.1; scaled linearly with the batch).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Weight decay on convolution and linear weights (default 8e-5).
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Epochs of linear warm-up (default 10).
    #[arg(long)]
    pub warmup_epochs: Option<f64>,
    /// Decay after the warm-up (default exponential).
    #[arg(long, value_enum)]
    pub decay: Option<DecayArg>,
    /// Factor per epoch of the exponential decay (default 0.975).
    #[arg(long)]
    pub decay_factor: Option<f64>,
    /// EMA decay per step; 0 turns the average off (default 0.9999).
    #[arg(long)]
    pub ema_decay: Option<f64>,
    /// Fraction of each class held out for early stopping (default 0.04).
    #[arg(long)]
    pub holdout: Option<f64>,
    /// Train on a class-stratified subset of this many images.
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Network input size in pixels (default: the stored size, 224 for ≥ 256 px images).
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Seed (default 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Keep the evaluated weights of every N-th epoch as kept/epoch-NNNN.bpk, for training
    /// dynamics (default: none kept).
    #[arg(long, value_name = "N")]
    pub keep_every: Option<usize>,
    /// Arithmetic of the training steps: auto (mixed where the GPU has f16 tensor cores, f32
    /// elsewhere), f32, or mixed (f16 convolutions, f32 master weights, dynamic loss scaling).
    #[arg(long, value_enum)]
    pub precision: Option<TrainPrecision>,
    /// Augmentation after the crops: `autoaugment` (the ImageNet policy;
    /// `autoaugment:policy=cifar10|svhn`), `mixup` or `mixup:alpha=0.3` (Mixup with
    /// λ ~ Beta(α, α), default α = 0.2), both joined by `+`, or `none`.
    #[arg(long)]
    pub augment: Option<AugmentArg>,
    /// Device to train on.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    /// Data-parallel training on this many GPUs of the machine (discrete GPUs 0..N through
    /// wgpu): each step splits its batch between them.
    #[arg(long, default_value_t = 1)]
    pub gpus: usize,
    /// Data-parallel training across this many processes, one per machine, started by `mpirun`
    /// (which gives each its rank and connects them; builds with the `mpi` feature): each step's
    /// batch is split between them, the gradients are summed through MPI, and rank 0 alone
    /// writes the run folder, which must be on storage every machine reads for `--resume`.
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,
    /// Folder for decoded-image caches of ImageFolder datasets
    /// (default $XDG_CACHE_HOME/losslens/datasets or ~/.cache/losslens/datasets).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Print one JSON object with the outcome on stdout.
    #[arg(long)]
    pub json: bool,
}

impl TrainArgs {
    fn any_setting(&self) -> bool {
        self.config.is_some()
            || self.data.is_some()
            || self.model.is_some()
            || self.objective.is_some()
            || self.epochs.is_some()
            || self.steps.is_some()
            || self.pretrained.is_some()
            || self.no_nesterov
            || self.batch_size.is_some()
            || self.lr.is_some()
            || self.weight_decay.is_some()
            || self.warmup_epochs.is_some()
            || self.decay.is_some()
            || self.decay_factor.is_some()
            || self.ema_decay.is_some()
            || self.holdout.is_some()
            || self.train_limit.is_some()
            || self.image_size.is_some()
            || self.seed.is_some()
            || self.keep_every.is_some()
            || self.precision.is_some()
            || self.augment.is_some()
    }

    /// The configuration: the file (or defaults), then the flags.
    pub fn config(&self) -> Result<TrainConfig> {
        let mut c = match &self.config {
            Some(path) => read_config(path)?,
            None => TrainConfig::default(),
        };
        if let Some(data) = &self.data {
            c.data = data.parse::<DatasetSource>()?;
        }
        if let Some(path) = &self.pretrained {
            c.pretrained = Some(path.clone());
            if self.model.is_none() && self.config.is_none() {
                c.model = RunDir::new(path)
                    .info()
                    .with_context(|| format!("--pretrained {}: not a run folder", path.display()))?
                    .model
                    .architecture;
            }
        }
        if let Some(m) = self.model {
            c.model = m;
        }
        if self.no_nesterov {
            c.nesterov = false;
        }
        if let Some(o) = self.objective {
            c.objective = o;
        }
        macro_rules! set {
            ($($flag:ident => $field:ident),*) => {$(
                if let Some(v) = self.$flag { c.$field = v; }
            )*};
        }
        set!(batch_size => batch_size, lr => learning_rate, weight_decay => weight_decay,
             warmup_epochs => warmup_epochs, ema_decay => ema_decay, holdout => holdout_fraction,
             seed => seed);
        if self.epochs.is_some() {
            c.epochs = self.epochs;
            c.steps = None;
        }
        if self.steps.is_some() {
            c.steps = self.steps;
            c.epochs = None;
        }
        if self.train_limit.is_some() {
            c.train_limit = self.train_limit;
        }
        if self.image_size.is_some() {
            c.image_size = self.image_size;
        }
        if self.keep_every.is_some() {
            c.keep_every = self.keep_every;
        }
        if let Some(p) = self.precision {
            c.precision = p;
        }
        if self.aux_head {
            c.aux_head = true;
        }
        if let Some(augment) = self.augment {
            c.autoaugment = augment.autoaugment;
            c.mixup = augment.mixup;
        }
        match (self.decay, self.decay_factor) {
            (Some(DecayArg::Cosine), Some(_)) => bail!("--decay-factor applies to --decay exponential"),
            (Some(DecayArg::Cosine), None) => c.decay = Decay::Cosine,
            (Some(DecayArg::Exponential), f) => {
                c.decay = Decay::Exponential {
                    factor: f.unwrap_or(0.975),
                }
            }
            (None, Some(factor)) => c.decay = Decay::Exponential { factor },
            (None, None) => {}
        }
        c.validate()?;
        Ok(c)
    }
}

/// `--augment`: AutoAugment with its policy and Mixup with its setting, each or both, or none.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AugmentArg {
    /// AutoAugment's policy.
    pub autoaugment: Option<Policy>,
    /// Mixup's setting.
    pub mixup: Option<MixupConfig>,
}

impl std::str::FromStr for AugmentArg {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let mut augment = AugmentArg::default();
        if s.trim() == "none" {
            return Ok(augment);
        }
        for term in s.split('+').map(str::trim) {
            let (name, params) = term.split_once(':').unwrap_or((term, ""));
            let pairs = params.split(',').map(str::trim).filter(|p| !p.is_empty());
            match name.trim() {
                "autoaugment" if augment.autoaugment.is_none() => {
                    let mut policy = Policy::Imagenet;
                    for pair in pairs {
                        match pair.split_once('=') {
                            Some(("policy", value)) => {
                                policy = serde_json::from_value(serde_json::Value::String(value.trim().into()))
                                    .map_err(|_| {
                                        anyhow::anyhow!(
                                            "`{s}`: AutoAugment's policy is imagenet, cifar10 or svhn, not `{value}`"
                                        )
                                    })?
                            }
                            _ => bail!("`{s}`: AutoAugment takes `policy=imagenet|cifar10|svhn`, not `{pair}`"),
                        }
                    }
                    augment.autoaugment = Some(policy);
                }
                "mixup" if augment.mixup.is_none() => {
                    let mut mixup = MixupConfig::default();
                    for pair in pairs {
                        match pair.split_once('=') {
                            Some(("alpha", value)) => {
                                mixup.alpha = value
                                    .trim()
                                    .parse()
                                    .with_context(|| format!("`{s}`: alpha `{value}` is not a number"))?
                            }
                            _ => bail!("`{s}`: Mixup takes `alpha=<number>`, not `{pair}`"),
                        }
                    }
                    mixup.validate()?;
                    augment.mixup = Some(mixup);
                }
                "autoaugment" | "mixup" => bail!("`{s}`: `{name}` appears twice"),
                _ => bail!(
                    "unknown augmentation `{term}` in `{s}`: use autoaugment[:policy=imagenet|cifar10|svhn], \
                     mixup[:alpha=0.2], both joined by `+`, or none"
                ),
            }
        }
        Ok(augment)
    }
}

/// Reads a TOML training configuration.
pub fn read_config(path: &std::path::Path) -> Result<TrainConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Runs `losslens train`.
pub fn run(args: TrainArgs) -> Result<()> {
    let run_dir = RunDir::new(&args.out);
    let config = if args.resume && !args.any_setting() && run_dir.exists() {
        run_dir.config()?
    } else {
        args.config()?
    };
    let selected = select_device_cached(args.device, args.cache_dir.as_deref())?;
    if args.gpus == 0 {
        bail!("--gpus must be at least 1");
    }
    if args.gpus > 1 && selected.kind != "gpu" {
        bail!(
            "--gpus {} needs GPUs, but training would run on {}",
            args.gpus,
            selected.name
        );
    }
    let nodes = crate::nodes::join(args.nodes)?;
    let rank = nodes.as_ref().map_or(0, |n| n.rank());
    let options = TrainOptions {
        resume: args.resume,
        stop_after_epoch: None,
        cache_dir: Some(args.cache_dir.clone().unwrap_or_else(default_cache_dir)),
        replicas: device::more_gpus(args.gpus)?,
        cancel: None,
        collective: nodes.clone().map(|n| n as std::rc::Rc<dyn Collective>),
    };
    // Rank 0 reports; the other processes are quiet.
    let quiet = args.json || rank > 0;
    let mut progress = TrainProgress::new("", quiet);
    let mut observer = |event: Event| {
        if let Event::Start {
            config,
            info,
            start_epoch,
            ..
        } = &event
        {
            progress.println(format!(
                "training {} with {} on {} ({} images, {} held out, {} classes, {} px) on {}",
                config.model,
                config.objective,
                config.data,
                info.train_images,
                info.holdout_images,
                info.classes.len(),
                info.image_size,
                selected.name
            ));
            if *start_epoch > 0 {
                progress.println(format!("resuming after epoch {start_epoch} of {}", info.epochs));
            }
        }
        progress.event(&event);
    };
    let summary = match train(&config, &args.out, &options, &selected.device, &mut observer) {
        Ok(summary) => summary,
        Err(e) => match &nodes {
            // The other processes would wait for this one's gradients: end them all.
            Some(nodes) => {
                eprintln!("error on rank {rank} of {}: {e}", args.nodes);
                nodes.abort(1)
            }
            None => return Err(e.into()),
        },
    };
    progress.finish();
    if rank > 0 {
        return Ok(());
    }
    let info = &summary.info;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "out": args.out,
                "device": selected.kind,
                "device_name": selected.name,
                "run": info,
                "history": summary.history,
            })
        );
    } else {
        eprintln!(
            "done: {} epochs; best epoch {} (holdout accuracy {}); weights in {}",
            info.epochs_done,
            info.best_epoch.map_or("-".into(), |e| e.to_string()),
            info.best_holdout_accuracy.map_or("-".into(), |a| format!("{a:.4}")),
            run_dir.model_path().display()
        );
    }
    Ok(())
}
