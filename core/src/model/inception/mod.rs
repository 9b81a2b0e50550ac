//! Inception v3 (Szegedy et al. 2016), the paper's second architecture (Appendix B), in
//! torchvision's layout: a stem of five convolutions and two max-pools, eleven Inception blocks
//! (`mixed_5b` … `mixed_7c`), a global average pool to 2,048 features, and optionally the
//! auxiliary classifier on the 17×17 grid (off by default).
//!
//! Every block's output can be tapped by its torchvision name, lower-cased (`mixed_5b` …
//! `mixed_7c`), and the pooled features as `penultimate`. The network takes inputs of at least
//! [`min_image_size`] pixels (75; 299 with the auxiliary classifier, whose 5×5 convolution
//! needs the 17×17 grid of 299 px inputs); 299 px is its native size.
//!
//! Unlike torchvision, the network has no built-in dropout before the final layer (the
//! objectives add dropout where the paper does, [`crate::objective`]), and its convolutions
//! are initialised He-normal like the ResNets' rather than truncated normal.

pub mod blocks;

use burn::module::Module;
use burn::nn::BatchNorm;
use burn::tensor::{Device, Tensor};

pub use blocks::{ConvBn, InceptionA, InceptionAux, InceptionB, InceptionC, InceptionD, InceptionE};

use crate::model::ConvDtype;
use crate::model::resnet::{Activations, PENULTIMATE};

use blocks::max_pool_3x3_s2;

/// Width of the penultimate layer.
pub const FEATURES: usize = InceptionE::CHANNELS_OUT;

/// The block taps, in network order, with their output channels.
pub const BLOCKS: [(&str, usize); 11] = [
    ("mixed_5b", InceptionA::channels_out(32)),
    ("mixed_5c", InceptionA::channels_out(64)),
    ("mixed_5d", InceptionA::channels_out(64)),
    ("mixed_6a", InceptionB::channels_out(InceptionA::channels_out(64))),
    ("mixed_6b", InceptionC::CHANNELS_OUT),
    ("mixed_6c", InceptionC::CHANNELS_OUT),
    ("mixed_6d", InceptionC::CHANNELS_OUT),
    ("mixed_6e", InceptionC::CHANNELS_OUT),
    ("mixed_7a", InceptionD::channels_out(InceptionC::CHANNELS_OUT)),
    ("mixed_7b", InceptionE::CHANNELS_OUT),
    ("mixed_7c", InceptionE::CHANNELS_OUT),
];

/// The sides of the three grids (`mixed_5*`, `mixed_6*`, `mixed_7*`) for an input side of
/// `pixels`, and whether the auxiliary classifier fits the second; `None` when the stem or a
/// reduction would leave nothing.
fn grids(pixels: usize) -> Option<([usize; 3], bool)> {
    // Output side of a convolution or pool.
    let down = |n: usize, kernel: usize, stride: usize, pad: usize| {
        (n + 2 * pad >= kernel).then(|| (n + 2 * pad - kernel) / stride + 1)
    };
    let n = down(pixels, 3, 2, 0)?; // conv2d_1a_3x3
    let n = down(n, 3, 1, 0)?; // conv2d_2a_3x3 (conv2d_2b_3x3 keeps the size)
    let n = down(n, 3, 2, 0)?; // max-pool
    let n = down(n, 3, 1, 0)?; // conv2d_4a_3x3 (conv2d_3b_1x1 keeps the size)
    let g5 = down(n, 3, 2, 0)?; // max-pool
    let g6 = down(g5, 3, 2, 0)?; // mixed_6a
    let g7 = down(g6, 3, 2, 0)?; // mixed_7a
    let aux = down(g6, 5, 3, 0).and_then(|p| down(p, 5, 1, 0)).is_some();
    Some(([g5, g6, g7], aux))
}

/// The smallest input side the network takes: 75 px, or 299 px with the auxiliary classifier.
pub fn min_image_size(aux: bool) -> usize {
    (1..)
        .find(|&n| grids(n).is_some_and(|(_, fits)| fits || !aux))
        .expect("some size fits")
}

/// Per-example shape of every tap for `[height, width]` inputs: `[channels, h, w]` for the
/// blocks, `[2048]` for `penultimate`. Sides below [`min_image_size`] give 0.
pub fn tap_shapes(image: [usize; 2]) -> Vec<(String, Vec<usize>)> {
    let [gh, gw] = image.map(|side| grids(side).map_or([0; 3], |(g, _)| g));
    // `mixed_6a` and `mixed_7a` output the reduced grid they lead into.
    let grid_of = |name: &str| match &name[..7] {
        "mixed_5" => 0,
        "mixed_6" => 1,
        _ => 2,
    };
    BLOCKS
        .iter()
        .map(|&(name, channels)| {
            let g = grid_of(name);
            (name.to_string(), vec![channels, gh[g], gw[g]])
        })
        .chain(std::iter::once((PENULTIMATE.to_string(), vec![FEATURES])))
        .collect()
}

/// The Inception v3 body: stem, blocks, global average pool; the optional auxiliary classifier
/// reads `mixed_6e`.
#[derive(Module, Debug)]
pub struct InceptionV3 {
    /// 3×3 stride 2 → 32.
    pub conv2d_1a_3x3: ConvBn,
    /// 3×3 → 32.
    pub conv2d_2a_3x3: ConvBn,
    /// 3×3 padded → 64, then a 3×3 stride-2 max-pool.
    pub conv2d_2b_3x3: ConvBn,
    /// 1×1 → 80.
    pub conv2d_3b_1x1: ConvBn,
    /// 3×3 → 192, then a 3×3 stride-2 max-pool.
    pub conv2d_4a_3x3: ConvBn,
    /// Block A, 192 → 256.
    pub mixed_5b: InceptionA,
    /// Block A, 256 → 288.
    pub mixed_5c: InceptionA,
    /// Block A, 288 → 288.
    pub mixed_5d: InceptionA,
    /// Grid reduction 35 → 17, 288 → 768.
    pub mixed_6a: InceptionB,
    /// Block C, c7 = 128.
    pub mixed_6b: InceptionC,
    /// Block C, c7 = 160.
    pub mixed_6c: InceptionC,
    /// Block C, c7 = 160.
    pub mixed_6d: InceptionC,
    /// Block C, c7 = 192.
    pub mixed_6e: InceptionC,
    /// The auxiliary classifier on `mixed_6e`, when enabled.
    pub aux_logits: Option<InceptionAux>,
    /// Grid reduction 17 → 8, 768 → 1280.
    pub mixed_7a: InceptionD,
    /// Block E, 1280 → 2048.
    pub mixed_7b: InceptionE,
    /// Block E, 2048 → 2048.
    pub mixed_7c: InceptionE,
}

impl InceptionV3 {
    /// A freshly initialised body for `channels` input channels, with the auxiliary classifier
    /// for `aux_classes` classes when given.
    pub fn new(channels: usize, aux_classes: Option<usize>, device: &Device) -> Self {
        let a = InceptionA::channels_out;
        Self {
            conv2d_1a_3x3: ConvBn::square([channels, 32], 3, 2, 0, device),
            conv2d_2a_3x3: ConvBn::square([32, 32], 3, 1, 0, device),
            conv2d_2b_3x3: ConvBn::square([32, 64], 3, 1, 1, device),
            conv2d_3b_1x1: ConvBn::square([64, 80], 1, 1, 0, device),
            conv2d_4a_3x3: ConvBn::square([80, 192], 3, 1, 0, device),
            mixed_5b: InceptionA::new(192, 32, device),
            mixed_5c: InceptionA::new(a(32), 64, device),
            mixed_5d: InceptionA::new(a(64), 64, device),
            mixed_6a: InceptionB::new(a(64), device),
            mixed_6b: InceptionC::new(InceptionC::CHANNELS_OUT, 128, device),
            mixed_6c: InceptionC::new(InceptionC::CHANNELS_OUT, 160, device),
            mixed_6d: InceptionC::new(InceptionC::CHANNELS_OUT, 160, device),
            mixed_6e: InceptionC::new(InceptionC::CHANNELS_OUT, 192, device),
            aux_logits: aux_classes.map(|classes| InceptionAux::new(InceptionC::CHANNELS_OUT, classes, device)),
            mixed_7a: InceptionD::new(InceptionC::CHANNELS_OUT, device),
            mixed_7b: InceptionE::new(InceptionD::channels_out(InceptionC::CHANNELS_OUT), device),
            mixed_7c: InceptionE::new(InceptionE::CHANNELS_OUT, device),
        }
    }

    /// Names of the block taps, in network order.
    pub fn block_names(&self) -> Vec<String> {
        BLOCKS.iter().map(|(name, _)| name.to_string()).collect()
    }

    /// Every batch norm of the body (the auxiliary classifier's included), in forward order.
    pub fn batch_norms_mut(&mut self) -> Vec<&mut BatchNorm> {
        let mut norms: Vec<&mut BatchNorm> = [
            &mut self.conv2d_1a_3x3,
            &mut self.conv2d_2a_3x3,
            &mut self.conv2d_2b_3x3,
            &mut self.conv2d_3b_1x1,
            &mut self.conv2d_4a_3x3,
        ]
        .into_iter()
        .map(|c| &mut c.bn)
        .collect();
        for block in [&mut self.mixed_5b, &mut self.mixed_5c, &mut self.mixed_5d] {
            norms.extend(block.batch_norms_mut());
        }
        norms.extend(self.mixed_6a.batch_norms_mut());
        for block in [
            &mut self.mixed_6b,
            &mut self.mixed_6c,
            &mut self.mixed_6d,
            &mut self.mixed_6e,
        ] {
            norms.extend(block.batch_norms_mut());
        }
        if let Some(aux) = &mut self.aux_logits {
            norms.extend(aux.batch_norms_mut());
        }
        norms.extend(self.mixed_7a.batch_norms_mut());
        norms.extend(self.mixed_7b.batch_norms_mut());
        norms.extend(self.mixed_7c.batch_norms_mut());
        norms
    }

    /// The penultimate features plus the output of every block whose name `tap` accepts, and
    /// the auxiliary features (the input of the auxiliary final layer) when `aux` is set and
    /// the network has the auxiliary classifier.
    ///
    /// # Shapes
    /// - `images`: `[batch, channels, height, width]`, sides ≥ [`min_image_size`]
    /// - see [`Activations`] and [`tap_shapes`]; the auxiliary features are `[batch, 768]`
    pub fn forward_taps_in(
        &self,
        images: Tensor<4>,
        tap: impl Fn(&str) -> bool,
        dtype: ConvDtype,
        aux: bool,
    ) -> (Activations, Option<Tensor<2>>) {
        let mut x = self.conv2d_1a_3x3.forward(images, dtype);
        x = self.conv2d_2a_3x3.forward(x, dtype);
        x = max_pool_3x3_s2(self.conv2d_2b_3x3.forward(x, dtype));
        x = self.conv2d_3b_1x1.forward(x, dtype);
        x = max_pool_3x3_s2(self.conv2d_4a_3x3.forward(x, dtype));
        let mut blocks = Vec::new();
        let mut keep = |name: &str, x: &Tensor<4>| {
            if tap(name) {
                blocks.push((name.to_string(), x.clone()));
            }
        };
        for (name, block) in [
            ("mixed_5b", &self.mixed_5b),
            ("mixed_5c", &self.mixed_5c),
            ("mixed_5d", &self.mixed_5d),
        ] {
            x = block.forward(x, dtype);
            keep(name, &x);
        }
        x = self.mixed_6a.forward(x, dtype);
        keep("mixed_6a", &x);
        for (name, block) in [
            ("mixed_6b", &self.mixed_6b),
            ("mixed_6c", &self.mixed_6c),
            ("mixed_6d", &self.mixed_6d),
            ("mixed_6e", &self.mixed_6e),
        ] {
            x = block.forward(x, dtype);
            keep(name, &x);
        }
        let aux_features = match (&self.aux_logits, aux) {
            (Some(classifier), true) => Some(classifier.features(x.clone(), dtype)),
            _ => None,
        };
        x = self.mixed_7a.forward(x, dtype);
        keep("mixed_7a", &x);
        x = self.mixed_7b.forward(x, dtype);
        keep("mixed_7b", &x);
        x = self.mixed_7c.forward(x, dtype);
        keep("mixed_7c", &x);
        let [batch, channels, _, _] = x.dims();
        // [batch, channels, h, w] -> [batch, channels]
        let penultimate = x.mean_dim(3).mean_dim(2).reshape([batch, channels]);
        (Activations { blocks, penultimate }, aux_features)
    }
}
