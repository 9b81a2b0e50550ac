//! Residual blocks of ResNet v1.5 (He et al. 2016; Goyal et al. 2017 for the zero-initialised
//! last batch norm; the stride sits in the 3×3 convolution, as in torchvision and the official
//! TensorFlow ResNet).

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, FloatDType, Tensor};

/// The dtype convolutions compute in: `None` keeps the input's (f32 training, inference);
/// `Some(F16)` is mixed precision, where the product runs in f16 (tensor cores) on f16 copies
/// of the input and the f32 master weights, and the output returns to the input's dtype, so that
/// batch norm, the residual sums and the loss stay in f32.
pub type ConvDtype = Option<FloatDType>;

/// `conv.forward(x)`, computed in `dtype` ([`ConvDtype`]). Gradients flow back through the casts
/// to the f32 weights.
///
/// # Shapes
/// - `x`: `[batch, channels_in, height, width]` → `[batch, channels_out, height', width']`
pub(crate) fn conv_in(conv: &Conv2d, x: Tensor<4>, dtype: ConvDtype) -> Tensor<4> {
    let Some(dtype) = dtype else {
        return conv.forward(x);
    };
    let back = x.dtype();
    // losslens' convolutions pad explicitly ("same"-style `kernel / 2`); `Same` is resolved
    // the way burn resolves it for odd kernels at stride 1.
    let padding = match conv.padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        PaddingConfig2d::Valid => [(0, 0), (0, 0)],
        PaddingConfig2d::Same => {
            let [kh, kw] = conv.kernel_size;
            [((kh - 1) / 2, kh / 2), ((kw - 1) / 2, kw / 2)]
        }
    };
    let options = ConvOptions::new_with_padding(conv.stride, padding, conv.dilation, conv.groups);
    conv2d(
        x.cast(dtype),
        conv.weight.val().cast(dtype),
        conv.bias.as_ref().map(|b| b.val().cast(dtype)),
        options,
    )
    .cast(back)
}

/// He-normal initialisation with fan-out, as torchvision initialises ResNet convolutions.
pub(crate) fn conv_init() -> Initializer {
    Initializer::KaimingNormal {
        gain: std::f64::consts::SQRT_2,
        fan_out_only: true,
    }
}

/// A bias-free convolution with "same"-style symmetric padding `kernel / 2`.
pub(crate) fn conv(channels_in: usize, channels_out: usize, kernel: usize, stride: usize, device: &Device) -> Conv2d {
    let pad = kernel / 2;
    Conv2dConfig::new([channels_in, channels_out], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
        .with_initializer(conv_init())
        .init(device)
}

/// Batch norm with γ = 1, or γ = 0 for the last one of a residual branch.
pub(crate) fn batch_norm(channels: usize, zero_gamma: bool, device: &Device) -> BatchNorm {
    let mut bn = BatchNormConfig::new(channels).init(device);
    if zero_gamma {
        bn.gamma = Param::from_tensor(Tensor::zeros([channels], device));
    }
    bn
}

/// The projection shortcut: 1×1 convolution with the block's stride, then batch norm.
#[derive(Module, Debug)]
pub struct Downsample {
    /// 1×1 convolution.
    pub conv: Conv2d,
    /// Its batch norm.
    pub bn: BatchNorm,
}

impl Downsample {
    fn new(channels_in: usize, channels_out: usize, stride: usize, device: &Device) -> Self {
        Self {
            conv: conv(channels_in, channels_out, 1, stride, device),
            bn: batch_norm(channels_out, false, device),
        }
    }

    fn forward(&self, x: Tensor<4>, dtype: ConvDtype) -> Tensor<4> {
        self.bn.forward(conv_in(&self.conv, x, dtype))
    }
}

/// The two-convolution block of ResNet-18/34: 3×3 (stride) → 3×3, expansion 1.
#[derive(Module, Debug)]
pub struct BasicBlock {
    /// First 3×3 convolution, carrying the stride.
    pub conv1: Conv2d,
    /// Its batch norm.
    pub bn1: BatchNorm,
    /// Second 3×3 convolution.
    pub conv2: Conv2d,
    /// Its batch norm, γ initialised to 0.
    pub bn2: BatchNorm,
    /// Projection shortcut when the shape changes.
    pub downsample: Option<Downsample>,
}

/// The three-convolution block of ResNet-50: 1×1 → 3×3 (stride) → 1×1, expansion 4.
#[derive(Module, Debug)]
pub struct Bottleneck {
    /// 1×1 reduction.
    pub conv1: Conv2d,
    /// Its batch norm.
    pub bn1: BatchNorm,
    /// 3×3 convolution, carrying the stride (v1.5).
    pub conv2: Conv2d,
    /// Its batch norm.
    pub bn2: BatchNorm,
    /// 1×1 expansion.
    pub conv3: Conv2d,
    /// Its batch norm, γ initialised to 0.
    pub bn3: BatchNorm,
    /// Projection shortcut when the shape changes.
    pub downsample: Option<Downsample>,
}

/// Which residual block a network is built of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// [`BasicBlock`], expansion 1.
    Basic,
    /// [`Bottleneck`], expansion 4.
    Bottleneck,
}

impl BlockKind {
    /// Output channels per unit of stage width.
    pub fn expansion(self) -> usize {
        match self {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }
}

/// One residual block; its output is taken after the residual add and the ReLU.
// A few dozen blocks are built once per model; the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum ResidualBlock {
    /// A basic block.
    Basic(BasicBlock),
    /// A bottleneck block.
    Bottleneck(Bottleneck),
}

impl ResidualBlock {
    /// A block of `kind` taking `channels_in` channels to `width × expansion` at `stride`.
    pub fn new(kind: BlockKind, channels_in: usize, width: usize, stride: usize, device: &Device) -> Self {
        let channels_out = width * kind.expansion();
        let downsample = (stride != 1 || channels_in != channels_out)
            .then(|| Downsample::new(channels_in, channels_out, stride, device));
        match kind {
            BlockKind::Basic => ResidualBlock::Basic(BasicBlock {
                conv1: conv(channels_in, width, 3, stride, device),
                bn1: batch_norm(width, false, device),
                conv2: conv(width, width, 3, 1, device),
                bn2: batch_norm(width, true, device),
                downsample,
            }),
            BlockKind::Bottleneck => ResidualBlock::Bottleneck(Bottleneck {
                conv1: conv(channels_in, width, 1, 1, device),
                bn1: batch_norm(width, false, device),
                conv2: conv(width, width, 3, stride, device),
                bn2: batch_norm(width, false, device),
                conv3: conv(width, channels_out, 1, 1, device),
                bn3: batch_norm(channels_out, true, device),
                downsample,
            }),
        }
    }

    /// Every batch norm of the block, in forward order (the shortcut's last).
    pub fn batch_norms_mut(&mut self) -> Vec<&mut BatchNorm> {
        let (mut norms, downsample): (Vec<&mut BatchNorm>, _) = match self {
            ResidualBlock::Basic(b) => (vec![&mut b.bn1, &mut b.bn2], &mut b.downsample),
            ResidualBlock::Bottleneck(b) => (vec![&mut b.bn1, &mut b.bn2, &mut b.bn3], &mut b.downsample),
        };
        norms.extend(downsample.as_mut().map(|d| &mut d.bn));
        norms
    }

    /// `relu(branch(x) + shortcut(x))`.
    ///
    /// # Shapes
    /// - `x`: `[batch, channels_in, height, width]`
    /// - output: `[batch, channels_out, height / stride, width / stride]` (rounded up)
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_in(x, None)
    }

    /// [`forward`](Self::forward) with the convolutions in `dtype` ([`ConvDtype`]).
    pub fn forward_in(&self, x: Tensor<4>, dtype: ConvDtype) -> Tensor<4> {
        let conv = |c: &Conv2d, x: Tensor<4>| conv_in(c, x, dtype);
        let (branch, downsample) = match self {
            ResidualBlock::Basic(b) => {
                let h = relu(b.bn1.forward(conv(&b.conv1, x.clone())));
                (b.bn2.forward(conv(&b.conv2, h)), &b.downsample)
            }
            ResidualBlock::Bottleneck(b) => {
                let h = relu(b.bn1.forward(conv(&b.conv1, x.clone())));
                let h = relu(b.bn2.forward(conv(&b.conv2, h)));
                (b.bn3.forward(conv(&b.conv3, h)), &b.downsample)
            }
        };
        let shortcut = match downsample {
            Some(d) => d.forward(x, dtype),
            None => x,
        };
        relu(branch + shortcut)
    }
}
