//! The ResNet v1.5 body (He et al. 2016, with the stride in the 3×3 convolution) and the tap
//! points through which every block's activations can be read.

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::model::block::{BlockKind, ConvDtype, ResidualBlock, batch_norm, conv, conv_in};
use crate::model::{Architecture, Stem};

/// Name of the pooled penultimate-layer tap.
pub const PENULTIMATE: &str = "penultimate";

/// The input stem.
#[derive(Module, Debug)]
pub struct StemLayer {
    /// 7×7 stride-2 (ImageNet) or 3×3 stride-1 (CIFAR) convolution.
    pub conv: Conv2d,
    /// Its batch norm.
    pub bn: BatchNorm,
    /// 3×3 stride-2 max-pool (ImageNet stem only).
    pub pool: Option<MaxPool2d>,
}

/// One stage: blocks of the same width, the first carrying the stride.
#[derive(Module, Debug)]
pub struct Stage {
    /// The blocks.
    pub blocks: Vec<ResidualBlock>,
}

/// A stage of a layout: number of blocks, width, stride of its first block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageLayout {
    /// Number of residual blocks.
    pub blocks: usize,
    /// Width (channels of the 3×3 convolutions; outputs are `width × expansion`).
    pub width: usize,
    /// Stride of the first block.
    pub stride: usize,
}

/// The shape of a network: block type, stem width and stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Basic or bottleneck blocks.
    pub block: BlockKind,
    /// Output channels of the stem.
    pub stem_width: usize,
    /// The stages, in order.
    pub stages: Vec<StageLayout>,
}

impl Layout {
    /// The layout of a ResNet architecture; `None` for Inception v3.
    pub fn of(architecture: Architecture) -> Option<Self> {
        let standard = |block, counts: [usize; 4]| Layout {
            block,
            stem_width: 64,
            stages: counts
                .iter()
                .zip([64, 128, 256, 512])
                .enumerate()
                .map(|(i, (&blocks, width))| StageLayout {
                    blocks,
                    width,
                    stride: if i == 0 { 1 } else { 2 },
                })
                .collect(),
        };
        Some(match architecture {
            Architecture::ResNet18 => standard(BlockKind::Basic, [2, 2, 2, 2]),
            Architecture::ResNet34 => standard(BlockKind::Basic, [3, 4, 6, 3]),
            Architecture::ResNet50 => standard(BlockKind::Bottleneck, [3, 4, 6, 3]),
            Architecture::InceptionV3 => return None,
            Architecture::Small => Layout {
                block: BlockKind::Basic,
                stem_width: 32,
                stages: vec![
                    StageLayout {
                        blocks: 1,
                        width: 32,
                        stride: 1,
                    },
                    StageLayout {
                        blocks: 1,
                        width: 64,
                        stride: 2,
                    },
                    StageLayout {
                        blocks: 1,
                        width: 128,
                        stride: 2,
                    },
                ],
            },
        })
    }

    /// Width of the penultimate layer.
    pub fn features(&self) -> usize {
        self.stages
            .last()
            .map_or(self.stem_width, |s| s.width * self.block.expansion())
    }

    /// Names of the block taps, `block{stage}.{index}` with stages from 1 and blocks from 0.
    pub fn block_names(&self) -> Vec<String> {
        self.stages
            .iter()
            .enumerate()
            .flat_map(|(s, stage)| (0..stage.blocks).map(move |b| format!("block{}.{b}", s + 1)))
            .collect()
    }

    /// Per-example shape of every tap for `[height, width]` inputs: `[channels, h, w]` for the
    /// blocks, `[features]` for [`PENULTIMATE`].
    pub fn tap_shapes(&self, stem: Stem, image: [usize; 2]) -> Vec<(String, Vec<usize>)> {
        let down = |size: usize, kernel: usize, stride: usize, pad: usize| (size + 2 * pad - kernel) / stride + 1;
        let [mut h, mut w] = image;
        if stem == Stem::ImageNet {
            [h, w] = [down(h, 7, 2, 3), down(w, 7, 2, 3)];
            [h, w] = [down(h, 3, 2, 1), down(w, 3, 2, 1)];
        }
        let mut shapes = Vec::new();
        for (s, stage) in self.stages.iter().enumerate() {
            for b in 0..stage.blocks {
                if b == 0 {
                    [h, w] = [down(h, 3, stage.stride, 1), down(w, 3, stage.stride, 1)];
                }
                shapes.push((
                    format!("block{}.{b}", s + 1),
                    vec![stage.width * self.block.expansion(), h, w],
                ));
            }
        }
        shapes.push((PENULTIMATE.to_string(), vec![self.features()]));
        shapes
    }
}

/// Activations of a forward pass: the blocks that were asked for and the penultimate layer.
#[derive(Debug, Clone)]
pub struct Activations {
    /// `(name, output)` of each tapped block after its residual add and ReLU, in network order.
    /// Shapes `[batch, channels, height, width]`.
    pub blocks: Vec<(String, Tensor<4>)>,
    /// Globally average-pooled output of the last block. Shape `[batch, features]`.
    pub penultimate: Tensor<2>,
}

/// The ResNet body: stem, stages, global average pool.
#[derive(Module, Debug)]
pub struct ResNet {
    /// The input stem.
    pub stem: StemLayer,
    /// The residual stages.
    pub stages: Vec<Stage>,
}

impl ResNet {
    /// A freshly initialised body (He-normal convolutions, γ = 0 on each branch's last norm).
    pub fn new(layout: &Layout, stem: Stem, channels: usize, device: &Device) -> Self {
        let stem_layer = match stem {
            Stem::ImageNet => StemLayer {
                conv: conv(channels, layout.stem_width, 7, 2, device),
                bn: batch_norm(layout.stem_width, false, device),
                pool: Some(
                    MaxPool2dConfig::new([3, 3])
                        .with_strides([2, 2])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .init(),
                ),
            },
            Stem::Cifar => StemLayer {
                conv: conv(channels, layout.stem_width, 3, 1, device),
                bn: batch_norm(layout.stem_width, false, device),
                pool: None,
            },
        };
        let mut channels_in = layout.stem_width;
        let stages = layout
            .stages
            .iter()
            .map(|stage| {
                let blocks = (0..stage.blocks)
                    .map(|b| {
                        let stride = if b == 0 { stage.stride } else { 1 };
                        let block = ResidualBlock::new(layout.block, channels_in, stage.width, stride, device);
                        channels_in = stage.width * layout.block.expansion();
                        block
                    })
                    .collect();
                Stage { blocks }
            })
            .collect();
        Self {
            stem: stem_layer,
            stages,
        }
    }

    /// Names of the block taps, `block{stage}.{index}`, in network order.
    pub fn block_names(&self) -> Vec<String> {
        self.stages
            .iter()
            .enumerate()
            .flat_map(|(s, stage)| (0..stage.blocks.len()).map(move |b| format!("block{}.{b}", s + 1)))
            .collect()
    }

    /// Every batch norm of the body, in forward order.
    pub fn batch_norms_mut(&mut self) -> Vec<&mut BatchNorm> {
        let mut norms = vec![&mut self.stem.bn];
        for stage in &mut self.stages {
            for block in &mut stage.blocks {
                norms.extend(block.batch_norms_mut());
            }
        }
        norms
    }

    /// The pooled penultimate features.
    ///
    /// # Shapes
    /// - `images`: `[batch, channels, height, width]`
    /// - output: `[batch, features]`
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_taps(images, |_| false).penultimate
    }

    /// The penultimate features plus the output of every block whose name `tap` accepts.
    ///
    /// # Shapes
    /// - `images`: `[batch, channels, height, width]`
    /// - see [`Activations`] and [`Layout::tap_shapes`]
    pub fn forward_taps(&self, images: Tensor<4>, tap: impl Fn(&str) -> bool) -> Activations {
        self.forward_taps_in(images, tap, None)
    }

    /// [`forward_taps`](Self::forward_taps) with the convolutions in `dtype` (mixed precision:
    /// [`ConvDtype`]).
    pub fn forward_taps_in(&self, images: Tensor<4>, tap: impl Fn(&str) -> bool, dtype: ConvDtype) -> Activations {
        let mut x = relu(self.stem.bn.forward(conv_in(&self.stem.conv, images, dtype)));
        if let Some(pool) = &self.stem.pool {
            x = pool.forward(x);
        }
        let mut blocks = Vec::new();
        for (s, stage) in self.stages.iter().enumerate() {
            for (b, block) in stage.blocks.iter().enumerate() {
                x = block.forward_in(x, dtype);
                let name = format!("block{}.{b}", s + 1);
                if tap(&name) {
                    blocks.push((name, x.clone()));
                }
            }
        }
        let [batch, channels, _, _] = x.dims();
        // [batch, channels, 1, 1] -> [batch, channels]
        let penultimate = x.mean_dim(3).mean_dim(2).reshape([batch, channels]);
        Activations { blocks, penultimate }
    }
}
