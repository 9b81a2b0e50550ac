//! CKA between the networks of a study (Fig. 2), measured as the paper measures it: minibatch
//! CKA (unbiased HSIC averaged over minibatches, Nguyen et al. 2021) of every block's whole
//! (flattened) output and the penultimate layer, on held-out images (the source test split), in
//! minibatches of 1,500 over 10 passes, each in a new shuffled order.
//!
//! - **Fig. 2b**: at each layer, CKA between every pair of the main objectives' networks (the
//!   diagonal compares a network with itself; different seeds of one objective sit side by side).
//! - **Fig. 2a**: CKA between every block of a reference network (the first softmax run) and
//!   every block of a network of each main objective (another seed where there is one), another
//!   softmax network, and the paper's control: a network at initialisation whose batch-norm
//!   statistics were measured on training images.
//!
//! The images are streamed: per minibatch, each network's blocks are run over it, each block's
//! output is reduced to its `m × m` Gram matrix on the device, and the HSIC terms of every pair
//! are read back as numbers. Block outputs are held in groups of at most [`GROUP_VALUES`] values
//! (one forward pass of the minibatch per group), so memory does not grow with the layers' size.

use std::path::Path;

use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::analysis::cka::off_diagonal_mask;
use crate::analysis::minibatch_cka::{Hsic1Terms, batch_sizes, permutation, zero_diagonal_gram};
use crate::compute::Compute;
use crate::data::ImageSet;
use crate::error::{Error, Result};
use crate::inference::{self, InputSpec, Pooling, Request};
use crate::model::{Classifier, ModelConfig};
use crate::study::config::StudyConfig;
use crate::study::results::{BlockCka, LayerCka, RunResult};
use crate::study::store::{Record, Saved, key_of};
use crate::train::RunDir;
use crate::train::batch_norm::{estimate_batch_norm, initial_network};

/// Most block-output values of one minibatch held on the device at once: 2²⁸ (1 GiB in `f32`);
/// a single larger block is held whole.
pub const GROUP_VALUES: usize = 1 << 28;

/// A network compared by CKA.
pub(crate) struct Network {
    /// How results name it.
    pub label: String,
    /// The network.
    pub model: Classifier,
    /// How images enter it.
    pub input: InputSpec,
    /// Its shape.
    pub config: ModelConfig,
}

impl Network {
    /// Its layers and the values of each per example: every block, then `penultimate`.
    fn taps(&self) -> Vec<(String, usize)> {
        let size = self.input.image_size;
        self.config
            .tap_shapes([size, size])
            .into_iter()
            .map(|(name, shape)| (name, shape.iter().product()))
            .collect()
    }
}

/// How the minibatches are made.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CkaSettings {
    /// Examples per minibatch (at least 4).
    pub batch_size: usize,
    /// Passes over the images, each shuffled anew (pass `p` with seed `p`).
    pub passes: usize,
    /// Images per forward pass of a network (bounds the activations of a pass).
    pub inference_batch: usize,
}

/// What [`network_cka`] found.
pub(crate) struct NetworkCka {
    /// The layers, in network order.
    pub layers: Vec<String>,
    /// `same_layer[l][i][j]`: CKA between networks `i` and `j` at layer `l`.
    pub same_layer: Vec<Vec<Vec<f64>>>,
    /// For each requested pair `(a, b)`: `[layer of a][layer of b]`.
    pub blocks: Vec<Vec<Vec<f64>>>,
    /// The largest minibatch.
    pub batch_size: usize,
}

/// Minibatch CKA of every layer between every pair of `networks` (same architecture), and
/// between every layer of `a` and every layer of `b` for each `(a, b)` in `pairs`, over `set`.
/// `progress(done, total)` counts network passes over minibatches.
///
/// # Errors
/// Networks of different layouts, fewer than 4 images, or a layer with no variance within the
/// minibatches (CKA undefined).
pub(crate) fn network_cka(
    networks: &[Network],
    pairs: &[(usize, usize)],
    set: &ImageSet,
    settings: &CkaSettings,
    compute: &Compute,
    device: &Device,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<NetworkCka> {
    let n = set.len();
    if n < 4 {
        return Err(Error::TooFewExamples {
            analysis: "CKA between the networks",
            needed: 4,
            found: n,
        });
    }
    let taps = networks.first().map(Network::taps).unwrap_or_default();
    if let Some(other) = networks.iter().find(|net| net.taps() != taps) {
        return Err(Error::invalid_setting(
            "networks",
            &other.label,
            "networks of one layout and input size (CKA pairs their layers)",
        ));
    }
    let (count, layers) = (networks.len(), taps.len());
    let sizes = batch_sizes(n, settings.batch_size);
    let mut same = vec![vec![0.0f64; count * count]; layers];
    let mut blocks = vec![vec![0.0f64; layers * layers]; pairs.len()];
    // A fixed power-of-two scale per network and layer, from the first minibatch (CKA does not
    // change; every minibatch's HSIC is scaled alike, so their mean is too): no sum of fourth
    // powers overflows in f32.
    let mut scales: Vec<Vec<Option<f64>>> = vec![vec![None; layers]; count];
    let total = settings.passes * sizes.len() * count;
    let mut done = 0;
    for pass in 0..settings.passes {
        let order = permutation(n, pass as u64);
        let mut start = 0;
        for &m in &sizes {
            let images = set.subset(&order[start..start + m]);
            start += m;
            let mask = off_diagonal_mask(compute, m);
            let mut grams = Vec::with_capacity(count);
            for (k, network) in networks.iter().enumerate() {
                grams.push(network_grams(
                    network,
                    &taps,
                    &images,
                    &mask,
                    &mut scales[k],
                    settings.inference_batch,
                    compute,
                    device,
                )?);
                done += 1;
                progress(done, total);
            }
            for (l, sums) in same.iter_mut().enumerate() {
                let g = Tensor::cat(grams.iter().map(|net| net[l].0.clone()).collect(), 0); // [count, m²]
                let s = Tensor::cat(grams.iter().map(|net| net[l].1.clone()).collect(), 0); // [count, m]
                let terms = pollster::block_on(Hsic1Terms::pairs(compute, &g, &s, &g, &s))?;
                for (acc, value) in sums.iter_mut().zip(terms.finish(m)) {
                    *acc += value;
                }
            }
            for (sums, &(a, b)) in blocks.iter_mut().zip(pairs) {
                let stack = |k: usize| {
                    (
                        Tensor::cat(grams[k].iter().map(|(g, _)| g.clone()).collect(), 0), // [L, m²]
                        Tensor::cat(grams[k].iter().map(|(_, s)| s.clone()).collect(), 0), // [L, m]
                    )
                };
                let ((ga, sa), (gb, sb)) = (stack(a), stack(b));
                let terms = pollster::block_on(Hsic1Terms::pairs(compute, &ga, &sa, &gb, &sb))?;
                for (acc, value) in sums.iter_mut().zip(terms.finish(m)) {
                    *acc += value;
                }
            }
        }
    }
    // Each network's own HSIC per layer (the diagonals) normalises every pair it is part of.
    let own = |k: usize, l: usize| same[l][k * count + k];
    for (k, network) in networks.iter().enumerate() {
        if let Some(l) = (0..layers).find(|&l| own(k, l).is_nan() || own(k, l) <= 0.0) {
            return Err(Error::degenerate(
                format!("{} at layer {}", network.label, taps[l].0),
                "the layer has no variance within minibatches (its unbiased HSIC is not positive), so CKA is \
                 undefined; `analysis.cka_passes = 0` skips CKA between the networks",
            ));
        }
    }
    let same_layer = (0..layers)
        .map(|l| {
            (0..count)
                .map(|i| {
                    (0..count)
                        .map(|j| {
                            // Symmetric by definition; the two products differ only by rounding.
                            let cross = 0.5 * (same[l][i * count + j] + same[l][j * count + i]);
                            if i == j {
                                1.0
                            } else {
                                cross / (own(i, l) * own(j, l)).sqrt()
                            }
                        })
                        .collect()
                })
                .collect()
        })
        .collect();
    let blocks = blocks
        .iter()
        .zip(pairs)
        .map(|(sums, &(a, b))| {
            (0..layers)
                .map(|i| {
                    (0..layers)
                        .map(|j| sums[i * layers + j] / (own(a, i) * own(b, j)).sqrt())
                        .collect()
                })
                .collect()
        })
        .collect();
    Ok(NetworkCka {
        layers: taps.into_iter().map(|(name, _)| name).collect(),
        same_layer,
        blocks,
        batch_size: sizes[0],
    })
}

/// One network's zero-diagonal Gram matrix and its row sums at every layer for one minibatch.
///
/// # Shapes
/// - returns, per layer: `([1, m²], [1, m])`
#[allow(clippy::too_many_arguments)]
fn network_grams(
    network: &Network,
    taps: &[(String, usize)],
    images: &ImageSet,
    mask: &Tensor<2>,
    scales: &mut [Option<f64>],
    inference_batch: usize,
    compute: &Compute,
    device: &Device,
) -> Result<Vec<(Tensor<2>, Tensor<2>)>> {
    let m = images.len();
    let mut out = Vec::with_capacity(taps.len());
    // Groups of consecutive layers whose outputs for the minibatch fit in GROUP_VALUES.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut held = 0usize;
    for (l, (_, values)) in taps.iter().enumerate() {
        let size = values.saturating_mul(m);
        match groups.last_mut() {
            Some(group) if held.saturating_add(size) <= GROUP_VALUES => {
                group.push(l);
                held += size;
            }
            _ => {
                groups.push(vec![l]);
                held = size;
            }
        }
    }
    for group in groups {
        let names: Vec<String> = group.iter().map(|&l| taps[l].0.clone()).collect();
        let mut parts: Vec<Vec<Tensor<2>>> = vec![Vec::new(); names.len()];
        let request = Request {
            taps: &names,
            pooling: Pooling::None,
            objective: None,
            batch_size: inference_batch,
        };
        inference::forward_each(&network.model, images, &network.input, &request, device, &mut |batch| {
            for (name, values, _) in batch.layers {
                if let Some(i) = names.iter().position(|n| *n == name) {
                    parts[i].push(values);
                }
            }
            Ok(())
        })?;
        for (&l, parts) in group.iter().zip(parts) {
            let x = Tensor::cat(parts, 0).cast(compute.precision.dtype()); // [m, P]
            let scale = match scales[l] {
                Some(scale) => scale,
                None => {
                    let max = pollster::block_on(compute.read(x.clone().abs().max()))?;
                    let max = max.first().copied().unwrap_or(0.0);
                    let scale = if max.is_finite() && max > 0.0 {
                        2f64.powi((-max.log2().round()).clamp(-1000.0, 1000.0) as i32)
                    } else {
                        1.0
                    };
                    scales[l] = Some(scale);
                    scale
                }
            };
            out.push(pollster::block_on(zero_diagonal_gram(
                compute,
                x.mul_scalar(scale),
                mask,
            ))?);
        }
    }
    Ok(out)
}

/// What `out/cka.json` holds: Fig. 2 of a study, keyed by the networks' settings and the CKA
/// settings, so a finished study does not compute it again.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SavedCka {
    cka: Vec<LayerCka>,
    blocks: Vec<BlockCka>,
    images: usize,
    batch_size: usize,
}

/// CKA between the networks of a study's main objectives (`runs`, trained in `out/runs/`) and
/// the control network, on `set` (source test images), reused from `out/cka.json` while nothing
/// it depends on changed. `training` (source training images) measures the control network's
/// batch-norm statistics. Returns Fig. 2b, Fig. 2a and the largest minibatch.
#[allow(clippy::too_many_arguments)]
pub(crate) fn study_cka(
    study: &StudyConfig,
    out: &Path,
    runs: &[&RunResult],
    set: &ImageSet,
    training: &ImageSet,
    compute: &Compute,
    device: &Device,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Vec<LayerCka>, Vec<BlockCka>, usize)> {
    let analysis = &study.analysis;
    if analysis.cka_passes == 0 || runs.len() < 2 {
        return Ok((Vec::new(), Vec::new(), 0));
    }
    let dirs: Vec<RunDir> = runs
        .iter()
        .map(|r| {
            RunDir::new(
                out.join("runs")
                    .join(format!("{}-s{}", crate::study::slug(&r.objective), r.seed)),
            )
        })
        .collect();
    let configs = dirs.iter().map(RunDir::config).collect::<Result<Vec<_>>>()?;
    let record = Record::new(
        out.join("cka.json"),
        key_of(&serde_json::json!({
            "runs": runs.iter().map(|r| r.label()).collect::<Vec<_>>(),
            "configs": configs,
            "source": study.source,
            "test_limit": analysis.test_limit,
            "cka_images": analysis.cka_images,
            "cka_batch_size": analysis.cka_batch_size,
            "cka_passes": analysis.cka_passes,
            "control_images": training.len(),
        })),
    );
    if let Saved::Same(saved) = record.read::<SavedCka>() {
        return Ok((saved.cka, saved.blocks, saved.batch_size));
    }
    let mut networks = Vec::with_capacity(runs.len() + 1);
    for (run, dir) in runs.iter().zip(&dirs) {
        let trained = dir.load(device)?;
        networks.push(Network {
            label: run.label(),
            model: trained.model,
            input: trained.input,
            config: trained.info.model,
        });
    }
    // The reference: the first softmax run (else the first run); its partners: a run of every
    // main objective, from another initialisation where there is one.
    let reference = runs.iter().position(|r| r.kind == "softmax").unwrap_or(0);
    let mut objectives: Vec<&str> = Vec::new();
    for run in runs {
        if !objectives.contains(&run.objective.as_str()) {
            objectives.push(&run.objective);
        }
    }
    let mut pairs = Vec::new();
    let mut other_seed = None;
    for objective in objectives {
        let of: Vec<usize> = (0..runs.len()).filter(|&i| runs[i].objective == objective).collect();
        let partner = of
            .iter()
            .copied()
            .find(|&i| runs[i].seed != runs[reference].seed)
            .or_else(|| {
                of.first()
                    .copied()
                    .filter(|&i| runs[i].objective != runs[reference].objective)
            });
        if let Some(partner) = partner {
            pairs.push((reference, partner));
            if runs[partner].objective == runs[reference].objective {
                other_seed = Some(configs[partner].seed);
            }
        }
    }
    // The control: the initial weights of another softmax run where there is one (else the
    // reference's own), with batch-norm statistics measured on training images.
    let seed = other_seed.unwrap_or(configs[reference].seed);
    let shape = networks[reference].config;
    let control = estimate_batch_norm(
        initial_network(&shape, seed, device)?,
        training,
        &networks[reference].input,
        analysis.batch_size,
        seed,
        device,
    )?;
    networks.push(Network {
        label: format!(
            "initialisation (seed {seed}; batch-norm statistics of {} training images)",
            training.len()
        ),
        model: control,
        input: networks[reference].input.clone(),
        config: shape,
    });
    pairs.push((reference, networks.len() - 1));
    let settings = CkaSettings {
        batch_size: analysis.cka_batch_size,
        passes: analysis.cka_passes,
        inference_batch: analysis.batch_size,
    };
    let found = network_cka(&networks, &pairs, set, &settings, compute, device, progress)?;
    let mains = runs.len();
    let labels: Vec<String> = runs.iter().map(|r| r.label()).collect();
    let cka = found
        .layers
        .iter()
        .zip(&found.same_layer)
        .map(|(layer, values)| LayerCka {
            layer: layer.clone(),
            runs: labels.clone(),
            values: values.iter().take(mains).map(|row| row[..mains].to_vec()).collect(),
            images: set.len(),
        })
        .collect();
    let blocks = pairs
        .iter()
        .zip(found.blocks)
        .map(|(&(a, b), values)| BlockCka {
            a: networks[a].label.clone(),
            b: networks[b].label.clone(),
            layers: found.layers.clone(),
            values,
        })
        .collect();
    let saved = SavedCka {
        cka,
        blocks,
        images: set.len(),
        batch_size: found.batch_size,
    };
    record.write(&saved)?;
    Ok((saved.cka, saved.blocks, saved.batch_size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{MinibatchCkaConfig, minibatch_cka};
    use crate::data::augment::ChannelStats;
    use crate::data::{ProceduralConfig, procedural};
    use crate::features::Layer;
    use crate::model::{Architecture, Stem};

    fn network(seed: u64, device: &Device) -> Network {
        let config = ModelConfig::new(Architecture::Small, Stem::Cifar, 4);
        Network {
            label: format!("seed {seed}"),
            model: initial_network(&config, seed, device).unwrap(),
            input: InputSpec {
                image_size: 8,
                normalization: ChannelStats {
                    mean: vec![0.5; 3],
                    std: vec![0.25; 3],
                },
            },
            config,
        }
    }

    /// Every layer of `network` on `set`, flattened, the images of each pass one after the
    /// other in that pass's shuffled order.
    fn passes_of(network: &Network, set: &ImageSet, passes: usize, device: &Device) -> Vec<Layer> {
        let taps: Vec<String> = network.taps().into_iter().map(|(name, _)| name).collect();
        let request = Request {
            taps: &taps,
            pooling: Pooling::None,
            objective: None,
            batch_size: 7,
        };
        let forward =
            inference::forward(&network.model, set, &network.input, &request, device, &mut |_, _| {}).unwrap();
        forward
            .layers
            .into_iter()
            .map(|(name, shape, values)| {
                let width: usize = shape.iter().product();
                let mut rows = Vec::new();
                for pass in 0..passes {
                    for i in permutation(set.len(), pass as u64) {
                        rows.extend_from_slice(&values[i * width..(i + 1) * width]);
                    }
                }
                Layer::from_f32(name, passes * set.len(), width, rows)
            })
            .collect()
    }

    /// The streamed, multi-pass estimate is minibatch CKA (golden-tested against numpy) of the
    /// flattened outputs read in the same order: per layer across networks (Fig. 2b) and across
    /// the layers of two networks (Fig. 2a).
    #[test]
    fn streamed_passes_are_minibatch_cka_of_the_flattened_outputs() {
        let device = Device::flex();
        let compute = Compute::cpu();
        let set = procedural(&ProceduralConfig {
            classes: 4,
            per_class: 10,
            size: 8,
            seed: 3,
            noise: 0.3,
        })
        .unwrap();
        let networks = vec![network(0, &device), network(1, &device)];
        let settings = CkaSettings {
            batch_size: 20,
            passes: 2,
            inference_batch: 9,
        };
        let found = network_cka(&networks, &[(0, 1)], &set, &settings, &compute, &device, &mut |_, _| {}).unwrap();
        assert_eq!(found.layers, ["block1.0", "block2.0", "block3.0", "penultimate"]);
        assert_eq!(found.batch_size, 20);
        // 40 images in minibatches of 20, twice: the same four minibatches as 80 rows in order.
        let a = passes_of(&networks[0], &set, 2, &device);
        let b = passes_of(&networks[1], &set, 2, &device);
        let config = MinibatchCkaConfig {
            batch_size: 20,
            shuffle_seed: None,
        };
        let want = pollster::block_on(minibatch_cka(&compute, &a, &b, &config)).unwrap();
        for (l, values) in found.same_layer.iter().enumerate() {
            assert_eq!(values[0][0], 1.0);
            assert!((values[0][1] - values[1][0]).abs() < 1e-12);
            assert!(
                (values[0][1] - want.values[l][l]).abs() < 1e-4,
                "layer {l}: {} vs {}",
                values[0][1],
                want.values[l][l]
            );
        }
        for i in 0..4 {
            for j in 0..4 {
                let (got, want) = (found.blocks[0][i][j], want.values[i][j]);
                assert!((got - want).abs() < 1e-4, "({i}, {j}): {got} vs {want}");
            }
        }
    }

    #[test]
    fn networks_of_different_layouts_are_refused() {
        let device = Device::flex();
        let mut other = network(1, &device);
        other.config = ModelConfig::new(Architecture::ResNet18, Stem::Cifar, 4);
        other.model = other.config.init(&device).unwrap();
        let set = procedural(&ProceduralConfig {
            classes: 2,
            per_class: 4,
            size: 8,
            seed: 3,
            noise: 0.3,
        })
        .unwrap();
        let settings = CkaSettings {
            batch_size: 8,
            passes: 1,
            inference_batch: 8,
        };
        let err = network_cka(
            &[network(0, &device), other],
            &[],
            &set,
            &settings,
            &Compute::cpu(),
            &device,
            &mut |_, _| {},
        )
        .err()
        .expect("refused");
        assert!(err.to_string().contains("one layout"), "{err}");
    }
}
