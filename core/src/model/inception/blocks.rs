//! The blocks of Inception v3 (Szegedy et al. 2016, "Rethinking the Inception Architecture"),
//! named and shaped as torchvision's `inception.py` names and shapes them, so that parameter
//! paths read like torchvision's state-dict keys (lower-cased).
//!
//! Every convolution is a [`ConvBn`]: bias-free convolution, batch norm (ε = 0.001) and ReLU.
//! The blocks run their branches side by side and concatenate them along the channels.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AvgPool2dConfig, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::model::block::{ConvDtype, conv_in, conv_init};
use crate::model::head::{Head, HeadConfig};

/// Batch-norm ε of Inception v3 (torchvision's and TF-slim's 0.001).
pub const BATCH_NORM_EPSILON: f64 = 1e-3;

/// torchvision's `BasicConv2d`: a bias-free convolution, its batch norm and a ReLU.
#[derive(Module, Debug)]
pub struct ConvBn {
    /// The convolution (He-normal, fan-out, as the ResNets).
    pub conv: Conv2d,
    /// Its batch norm (ε = [`BATCH_NORM_EPSILON`], γ = 1).
    pub bn: BatchNorm,
}

impl ConvBn {
    /// A `kernel = [kh, kw]` convolution with `stride` and symmetric zero padding
    /// `padding = [ph, pw]`.
    pub fn new(channels: [usize; 2], kernel: [usize; 2], stride: usize, padding: [usize; 2], device: &Device) -> Self {
        let [ph, pw] = padding;
        let conv = Conv2dConfig::new(channels, kernel)
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
            .with_bias(false)
            .with_initializer(conv_init())
            .init(device);
        let bn = BatchNormConfig::new(channels[1])
            .with_epsilon(BATCH_NORM_EPSILON)
            .init(device);
        Self { conv, bn }
    }

    /// A square `kernel × kernel` convolution with `stride` and padding `pad` on every side.
    pub fn square(channels: [usize; 2], kernel: usize, stride: usize, pad: usize, device: &Device) -> Self {
        Self::new(channels, [kernel, kernel], stride, [pad, pad], device)
    }

    /// `relu(bn(conv(x)))`, the convolution in `dtype` ([`ConvDtype`]).
    ///
    /// # Shapes
    /// - `x`: `[batch, channels_in, height, width]` → `[batch, channels_out, height', width']`
    pub fn forward(&self, x: Tensor<4>, dtype: ConvDtype) -> Tensor<4> {
        relu(self.bn.forward(conv_in(&self.conv, x, dtype)))
    }

    /// Every batch norm (one).
    pub(crate) fn batch_norms_mut(&mut self) -> Vec<&mut BatchNorm> {
        vec![&mut self.bn]
    }
}

/// 3×3 max-pool with stride 2 and no padding (the grid reductions).
pub(crate) fn max_pool_3x3_s2(x: Tensor<4>) -> Tensor<4> {
    MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).init().forward(x)
}

/// 3×3 average pool with stride 1 and padding 1, the padding counted (PyTorch's default): the
/// pooling branches of blocks A, C and E.
fn avg_pool_3x3_same(x: Tensor<4>) -> Tensor<4> {
    AvgPool2dConfig::new([3, 3])
        .with_strides([1, 1])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_count_include_pad(true)
        .init()
        .forward(x)
}

/// A 1×1 convolution.
fn pointwise(channels_in: usize, channels_out: usize, device: &Device) -> ConvBn {
    ConvBn::square([channels_in, channels_out], 1, 1, 0, device)
}

/// A 1×n convolution that keeps the size (`row = true`) or an n×1 one.
fn strip(channels: [usize; 2], n: usize, row: bool, device: &Device) -> ConvBn {
    if row {
        ConvBn::new(channels, [1, n], 1, [0, n / 2], device)
    } else {
        ConvBn::new(channels, [n, 1], 1, [n / 2, 0], device)
    }
}

/// Block A (35×35 grid, `Mixed_5b`–`Mixed_5d`): 1×1, 5×5, double 3×3 and pooling branches.
/// Output channels `224 + pool_features`.
#[derive(Module, Debug)]
pub struct InceptionA {
    /// 1×1 → 64.
    pub branch1x1: ConvBn,
    /// 1×1 → 48, then
    pub branch5x5_1: ConvBn,
    /// 5×5 → 64.
    pub branch5x5_2: ConvBn,
    /// 1×1 → 64, then
    pub branch3x3dbl_1: ConvBn,
    /// 3×3 → 96, then
    pub branch3x3dbl_2: ConvBn,
    /// 3×3 → 96.
    pub branch3x3dbl_3: ConvBn,
    /// After a 3×3 average pool: 1×1 → `pool_features`.
    pub branch_pool: ConvBn,
}

impl InceptionA {
    /// Output channels for `pool_features` channels in the pooling branch.
    pub const fn channels_out(pool_features: usize) -> usize {
        64 + 64 + 96 + pool_features
    }

    /// A block reading `channels_in` channels.
    pub fn new(channels_in: usize, pool_features: usize, device: &Device) -> Self {
        Self {
            branch1x1: pointwise(channels_in, 64, device),
            branch5x5_1: pointwise(channels_in, 48, device),
            branch5x5_2: ConvBn::square([48, 64], 5, 1, 2, device),
            branch3x3dbl_1: pointwise(channels_in, 64, device),
            branch3x3dbl_2: ConvBn::square([64, 96], 3, 1, 1, device),
            branch3x3dbl_3: ConvBn::square([96, 96], 3, 1, 1, device),
            branch_pool: pointwise(channels_in, pool_features, device),
        }
    }

    /// # Shapes
    /// - `x`: `[batch, channels_in, h, w]` → `[batch, 224 + pool_features, h, w]`
    pub fn forward(&self, x: Tensor<4>, dtype: ConvDtype) -> Tensor<4> {
        let b1 = self.branch1x1.forward(x.clone(), dtype);
        let b5 = self
            .branch5x5_2
            .forward(self.branch5x5_1.forward(x.clone(), dtype), dtype);
        let b3 = self.branch3x3dbl_1.forward(x.clone(), dtype);
        let b3 = self
            .branch3x3dbl_3
            .forward(self.branch3x3dbl_2.forward(b3, dtype), dtype);
        let pool = self.branch_pool.forward(avg_pool_3x3_same(x), dtype);
        Tensor::cat(vec![b1, b5, b3, pool], 1)
    }

    pub(crate) fn batch_norms_mut(&mut self) -> Vec<&mut BatchNorm> {
        [
            &mut self.branch1x1,
            &mut self.branch5x5_1,
            &mut self.branch5x5_2,
            &mut self.branch3x3dbl_1,
            &mut self.branch3x3dbl_2,
            &mut self.branch3x3dbl_3,
            &mut self.branch_pool,
        ]
        .into_iter()
        .flat_map(ConvBn::batch_norms_mut)
        .collect()
    }
}

/// Block B (`Mixed_6a`), the 35 → 17 grid reduction: a stride-2 3×3, a double 3×3 ending in
/// stride 2, and a stride-2 max-pool. Output channels `480 + channels_in`.
#[derive(Module, Debug)]
pub struct InceptionB {
    /// 3×3 stride 2 → 384.
    pub branch3x3: ConvBn,
    /// 1×1 → 64, then
    pub branch3x3dbl_1: ConvBn,
    /// 3×3 → 96, then
    pub branch3x3dbl_2: ConvBn,
    /// 3×3 stride 2 → 96.
    pub branch3x3dbl_3: ConvBn,
}

impl InceptionB {
    /// Output channels for `channels_in` input channels.
    pub const fn channels_out(channels_in: usize) -> usize {
        384 + 96 + channels_in
    }

    /// A block reading `channels_in` channels.
    pub fn new(channels_in: usize, device: &Device) -> Self {
        Self {
            branch3x3: ConvBn::square([channels_in, 384], 3, 2, 0, device),
            branch3x3dbl_1: pointwise(channels_in, 64, device),
            branch3x3dbl_2: ConvBn::square([64, 96], 3, 1, 1, device),
            branch3x3dbl_3: ConvBn::square([96, 96], 3, 2, 0, device),
        }
    }

    /// # Shapes
    /// - `x`: `[batch, channels_in, h, w]` → `[batch, 480 + channels_in, (h - 3) / 2 + 1, …]`
    pub fn forward(&self, x: Tensor<4>, dtype: ConvDtype) -> Tensor<4> {
        let b3 = self.branch3x3.forward(x.clone(), dtype);
        let dbl = self.branch3x3dbl_1.forward(x.clone(), dtype);
        let dbl = self
            .branch3x3dbl_3
            .forward(self.branch3x3dbl_2.forward(dbl, dtype), dtype);
        Tensor::cat(vec![b3, dbl, max_pool_3x3_s2(x)], 1)
    }

    pub(crate) fn batch_norms_mut(&mut self) -> Vec<&mut BatchNorm> {
        [
            &mut self.branch3x3,
            &mut self.branch3x3dbl_1,
            &mut self.branch3x3dbl_2,
            &mut self.branch3x3dbl_3,
        ]
        .into_iter()
        .flat_map(ConvBn::batch_norms_mut)
        .collect()
    }
}

/// Block C (17×17 grid, `Mixed_6b`–`Mixed_6e`): factorised 7×7 convolutions (1×7 then 7×1)
/// with `c7` inner channels. Output channels 768.
#[derive(Module, Debug)]
pub struct InceptionC {
    /// 1×1 → 192.
    pub branch1x1: ConvBn,
    /// 1×1 → c7, then
    pub branch7x7_1: ConvBn,
    /// 1×7 → c7, then
    pub branch7x7_2: ConvBn,
    /// 7×1 → 192.
    pub branch7x7_3: ConvBn,
    /// 1×1 → c7, then
    pub branch7x7dbl_1: ConvBn,
    /// 7×1 → c7, then
    pub branch7x7dbl_2: ConvBn,
    /// 1×7 → c7, then
    pub branch7x7dbl_3: ConvBn,
    /// 7×1 → c7, then
    pub branch7x7dbl_4: ConvBn,
    /// 1×7 → 192.
    pub branch7x7dbl_5: ConvBn,
    /// After a 3×3 average pool: 1×1 → 192.
    pub branch_pool: ConvBn,
}

impl InceptionC {
    /// Output channels.
    pub const CHANNELS_OUT: usize = 4 * 192;

    /// A block reading `channels_in` channels with `c7` channels inside its 7-wide branches.
    pub fn new(channels_in: usize, c7: usize, device: &Device) -> Self {
        Self {
            branch1x1: pointwise(channels_in, 192, device),
            branch7x7_1: pointwise(channels_in, c7, device),
            branch7x7_2: strip([c7, c7], 7, true, device),
            branch7x7_3: strip([c7, 192], 7, false, device),
            branch7x7dbl_1: pointwise(channels_in, c7, device),
            branch7x7dbl_2: strip([c7, c7], 7, false, device),
            branch7x7dbl_3: strip([c7, c7], 7, true, device),
            branch7x7dbl_4: strip([c7, c7], 7, false, device),
            branch7x7dbl_5: strip([c7, 192], 7, true, device),
            branch_pool: pointwise(channels_in, 192, device),
        }
    }

    /// # Shapes
    /// - `x`: `[batch, channels_in, h, w]` → `[batch, 768, h, w]`
    pub fn forward(&self, x: Tensor<4>, dtype: ConvDtype) -> Tensor<4> {
        let b1 = self.branch1x1.forward(x.clone(), dtype);
        let b7 = [&self.branch7x7_1, &self.branch7x7_2, &self.branch7x7_3]
            .iter()
            .fold(x.clone(), |y, c| c.forward(y, dtype));
        let dbl = [
            &self.branch7x7dbl_1,
            &self.branch7x7dbl_2,
            &self.branch7x7dbl_3,
            &self.branch7x7dbl_4,
            &self.branch7x7dbl_5,
        ]
        .iter()
        .fold(x.clone(), |y, c| c.forward(y, dtype));
        let pool = self.branch_pool.forward(avg_pool_3x3_same(x), dtype);
        Tensor::cat(vec![b1, b7, dbl, pool], 1)
    }

    pub(crate) fn batch_norms_mut(&mut self) -> Vec<&mut BatchNorm> {
        [
            &mut self.branch1x1,
            &mut self.branch7x7_1,
            &mut self.branch7x7_2,
            &mut self.branch7x7_3,
            &mut self.branch7x7dbl_1,
            &mut self.branch7x7dbl_2,
            &mut self.branch7x7dbl_3,
            &mut self.branch7x7dbl_4,
            &mut self.branch7x7dbl_5,
            &mut self.branch_pool,
        ]
        .into_iter()
        .flat_map(ConvBn::batch_norms_mut)
        .collect()
    }
}

/// Block D (`Mixed_7a`), the 17 → 8 grid reduction. Output channels `512 + channels_in`.
#[derive(Module, Debug)]
pub struct InceptionD {
    /// 1×1 → 192, then
    pub branch3x3_1: ConvBn,
    /// 3×3 stride 2 → 320.
    pub branch3x3_2: ConvBn,
    /// 1×1 → 192, then
    pub branch7x7x3_1: ConvBn,
    /// 1×7 → 192, then
    pub branch7x7x3_2: ConvBn,
    /// 7×1 → 192, then
    pub branch7x7x3_3: ConvBn,
    /// 3×3 stride 2 → 192.
    pub branch7x7x3_4: ConvBn,
}

impl InceptionD {
    /// Output channels for `channels_in` input channels.
    pub const fn channels_out(channels_in: usize) -> usize {
        320 + 192 + channels_in
    }

    /// A block reading `channels_in` channels.
    pub fn new(channels_in: usize, device: &Device) -> Self {
        Self {
            branch3x3_1: pointwise(channels_in, 192, device),
            branch3x3_2: ConvBn::square([192, 320], 3, 2, 0, device),
            branch7x7x3_1: pointwise(channels_in, 192, device),
            branch7x7x3_2: strip([192, 192], 7, true, device),
            branch7x7x3_3: strip([192, 192], 7, false, device),
            branch7x7x3_4: ConvBn::square([192, 192], 3, 2, 0, device),
        }
    }

    /// # Shapes
    /// - `x`: `[batch, channels_in, h, w]` → `[batch, 512 + channels_in, (h - 3) / 2 + 1, …]`
    pub fn forward(&self, x: Tensor<4>, dtype: ConvDtype) -> Tensor<4> {
        let b3 = self
            .branch3x3_2
            .forward(self.branch3x3_1.forward(x.clone(), dtype), dtype);
        let b7 = [
            &self.branch7x7x3_1,
            &self.branch7x7x3_2,
            &self.branch7x7x3_3,
            &self.branch7x7x3_4,
        ]
        .iter()
        .fold(x.clone(), |y, c| c.forward(y, dtype));
        Tensor::cat(vec![b3, b7, max_pool_3x3_s2(x)], 1)
    }

    pub(crate) fn batch_norms_mut(&mut self) -> Vec<&mut BatchNorm> {
        [
            &mut self.branch3x3_1,
            &mut self.branch3x3_2,
            &mut self.branch7x7x3_1,
            &mut self.branch7x7x3_2,
            &mut self.branch7x7x3_3,
            &mut self.branch7x7x3_4,
        ]
        .into_iter()
        .flat_map(ConvBn::batch_norms_mut)
        .collect()
    }
}

/// Block E (8×8 grid, `Mixed_7b`, `Mixed_7c`): 3×3 convolutions split into parallel 1×3 and
/// 3×1 halves. Output channels 2048.
#[derive(Module, Debug)]
pub struct InceptionE {
    /// 1×1 → 320.
    pub branch1x1: ConvBn,
    /// 1×1 → 384, then both of
    pub branch3x3_1: ConvBn,
    /// 1×3 → 384 and
    pub branch3x3_2a: ConvBn,
    /// 3×1 → 384.
    pub branch3x3_2b: ConvBn,
    /// 1×1 → 448, then
    pub branch3x3dbl_1: ConvBn,
    /// 3×3 → 384, then both of
    pub branch3x3dbl_2: ConvBn,
    /// 1×3 → 384 and
    pub branch3x3dbl_3a: ConvBn,
    /// 3×1 → 384.
    pub branch3x3dbl_3b: ConvBn,
    /// After a 3×3 average pool: 1×1 → 192.
    pub branch_pool: ConvBn,
}

impl InceptionE {
    /// Output channels.
    pub const CHANNELS_OUT: usize = 320 + 2 * 384 + 2 * 384 + 192;

    /// A block reading `channels_in` channels.
    pub fn new(channels_in: usize, device: &Device) -> Self {
        Self {
            branch1x1: pointwise(channels_in, 320, device),
            branch3x3_1: pointwise(channels_in, 384, device),
            branch3x3_2a: strip([384, 384], 3, true, device),
            branch3x3_2b: strip([384, 384], 3, false, device),
            branch3x3dbl_1: pointwise(channels_in, 448, device),
            branch3x3dbl_2: ConvBn::square([448, 384], 3, 1, 1, device),
            branch3x3dbl_3a: strip([384, 384], 3, true, device),
            branch3x3dbl_3b: strip([384, 384], 3, false, device),
            branch_pool: pointwise(channels_in, 192, device),
        }
    }

    /// # Shapes
    /// - `x`: `[batch, channels_in, h, w]` → `[batch, 2048, h, w]`
    pub fn forward(&self, x: Tensor<4>, dtype: ConvDtype) -> Tensor<4> {
        let b1 = self.branch1x1.forward(x.clone(), dtype);
        let b3 = self.branch3x3_1.forward(x.clone(), dtype);
        let b3 = Tensor::cat(
            vec![
                self.branch3x3_2a.forward(b3.clone(), dtype),
                self.branch3x3_2b.forward(b3, dtype),
            ],
            1,
        );
        let dbl = self
            .branch3x3dbl_2
            .forward(self.branch3x3dbl_1.forward(x.clone(), dtype), dtype);
        let dbl = Tensor::cat(
            vec![
                self.branch3x3dbl_3a.forward(dbl.clone(), dtype),
                self.branch3x3dbl_3b.forward(dbl, dtype),
            ],
            1,
        );
        let pool = self.branch_pool.forward(avg_pool_3x3_same(x), dtype);
        Tensor::cat(vec![b1, b3, dbl, pool], 1)
    }

    pub(crate) fn batch_norms_mut(&mut self) -> Vec<&mut BatchNorm> {
        [
            &mut self.branch1x1,
            &mut self.branch3x3_1,
            &mut self.branch3x3_2a,
            &mut self.branch3x3_2b,
            &mut self.branch3x3dbl_1,
            &mut self.branch3x3dbl_2,
            &mut self.branch3x3dbl_3a,
            &mut self.branch3x3dbl_3b,
            &mut self.branch_pool,
        ]
        .into_iter()
        .flat_map(ConvBn::batch_norms_mut)
        .collect()
    }
}

/// The auxiliary classifier on the 17×17 grid (`AuxLogits`): 5×5 stride-3 average pool, 1×1 to
/// 128 channels, 5×5 to 768, global average pool, and its own final layer. In training its
/// loss, under the run's objective, is added with weight [`InceptionAux::LOSS_WEIGHT`].
#[derive(Module, Debug)]
pub struct InceptionAux {
    /// After a 5×5 stride-3 average pool: 1×1 → 128, then
    pub conv0: ConvBn,
    /// 5×5 → 768.
    pub conv1: ConvBn,
    /// The auxiliary final layer (initialised as the main one, Appendix A.1).
    pub fc: Head,
}

impl InceptionAux {
    /// Width of the auxiliary features (the input of `fc`).
    pub const FEATURES: usize = 768;
    /// Weight of the auxiliary loss in training (Szegedy et al. 2016; torchvision's reference
    /// training script).
    pub const LOSS_WEIGHT: f64 = 0.4;

    /// An auxiliary classifier reading `channels_in` channels, for `classes` classes.
    pub fn new(channels_in: usize, classes: usize, device: &Device) -> Self {
        Self {
            conv0: pointwise(channels_in, 128, device),
            conv1: ConvBn::square([128, Self::FEATURES], 5, 1, 0, device),
            fc: HeadConfig {
                features: Self::FEATURES,
                classes,
            }
            .init(device),
        }
    }

    /// The auxiliary features (the input of `fc`).
    ///
    /// # Shapes
    /// - `x`: `[batch, channels_in, h, w]` with `(h - 5) / 3 + 1 ≥ 5` (h ≥ 17)
    /// - output: `[batch, 768]`
    pub fn features(&self, x: Tensor<4>, dtype: ConvDtype) -> Tensor<2> {
        let x = AvgPool2dConfig::new([5, 5]).with_strides([3, 3]).init().forward(x);
        let x = self.conv1.forward(self.conv0.forward(x, dtype), dtype);
        let [batch, channels, _, _] = x.dims();
        x.mean_dim(3).mean_dim(2).reshape([batch, channels])
    }

    pub(crate) fn batch_norms_mut(&mut self) -> Vec<&mut BatchNorm> {
        [&mut self.conv0, &mut self.conv1]
            .into_iter()
            .flat_map(ConvBn::batch_norms_mut)
            .collect()
    }
}
