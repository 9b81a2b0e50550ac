//! Running a trained classifier over a dataset in batches: per-block and penultimate features,
//! and the objective's evaluation outputs, with bounded device memory.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::data::ImageSet;
use crate::data::augment::{ChannelStats, batch, eval_crop};
use crate::error::{Error, Result, invalid_setting};
use crate::model::{Classifier, PENULTIMATE};
use crate::objective::Objective;

/// How block outputs `[C, H, W]` are stored per example.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Pooling {
    /// Spatial mean: `[C]` per example (bounded size, for big layers). Default.
    #[default]
    Mean,
    /// The whole map `[C, H, W]` (what activation sparsity and full-resolution CKA read).
    None,
}

/// How images enter the network.
#[derive(Debug, Clone, PartialEq)]
pub struct InputSpec {
    /// Network input size in pixels (the evaluation crop).
    pub image_size: usize,
    /// Per-channel normalisation.
    pub normalization: ChannelStats,
}

impl InputSpec {
    /// The evaluation input of images `indices` of `set`: each image's evaluation crop
    /// ([`eval_crop`]), resized to the input size and normalised, on `device`.
    ///
    /// # Shapes
    /// - returns `[indices.len(), channels, image_size, image_size]`
    pub fn eval_batch(&self, set: &ImageSet, indices: &[usize], device: &Device) -> Tensor<4> {
        let crops: Vec<_> = indices
            .iter()
            .map(|&i| {
                let [h, w] = set.size(i);
                eval_crop(h, w, self.image_size)
            })
            .collect();
        batch(set, indices, &crops, self.image_size, &self.normalization, device)
    }
}

/// What a pass over a dataset produced.
#[derive(Debug, Clone, Default)]
pub struct Forward {
    /// `(name, per-example shape, values)` of each requested tap, `[examples, …]` row-major.
    pub layers: Vec<(String, Vec<usize>, Vec<f32>)>,
    /// The objective's evaluation outputs (logits), `[examples, classes]`, when asked for.
    pub outputs: Option<Vec<f32>>,
}

/// What to record in a pass over a dataset.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Taps to record: block names (`block1.0` …) and/or `penultimate`.
    pub taps: &'a [String],
    /// How block outputs are stored.
    pub pooling: Pooling,
    /// Record this objective's evaluation outputs too.
    pub objective: Option<&'a Objective>,
    /// Images per batch (bounds device memory).
    pub batch_size: usize,
}

/// One batch of a pass over a dataset, still on the device.
pub struct Batch {
    /// The images of the set in this batch.
    pub range: std::ops::Range<usize>,
    /// `(name, [batch, values], per-example shape)` of each requested tap, in network order.
    pub layers: Vec<(String, Tensor<2>, Vec<usize>)>,
    /// The objective's evaluation outputs, `[batch, classes]`, when asked for.
    pub outputs: Option<Tensor<2>>,
}

/// Runs `model` (evaluation mode) over `set` in batches, handing each batch's taps to `each`
/// while they are on the device (what streaming analyses consume without collecting a layer).
pub fn forward_each(
    model: &Classifier,
    set: &ImageSet,
    input: &InputSpec,
    request: &Request,
    device: &Device,
    each: &mut dyn FnMut(Batch) -> Result<()>,
) -> Result<()> {
    let Request {
        taps,
        pooling,
        objective,
        batch_size,
    } = *request;
    if batch_size == 0 {
        return invalid_setting("batch_size", 0, "at least 1");
    }
    if set.is_empty() {
        return Err(Error::TooFewExamples {
            analysis: "feature extraction",
            needed: 1,
            found: 0,
        });
    }
    let min = model.body.min_image_size();
    if input.image_size < min {
        return invalid_setting(
            "image_size",
            input.image_size,
            format!("at least {min} for this network (Inception v3 takes 75 px and more)"),
        );
    }
    let blocks = model.body.block_names();
    for tap in taps {
        if tap != PENULTIMATE && !blocks.iter().any(|b| b == tap) {
            return invalid_setting(
                "layer",
                format!("`{tap}`"),
                format!("one of this network's blocks ({}) or `penultimate`", blocks.join(", ")),
            );
        }
    }
    let model = model.valid();
    let want_block = |name: &str| taps.iter().any(|t| t == name);
    let want_penultimate = taps.iter().any(|t| t == PENULTIMATE);
    let n = set.len();
    let mut done = 0;
    while done < n {
        let end = (done + batch_size).min(n);
        let indices: Vec<usize> = (done..end).collect();
        let images = input.eval_batch(set, &indices, device);
        let acts = model.body.forward_taps(images, want_block);
        let mut layers: Vec<(String, Tensor<2>, Vec<usize>)> = Vec::new();
        for (name, x) in acts.blocks {
            let [b, c, h, w] = x.dims();
            match pooling {
                Pooling::Mean => layers.push((name, x.mean_dim(3).mean_dim(2).reshape([b, c]), vec![c])),
                Pooling::None => layers.push((name, x.reshape([b, c * h * w]), vec![c, h, w])),
            }
        }
        let outputs = objective.map(|objective| objective.outputs(acts.penultimate.clone(), &model.head));
        if want_penultimate {
            let width = acts.penultimate.dims()[1];
            layers.push((PENULTIMATE.to_string(), acts.penultimate, vec![width]));
        }
        each(Batch {
            range: done..end,
            layers,
            outputs,
        })?;
        done = end;
    }
    Ok(())
}

/// Runs `model` (evaluation mode) over `set` in batches, recording what `request` asks for.
/// `progress(done, total)` is called after each batch.
pub fn forward(
    model: &Classifier,
    set: &ImageSet,
    input: &InputSpec,
    request: &Request,
    device: &Device,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Forward> {
    let mut layers: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    let mut outputs = request.objective.map(|_| Vec::new());
    let n = set.len();
    forward_each(model, set, input, request, device, &mut |batch| {
        if let (Some(z), Some(out)) = (batch.outputs, outputs.as_mut()) {
            out.extend(read(z)?);
        }
        for (name, values, shape) in batch.layers {
            let values = read(values)?;
            match layers.iter_mut().find(|(n, _, _)| *n == name) {
                Some((_, _, all)) => all.extend(values),
                None => layers.push((name, shape, values)),
            }
        }
        progress(batch.range.end, n);
        Ok(())
    })?;
    Ok(Forward { layers, outputs })
}

fn read(t: Tensor<2>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Device(format!("{e:?}")))
}
