//! A forward and backward pass of every (model, objective) pair on the CPU backend.

use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use losslens_core::model::block::ResidualBlock;
use losslens_core::model::{Architecture, Body, Classifier, ModelConfig, Stem};
use losslens_core::objective::{ObjectiveConfig, ObjectiveKind};

fn finite_nonzero<const D: usize>(t: Tensor<D>) -> bool {
    let v = t.into_data().convert::<f64>().try_into_vec::<f64>().unwrap();
    v.iter().all(|x| x.is_finite()) && v.iter().any(|&x| x != 0.0)
}

/// The first convolution's weight and the γ of the last batch norm before the pool, of either
/// body.
fn first_conv_and_last_gamma(model: &Classifier) -> (Tensor<4>, Tensor<1>) {
    match &model.body {
        Body::ResNet(r) => {
            // The zero-initialised γ of the last block still receives a gradient.
            let gamma = match r.stages.last().unwrap().blocks.last().unwrap() {
                ResidualBlock::Basic(b) => b.bn2.gamma.val(),
                ResidualBlock::Bottleneck(b) => b.bn3.gamma.val(),
            };
            (r.stem.conv.weight.val(), gamma)
        }
        Body::Inception(i) => (i.conv2d_1a_3x3.conv.weight.val(), i.mixed_7c.branch_pool.bn.gamma.val()),
    }
}

#[test]
fn every_model_trains_with_every_objective() {
    let device = Device::flex().autodiff();
    let classes = 5;
    let targets = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 3, 4, 1], [4]), &device);
    for architecture in Architecture::ALL {
        let (stem, size) = match architecture {
            Architecture::Small | Architecture::ResNet18 => (Stem::Cifar, 32),
            // Inception v3 at its smallest input.
            Architecture::InceptionV3 => (Stem::ImageNet, 75),
            _ => (Stem::ImageNet, 64),
        };
        let model = ModelConfig::new(architecture, stem, classes).init(&device).unwrap();
        for kind in ObjectiveKind::ALL {
            let objective = ObjectiveConfig::default_for(kind).init().unwrap();
            let images = Tensor::<4>::random([4, 3, size, size], Distribution::Normal(0.0, 1.0), &device);
            let features = model.features(images);
            let out = objective.forward(features, &model.head, targets.clone());
            assert_eq!(out.outputs.dims(), [4, classes]);
            let loss = out.loss.clone().into_scalar::<f64>();
            assert!(loss.is_finite() && loss > 0.0, "{architecture} {kind}: loss {loss}");
            let grads = out.loss.backward();
            let (first, gamma) = first_conv_and_last_gamma(&model);
            let first = first.grad(&grads).expect("first convolution's gradient");
            assert!(
                finite_nonzero(first),
                "{architecture} {kind}: first convolution's gradient"
            );
            let head_grad = model.head.weight().grad(&grads).expect("head gradient");
            assert!(finite_nonzero(head_grad), "{architecture} {kind}: head gradient");
            let gamma = gamma.grad(&grads).expect("γ gradient");
            assert!(finite_nonzero(gamma), "{architecture} {kind}: γ");
        }
    }
}

#[test]
fn inception_trains_its_auxiliary_classifier_at_299_pixels() {
    let device = Device::flex().autodiff();
    let classes = 3;
    let model = ModelConfig::new(Architecture::InceptionV3, Stem::ImageNet, classes)
        .with_aux_head(true)
        .init(&device)
        .unwrap();
    let images = Tensor::<4>::random([2, 3, 299, 299], Distribution::Normal(0.0, 1.0), &device);
    let (features, aux) = model.body.forward_train(images, None);
    let aux = aux.expect("auxiliary features");
    assert_eq!(features.dims(), [2, 2048]);
    assert_eq!(aux.dims(), [2, 768]);
    let aux_head = model.aux_head().expect("auxiliary head");
    assert_eq!(aux_head.classes(), classes);
    let targets = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 2], [2]), &device);
    let objective = ObjectiveConfig::default_for(ObjectiveKind::Softmax).init().unwrap();
    let main = objective.forward(features, &model.head, targets.clone()).loss;
    let side = objective.forward(aux, aux_head, targets).loss;
    let grads = (main + side.mul_scalar(0.4)).backward();
    let inception = model.body.inception().unwrap();
    let aux_logits = inception.aux_logits.as_ref().unwrap();
    assert!(finite_nonzero(
        aux_head.weight().grad(&grads).expect("aux head gradient")
    ));
    assert!(finite_nonzero(aux_logits.conv1.conv.weight.val().grad(&grads).unwrap()));
    assert!(finite_nonzero(
        inception.conv2d_1a_3x3.conv.weight.val().grad(&grads).unwrap()
    ));
    // The ResNets have no auxiliary classifier.
    let resnet = ModelConfig::new(Architecture::Small, Stem::Cifar, classes)
        .init(&device)
        .unwrap();
    assert!(resnet.aux_head().is_none());
    assert!(
        resnet
            .body
            .forward_train(Tensor::zeros([1, 3, 32, 32], &device), None)
            .1
            .is_none()
    );
}
