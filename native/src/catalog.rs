//! `losslens objectives` and `losslens model`: what can be trained, with which defaults, and what
//! each network's taps look like.

use anyhow::{Context, Result};
use burn::tensor::Device;
use clap::Args;
use losslens_core::model::{Architecture, ModelConfig, Stem};
use losslens_core::objective::ObjectiveConfig;
use serde_json::json;

use crate::common::print_json;
use crate::table::Table;

/// Arguments of `losslens objectives`.
#[derive(Debug, Args)]
pub struct ObjectivesArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// Lists the nine objectives with their default hyperparameters, in the spelling `--objective`
/// and study files accept.
pub fn objectives(args: ObjectivesArgs) -> Result<()> {
    let defaults = ObjectiveConfig::paper_defaults();
    if args.json {
        let list: Vec<_> = defaults
            .iter()
            .map(|c| json!({"name": c.name(), "title": c.title(), "spec": c.to_string(), "config": c}))
            .collect();
        print_json(&json!({ "objectives": list }));
        return Ok(());
    }
    let mut table = Table::new(["objective", "paper name", "defaults (override as name:key=value,...)"]);
    for c in &defaults {
        let params: Vec<String> = c.hyperparameters().iter().map(|(k, v)| format!("{k}={v}")).collect();
        table.row([c.name(), c.title(), params.join(", ")]);
    }
    println!("{}", table.render());
    println!(
        "Combine them with `+` (Table C.4): one loss (softmax, label-smoothing, sigmoid, squared-error), at most \
         one normalisation (logit-norm, cosine-softmax) and any of dropout, extra-l2, logit-penalty, e.g. \
         cosine-softmax+dropout:keep-prob=0.8 or label-smoothing+logit-penalty."
    );
    Ok(())
}

/// Arguments of `losslens model`.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// The architecture: resnet18, resnet34, resnet50, small or inception-v3.
    architecture: Architecture,
    /// With Inception v3's auxiliary classifier (counted in the parameters).
    #[arg(long)]
    aux_head: bool,
    /// Number of classes of the final layer.
    #[arg(long, default_value_t = 1000)]
    classes: usize,
    /// Input image size in pixels (square).
    #[arg(long, default_value_t = 224)]
    image_size: usize,
    /// Input stem: imagenet (7×7/2 conv + max-pool) or cifar (3×3/1 conv); by default imagenet
    /// from 64 px up.
    #[arg(long, value_parser = parse_stem)]
    stem: Option<Stem>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

fn parse_stem(s: &str) -> std::result::Result<Stem, String> {
    match s {
        "imagenet" => Ok(Stem::ImageNet),
        "cifar" => Ok(Stem::Cifar),
        other => Err(format!("`{other}` is not a stem; use imagenet or cifar")),
    }
}

/// Prints a network's tap names, per-example shapes and trainable parameter count.
pub fn model(args: ModelArgs) -> Result<()> {
    let stem = args.stem.unwrap_or_else(|| Stem::for_image_size(args.image_size));
    let config = ModelConfig::new(args.architecture, stem, args.classes).with_aux_head(args.aux_head);
    config.validate().context("model settings")?;
    if args.image_size < 8 {
        anyhow::bail!("--image-size {} is too small; use at least 8 pixels", args.image_size);
    }
    config.check_image_size(args.image_size).context("model settings")?;
    let taps = config.tap_shapes([args.image_size, args.image_size]);
    let params = config.init(&Device::flex())?.trainable_params();
    if args.json {
        let taps: Vec<_> = taps
            .iter()
            .map(|(name, shape)| json!({"name": name, "shape": shape}))
            .collect();
        print_json(&json!({
            "architecture": args.architecture.name(),
            "stem": config.layout().map(|_| stem),
            "aux_head": config.aux_head,
            "classes": args.classes,
            "image_size": args.image_size,
            "trainable_parameters": params,
            "taps": taps,
        }));
        return Ok(());
    }
    let kind = match config.layout() {
        Some(_) => format!("{} stem", stem.name()),
        None if config.aux_head => "with its auxiliary classifier".to_string(),
        None => "no auxiliary classifier".to_string(),
    };
    println!(
        "{} ({kind}), {} classes, {}×{} inputs: {} trainable parameters",
        args.architecture, args.classes, args.image_size, args.image_size, params
    );
    let mut table = Table::new(["tap", "shape per example", "values"]);
    for (name, shape) in &taps {
        let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
        table.row([
            name.clone(),
            dims.join(" × "),
            shape.iter().product::<usize>().to_string(),
        ]);
    }
    println!("{}", table.render());
    Ok(())
}
