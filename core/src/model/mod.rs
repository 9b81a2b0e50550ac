//! The networks: ResNet v1.5 at depths 18, 34 and 50, Inception v3 (Appendix B), a small fast
//! network for CPU runs, and the shared classification [`Head`] (Appendix A.1).
//!
//! A [`Classifier`] is a body ([`Body`]: a [`ResNet`] or [`InceptionV3`]) plus a head. The body
//! never depends on the objective; the objective decides how the head is used
//! ([`crate::objective`]). Every block's output can be tapped: a ResNet's (after the residual
//! add and ReLU) as `block{stage}.{index}` — `block1.0` … `block4.2` for ResNet-50 —, Inception
//! v3's as `mixed_5b` … `mixed_7c`; and the pooled penultimate layer as `penultimate`.

pub mod block;
pub mod body;
pub mod head;
pub mod inception;
pub mod resnet;

use std::fmt;
use std::str::FromStr;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

pub use block::{BlockKind, ConvDtype};
pub use body::Body;
pub use head::{HEAD_INIT_STD, Head, HeadConfig};
pub use inception::InceptionV3;
pub use resnet::{Activations, Layout, PENULTIMATE, ResNet};

use crate::error::{Error, Result};

/// The network architectures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Architecture {
    /// ResNet-18 (basic blocks 2-2-2-2, 512 features).
    #[serde(rename = "resnet18")]
    ResNet18,
    /// ResNet-34 (basic blocks 3-4-6-3, 512 features).
    #[serde(rename = "resnet34")]
    ResNet34,
    /// ResNet-50 v1.5 (bottleneck blocks 3-4-6-3, 2048 features), the paper's network.
    #[serde(rename = "resnet50")]
    ResNet50,
    /// A small, fast residual network for CPU runs and tests: a 32-channel stem and three basic
    /// blocks of widths 32, 64, 128 (128 features; 0.31 M parameters with 10 classes).
    Small,
    /// Inception v3 in torchvision's layout (2048 features; 23.8 M parameters with 1,000
    /// classes), for inputs of at least 75 px (native 299 px); Appendix B of the paper.
    #[serde(rename = "inception-v3")]
    InceptionV3,
}

impl Architecture {
    /// Every architecture.
    pub const ALL: [Architecture; 5] = [
        Architecture::ResNet18,
        Architecture::ResNet34,
        Architecture::ResNet50,
        Architecture::Small,
        Architecture::InceptionV3,
    ];

    /// The name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Architecture::ResNet18 => "resnet18",
            Architecture::ResNet34 => "resnet34",
            Architecture::ResNet50 => "resnet50",
            Architecture::Small => "small",
            Architecture::InceptionV3 => "inception-v3",
        }
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Architecture {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Architecture::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| Error::InvalidSetting {
                name: "model",
                value: format!("`{s}`"),
                allowed: format!("one of {}", Architecture::ALL.map(Architecture::name).join(", ")),
            })
    }
}

/// The input stem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stem {
    /// 7×7 stride-2 convolution and 3×3 stride-2 max-pool, for inputs of 64 px and more.
    #[serde(rename = "imagenet")]
    ImageNet,
    /// One 3×3 stride-1 convolution and no pooling, for 32 px inputs.
    Cifar,
}

impl Stem {
    /// Inputs at least this many pixels on their shorter side get the ImageNet stem.
    pub const IMAGENET_MIN_SIZE: usize = 64;

    /// The name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Stem::ImageNet => "imagenet",
            Stem::Cifar => "cifar",
        }
    }

    /// The stem for square-ish inputs whose shorter side is `pixels`.
    pub fn for_image_size(pixels: usize) -> Self {
        if pixels >= Self::IMAGENET_MIN_SIZE {
            Stem::ImageNet
        } else {
            Stem::Cifar
        }
    }
}

/// A classifier's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The architecture.
    pub architecture: Architecture,
    /// The input stem (see [`Stem::for_image_size`]).
    pub stem: Stem,
    /// Number of classes of the training task, ≥ 2.
    pub classes: usize,
    /// Input channels (3 for RGB). Default 3.
    #[serde(default = "ModelConfig::default_channels")]
    pub channels: usize,
    /// Inception v3's auxiliary classifier ([`inception::InceptionAux`]): built, and trained
    /// with the run's objective at weight 0.4; it needs 299 px inputs. Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub aux_head: bool,
}

impl ModelConfig {
    fn default_channels() -> usize {
        3
    }

    /// A configuration with 3 input channels.
    pub fn new(architecture: Architecture, stem: Stem, classes: usize) -> Self {
        Self {
            architecture,
            stem,
            classes,
            channels: 3,
            aux_head: false,
        }
    }

    /// This configuration with Inception v3's auxiliary classifier on or off.
    pub fn with_aux_head(self, aux_head: bool) -> Self {
        Self { aux_head, ..self }
    }

    /// The layout of a ResNet body; `None` for Inception v3.
    pub fn layout(&self) -> Option<Layout> {
        Layout::of(self.architecture)
    }

    /// Width of the penultimate layer.
    pub fn features(&self) -> usize {
        self.layout().map_or(inception::FEATURES, |l| l.features())
    }

    /// Names of the block taps, in network order.
    pub fn block_names(&self) -> Vec<String> {
        match self.layout() {
            Some(layout) => layout.block_names(),
            None => inception::BLOCKS.iter().map(|(name, _)| name.to_string()).collect(),
        }
    }

    /// The smallest input side, in pixels, the network takes in training (1 for the ResNets,
    /// whose stages pad; 75 for Inception v3, 299 with its auxiliary classifier).
    pub fn min_image_size(&self) -> usize {
        match self.architecture {
            Architecture::InceptionV3 => inception::min_image_size(self.aux_head),
            _ => 1,
        }
    }

    /// Refuses inputs of `pixels` on their shorter side when the network cannot take them.
    pub fn check_image_size(&self, pixels: usize) -> Result<()> {
        let min = self.min_image_size();
        if pixels < min {
            let what = if self.aux_head {
                format!("at least {min} for {} with its auxiliary classifier", self.architecture)
            } else {
                format!("at least {min} for {}", self.architecture)
            };
            return Err(Error::InvalidSetting {
                name: "image_size",
                value: pixels.to_string(),
                allowed: what,
            });
        }
        Ok(())
    }

    /// Refuses fewer than two classes, no input channels, or an auxiliary classifier on a
    /// network that has none.
    pub fn validate(&self) -> Result<()> {
        if self.classes < 2 {
            return Err(Error::InvalidSetting {
                name: "classes",
                value: self.classes.to_string(),
                allowed: "at least 2".into(),
            });
        }
        if self.channels == 0 {
            return Err(Error::InvalidSetting {
                name: "channels",
                value: "0".into(),
                allowed: "at least 1".into(),
            });
        }
        if self.aux_head && self.architecture != Architecture::InceptionV3 {
            return Err(Error::InvalidSetting {
                name: "aux_head",
                value: format!("true for {}", self.architecture),
                allowed: "true only for inception-v3 (the only network with an auxiliary classifier)".into(),
            });
        }
        Ok(())
    }

    /// Per-example shapes of every tap for `[height, width]` inputs (see [`Layout::tap_shapes`]
    /// and [`inception::tap_shapes`]).
    pub fn tap_shapes(&self, image: [usize; 2]) -> Vec<(String, Vec<usize>)> {
        match self.layout() {
            Some(layout) => layout.tap_shapes(self.stem, image),
            None => inception::tap_shapes(image),
        }
    }

    /// A freshly initialised classifier. Its weights are drawn at once, in parameter order,
    /// from the device's generator (burn would otherwise draw each one lazily at first use), so
    /// `device.seed(s)` before `init` fixes them whatever the model is used for next.
    pub fn init(&self, device: &Device) -> Result<Classifier> {
        self.validate()?;
        let body = match self.layout() {
            Some(layout) => Body::ResNet(ResNet::new(&layout, self.stem, self.channels, device)),
            None => Body::Inception(Box::new(InceptionV3::new(
                self.channels,
                self.aux_head.then_some(self.classes),
                device,
            ))),
        };
        let head = HeadConfig {
            features: self.features(),
            classes: self.classes,
        }
        .init(device);
        let model = Classifier { body, head };
        struct Materialize;
        impl ModuleVisitor for Materialize {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let _ = param.val();
            }
        }
        model.visit(&mut Materialize);
        Ok(model)
    }
}

/// A body and its classification head.
#[derive(Module, Debug)]
pub struct Classifier {
    /// The feature extractor.
    pub body: Body,
    /// The final layer.
    pub head: Head,
}

impl Classifier {
    /// Number of trainable parameters (see [`trainable_params`]).
    pub fn trainable_params(&self) -> usize {
        trainable_params(self)
    }

    /// Penultimate features.
    ///
    /// # Shapes
    /// - `images`: `[batch, channels, height, width]`
    /// - output: `[batch, features]`
    pub fn features(&self, images: Tensor<4>) -> Tensor<2> {
        self.body.forward(images)
    }

    /// [`features`](Self::features) with the convolutions in `dtype` (mixed precision:
    /// [`ConvDtype`]).
    pub fn features_in(&self, images: Tensor<4>, dtype: ConvDtype) -> Tensor<2> {
        self.body.forward_taps_in(images, |_| false, dtype).penultimate
    }

    /// The auxiliary classifier's final layer, where the network has one (Inception v3 with
    /// [`ModelConfig::aux_head`]); training adds its loss at
    /// [`inception::InceptionAux::LOSS_WEIGHT`].
    pub fn aux_head(&self) -> Option<&Head> {
        self.body.aux_head()
    }

    /// Plain logits `x W + b` (objectives that transform them use [`crate::objective::Objective`]).
    ///
    /// # Shapes
    /// - `images`: `[batch, channels, height, width]`
    /// - output: `[batch, classes]`
    pub fn logits(&self, images: Tensor<4>) -> Tensor<2> {
        self.head.forward(self.features(images))
    }
}

/// Number of trainable parameters: every float parameter except batch-norm running statistics
/// (what PyTorch's `sum(p.numel() for p in model.parameters())` counts; burn's
/// [`Module::num_params`] also counts the running mean and variance).
pub fn trainable_params<M: Module>(module: &M) -> usize {
    let mut total = 0;
    visit_trainable(module, &mut |elements, _| total += elements);
    total
}

/// The values of every trainable parameter (see [`trainable_params`]), flattened in module
/// order, as `f32`: to compare two networks' weights.
pub fn trainable_values<M: Module>(module: &M) -> Result<Vec<f32>> {
    let mut values = Vec::new();
    let mut failed = None;
    visit_trainable(
        module,
        &mut |_, param| match param().into_data().convert::<f32>().try_to_vec::<f32>() {
            Ok(v) => values.extend(v),
            Err(e) => failed = Some(Error::Device(format!("cannot read a parameter: {e:?}"))),
        },
    );
    failed.map_or(Ok(values), Err)
}

/// Calls `f` with the size of every trainable parameter of `module` (batch-norm running
/// statistics left out), in module order, and a function that reads it flattened (so counting
/// does not materialise lazily initialised weights).
fn visit_trainable<M: Module>(module: &M, f: &mut dyn FnMut(usize, &dyn Fn() -> Tensor<1>)) {
    struct Trainable<'f> {
        path: Vec<String>,
        f: &'f mut dyn FnMut(usize, &dyn Fn() -> Tensor<1>),
    }
    impl ModuleVisitor for Trainable<'_> {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let running = matches!(
                self.path.last().map(String::as_str),
                Some("running_mean" | "running_var")
            );
            if !running {
                let elements = param.lazy_shape().num_elements();
                (self.f)(elements, &|| param.val().reshape([elements]));
            }
        }
    }
    module.visit(&mut Trainable { path: Vec::new(), f });
}
