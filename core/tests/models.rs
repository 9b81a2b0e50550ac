//! The networks: parameter counts against torchvision, tap names and shapes, initialisation.

use burn::tensor::{Device, Tensor};
use losslens_core::model::block::ResidualBlock;
use losslens_core::model::{Architecture, ModelConfig, PENULTIMATE, Stem};

fn read<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec::<f32>().unwrap()
}

#[test]
fn parameter_counts_match_torchvision() {
    // torchvision.models.resnet{18,34,50}(num_classes=1000): sum(p.numel() for p in m.parameters()).
    let device = Device::flex();
    for (architecture, expected) in [
        (Architecture::ResNet18, 11_689_512),
        (Architecture::ResNet34, 21_797_672),
        (Architecture::ResNet50, 25_557_032),
    ] {
        let model = ModelConfig::new(architecture, Stem::ImageNet, 1000)
            .init(&device)
            .unwrap();
        assert_eq!(model.trainable_params(), expected, "{architecture}");
    }
    // The CIFAR stem swaps the 7×7×3×64 convolution for a 3×3×3×64 one.
    let cifar = ModelConfig::new(Architecture::ResNet18, Stem::Cifar, 10)
        .init(&device)
        .unwrap();
    assert_eq!(
        cifar.trainable_params(),
        11_689_512 - 7 * 7 * 3 * 64 + 3 * 3 * 3 * 64 - 990 * 513
    );
    // burn's own count adds the running statistics (2 per batch-norm channel; 4,800 channels).
    use burn::module::Module;
    let resnet18 = ModelConfig::new(Architecture::ResNet18, Stem::ImageNet, 1000)
        .init(&device)
        .unwrap();
    assert_eq!(resnet18.num_params(), 11_689_512 + 2 * 4_800);
}

#[test]
fn documented_tap_shapes_of_resnet50_at_224_pixels() {
    let shapes = ModelConfig::new(Architecture::ResNet50, Stem::ImageNet, 1000).tap_shapes([224, 224]);
    let names: Vec<&str> = shapes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 17);
    assert_eq!(names[0], "block1.0");
    assert_eq!(names[15], "block4.2");
    assert_eq!(names[16], PENULTIMATE);
    let shape = |name: &str| shapes.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert_eq!(shape("block1.2"), vec![256, 56, 56]);
    assert_eq!(shape("block2.3"), vec![512, 28, 28]);
    assert_eq!(shape("block3.5"), vec![1024, 14, 14]);
    assert_eq!(shape("block4.2"), vec![2048, 7, 7]);
    assert_eq!(shape(PENULTIMATE), vec![2048]);
    // CIFAR stem at 32 px: no early downsampling.
    let cifar = ModelConfig::new(Architecture::ResNet18, Stem::Cifar, 10).tap_shapes([32, 32]);
    assert_eq!(cifar[0], ("block1.0".to_string(), vec![64, 32, 32]));
    assert_eq!(cifar[7], ("block4.1".to_string(), vec![512, 4, 4]));
}

#[test]
fn every_tap_has_its_documented_shape() {
    let device = Device::flex();
    for architecture in Architecture::ALL {
        for (stem, size) in [(Stem::Cifar, 32), (Stem::ImageNet, 64)] {
            if architecture == Architecture::ResNet50 && stem == Stem::Cifar {
                continue; // covered at 64 px; keeps the test quick
            }
            let config = ModelConfig::new(architecture, stem, 7);
            let model = config.init(&device).unwrap();
            let images = Tensor::<4>::random([2, 3, size, size], burn::tensor::Distribution::Default, &device);
            let taps = model.body.forward_taps(images, |_| true);
            let expected = config.tap_shapes([size, size]);
            assert_eq!(taps.blocks.len() + 1, expected.len(), "{architecture} {stem:?}");
            for ((name, tensor), (want_name, want_shape)) in taps.blocks.iter().zip(&expected) {
                assert_eq!(name, want_name);
                assert_eq!(tensor.dims()[1..].to_vec(), *want_shape, "{architecture} {name}");
                assert_eq!(tensor.dims()[0], 2);
            }
            assert_eq!(taps.penultimate.dims(), [2, expected.last().unwrap().1[0]]);
            let logits = model.logits(Tensor::<4>::zeros([2, 3, size, size], &device));
            assert_eq!(logits.dims(), [2, 7]);
        }
    }
}

#[test]
fn selected_taps_only() {
    let device = Device::flex();
    let model = ModelConfig::new(Architecture::Small, Stem::Cifar, 3)
        .init(&device)
        .unwrap();
    let taps = model
        .body
        .forward_taps(Tensor::<4>::zeros([1, 3, 32, 32], &device), |name| name == "block2.0");
    assert_eq!(taps.blocks.len(), 1);
    assert_eq!(taps.blocks[0].0, "block2.0");
    assert_eq!(
        model.body.forward(Tensor::<4>::zeros([1, 3, 32, 32], &device)).dims(),
        taps.penultimate.dims()
    );
}

#[test]
fn initialisation_follows_the_paper() {
    let device = Device::flex();
    let model = ModelConfig::new(Architecture::ResNet50, Stem::ImageNet, 1000)
        .init(&device)
        .unwrap();
    // Final layer N(0, 0.01²), bias 0.
    let w = read(model.head.weight());
    let mean = w.iter().map(|&v| v as f64).sum::<f64>() / w.len() as f64;
    let sd = (w.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / w.len() as f64).sqrt();
    assert!(
        mean.abs() < 1e-4 && (sd - 0.01).abs() < 2e-4,
        "head init mean {mean} sd {sd}"
    );
    assert!(read(model.head.bias()).iter().all(|&b| b == 0.0));
    // Last batch-norm γ of each residual branch is 0; the others are 1.
    for stage in &model.body.stages {
        for block in &stage.blocks {
            let ResidualBlock::Bottleneck(b) = block else {
                panic!("ResNet-50 is built of bottlenecks")
            };
            assert!(read(b.bn3.gamma.val()).iter().all(|&g| g == 0.0));
            assert!(read(b.bn1.gamma.val()).iter().all(|&g| g == 1.0));
        }
    }
}

#[test]
fn bad_model_settings_are_refused() {
    let device = Device::flex();
    let err = ModelConfig::new(Architecture::Small, Stem::Cifar, 1)
        .init(&device)
        .unwrap_err();
    assert!(err.to_string().contains("classes"), "{err}");
    let err = "resnet51".parse::<Architecture>().unwrap_err().to_string();
    assert!(err.contains("resnet50"), "{err}");
    assert_eq!(Stem::for_image_size(32), Stem::Cifar);
    assert_eq!(Stem::for_image_size(224), Stem::ImageNet);
}
