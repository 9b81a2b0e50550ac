//! Dataset readers: CIFAR binary batches, IDX, ImageFolder trees (real CIFAR-10 JPEGs from
//! `../shared/data`), the decoded-image cache, and clear errors for bad input.

mod common;

use common::{require_data, shared_data, unpacked};
use std::path::Path;

use losslens_core::data::cache;
use losslens_core::data::cifar::{Split, read_cifar};
use losslens_core::data::folder::{load_image_folder, read_image_folder};
use losslens_core::data::idx::{read_idx_pair, read_idx_set};

/// A CIFAR-10-style record: label, then the R, G, B planes with value `f(plane, pixel)`.
fn record(label: u8, f: impl Fn(usize, usize) -> u8) -> Vec<u8> {
    let mut r = vec![label];
    for plane in 0..3 {
        r.extend((0..1024).map(|p| f(plane, p)));
    }
    r
}

#[test]
fn cifar10_binary_batches() {
    let dir = tempfile::tempdir().unwrap();
    for b in 1..=5 {
        let bytes: Vec<u8> = (0..2u8)
            .flat_map(|i| record((b as u8 + i) % 10, |plane, p| (plane * 50 + p % 7) as u8))
            .collect();
        std::fs::write(dir.path().join(format!("data_batch_{b}.bin")), bytes).unwrap();
    }
    let test: Vec<u8> = (0..10u8)
        .flat_map(|l| record(l, |plane, _| plane as u8 * 100))
        .collect();
    std::fs::write(dir.path().join("test_batch.bin"), test).unwrap();
    let names = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
    std::fs::write(dir.path().join("batches.meta.txt"), names).unwrap();

    let t = read_cifar(dir.path(), Split::Test).unwrap();
    assert_eq!((t.len(), t.uniform_size(), t.channels), (10, Some([32, 32]), 3));
    assert_eq!(t.classes[9], "truck");
    assert_eq!(t.labels, (0..10).collect::<Vec<_>>());
    // Planes become channels-last pixels.
    assert_eq!(&t.image(0)[..6], &[0, 100, 200, 0, 100, 200]);
    let train = read_cifar(dir.path(), Split::Train);
    // Training batches hold labels 1..6 only: classes without images are refused.
    let err = train.unwrap_err().to_string();
    assert!(err.contains("has no images"), "{err}");

    // A truncated batch is an error naming the file.
    std::fs::write(dir.path().join("test_batch.bin"), vec![0u8; 3073 + 100]).unwrap();
    let err = read_cifar(dir.path(), Split::Test).unwrap_err().to_string();
    assert!(err.contains("test_batch.bin") && err.contains("3073-byte"), "{err}");
    let err = read_cifar(Path::new("/nonexistent"), Split::Test)
        .unwrap_err()
        .to_string();
    assert!(err.contains("CIFAR"), "{err}");
}

#[test]
fn mnist_idx_and_mismatched_counts() {
    let mnist = shared_data().join("mnist");
    if !mnist.join("train-images-idx3-ubyte.gz").exists() {
        assert!(!require_data(), "no MNIST in {}", mnist.display());
        return;
    }
    let test = read_idx_set(
        &mnist.join("t10k-images-idx3-ubyte.gz"),
        &mnist.join("t10k-labels-idx1-ubyte.gz"),
    )
    .unwrap();
    assert_eq!(
        (test.len(), test.uniform_size(), test.channels),
        (10_000, Some([28, 28]), 1)
    );
    assert_eq!(test.classes.len(), 10);
    let rgb = test.into_rgb();
    assert_eq!(rgb.channels, 3);
    let err = read_idx_pair(
        &mnist.join("t10k-images-idx3-ubyte.gz"),
        &mnist.join("train-labels-idx1-ubyte.gz"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("60000 labels") && err.contains("10000 images"), "{err}");
}

#[test]
fn cifar10_image_folder_through_the_cache() {
    let Some(root) = unpacked("cifar10") else { return };
    let cache_path = tempfile::tempdir().unwrap().keep().join("cifar10-test.safetensors");
    let (set, manifest) = load_image_folder(&root.join("test"), 32, &cache_path).unwrap();
    assert_eq!(set.len(), 10_000);
    assert_eq!(set.class_counts(), vec![1000; 10]);
    assert_eq!(set.classes[0], "airplane");
    assert!(manifest.skipped.is_empty());
    // Channel means close to CIFAR-10's (0.4914, 0.4822, 0.4465 on the training set).
    let mut sums = [0f64; 3];
    for (i, &v) in set.pixels.iter().enumerate() {
        sums[i % 3] += f64::from(v) / 255.0;
    }
    let means = sums.map(|s| s / (set.len() * 1024) as f64);
    assert!(
        (means[0] - 0.4914).abs() < 0.02 && (means[2] - 0.4465).abs() < 0.02,
        "{means:?}"
    );
    // The second load reads the cache: identical images.
    let (again, _) = load_image_folder(&root.join("test"), 32, &cache_path).unwrap();
    assert_eq!(again, set);
    let (cached, _) = cache::load(&cache_path).unwrap();
    assert_eq!(cached.labels, set.labels);
}

#[test]
fn image_folder_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    // Missing root, empty root.
    let err = read_image_folder(&root, 16).unwrap_err().to_string();
    assert!(err.contains("not a folder"), "{err}");
    std::fs::create_dir_all(&root).unwrap();
    let err = read_image_folder(&root, 16).unwrap_err().to_string();
    assert!(err.contains("no class folders"), "{err}");
    // Two classes of real PNGs, one corrupt JPEG (skipped and counted), one empty class folder.
    for (class, shade) in [("cats", 40u8), ("dogs", 200u8)] {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for i in 0..3u8 {
            let img = image::RgbImage::from_pixel(24, 20, image::Rgb([shade, shade.wrapping_add(i), 7]));
            img.save(root.join(class).join(format!("{i}.png"))).unwrap();
        }
    }
    std::fs::write(
        root.join("dogs").join("broken.jpg"),
        b"\xff\xd8\xff\xe0 not really a jpeg",
    )
    .unwrap();
    let (set, skipped) = read_image_folder(&root, 16).unwrap();
    assert_eq!(set.len(), 6);
    assert_eq!(set.classes, vec!["cats", "dogs"]);
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0].contains("broken.jpg"), "{skipped:?}");
    // 24 × 20 images keep their aspect ratio: shorter side 16, longer side 24·16/20 = 19.2 → 19.
    assert_eq!(set.uniform_size(), Some([16, 19]));
    assert_eq!(set.image(0)[0], 40);
    std::fs::create_dir_all(root.join("empty")).unwrap();
    let err = read_image_folder(&root, 16).unwrap_err().to_string();
    assert!(err.contains("`empty`") && err.contains("no .jpg"), "{err}");
    // A class whose only image is corrupt.
    std::fs::remove_dir(root.join("empty")).unwrap();
    std::fs::create_dir_all(root.join("zebra")).unwrap();
    std::fs::write(root.join("zebra").join("x.png"), b"garbage").unwrap();
    let err = read_image_folder(&root, 16).unwrap_err().to_string();
    assert!(err.contains("zebra") && err.contains("skipped"), "{err}");
    // A corrupt cache file is rebuilt, never trusted.
    std::fs::remove_dir_all(root.join("zebra")).unwrap();
    let cache_path = dir.path().join("cache.safetensors");
    std::fs::write(&cache_path, b"not a cache").unwrap();
    let (set2, manifest) = load_image_folder(&root, 16, &cache_path).unwrap();
    assert_eq!(set2, set);
    assert_eq!(manifest.skipped.len(), 1);
}

/// An ImageFolder image keeps its aspect ratio in the cache, so training crops reach its whole
/// width (a centre-square cache would never show the periphery), while evaluation still takes the
/// centre: for an image stored with shorter side 256, its centre 224 × 224 pixels are "resize to
/// 256, centre-crop 224".
#[test]
fn training_crops_reach_the_periphery_and_evaluation_takes_the_centre() {
    use burn::tensor::Device;
    use losslens_core::data::augment::{Augmentation, ChannelStats, batch, eval_crop, train_crop};
    use losslens_core::rng::SplitMix64;

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("wide");
    std::fs::create_dir_all(root.join("a")).unwrap();
    // 120 × 40: red in the left 16 columns, green in the right 16, blue between.
    let img = image::RgbImage::from_fn(120, 40, |x, _| match x {
        0..16 => image::Rgb([255, 0, 0]),
        104.. => image::Rgb([0, 255, 0]),
        _ => image::Rgb([0, 0, 255]),
    });
    img.save(root.join("a").join("0.png")).unwrap();
    let (set, _) = read_image_folder(&root, 32).unwrap();
    assert_eq!(set.size(0), [32, 96], "shorter side 32, aspect ratio 3:1 kept");

    let identity = ChannelStats {
        mean: vec![0.0; 3],
        std: vec![1.0 / 255.0; 3],
    };
    let augmentation = Augmentation::for_image_size(64);
    let mut rng = SplitMix64::new(5);
    let n = 200;
    let crops: Vec<_> = (0..n)
        .map(|_| train_crop(&augmentation, 32, 96, 24, &mut rng))
        .collect();
    let out = batch(&set, &vec![0; n], &crops, 24, &identity, &Device::flex())
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    // [n, 3, 24, 24]: count the output pixels that are clearly red or clearly green.
    let plane = 24 * 24;
    let (mut red, mut green) = (0, 0);
    for image in out.chunks_exact(3 * plane) {
        for p in 0..plane {
            let (r, g, b) = (image[p], image[plane + p], image[2 * plane + p]);
            red += usize::from(r > 200.0 && g < 50.0 && b < 50.0);
            green += usize::from(g > 200.0 && r < 50.0 && b < 50.0);
        }
    }
    assert!(red > 100 && green > 100, "crops saw {red} red and {green} green pixels");

    // Evaluation: the exact centre of the stored image.
    let crop = eval_crop(32, 96, 28);
    let centre = batch(&set, &[0], &[crop], 28, &identity, &Device::flex())
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let stored = set.image(0);
    for c in 0..3 {
        for y in 0..28 {
            for x in 0..28 {
                let want = f32::from(stored[((y + 2) * 96 + x + 34) * 3 + c]);
                assert_eq!(centre[(c * 28 + y) * 28 + x], want, "channel {c}, ({y}, {x})");
            }
        }
    }
    assert!(
        stored.chunks_exact(3).skip(34).take(28).all(|p| p[2] > 200),
        "the centre is blue"
    );
}

/// Panoramas keep their centre 4:1 part, so one odd image cannot take the memory of many.
#[test]
fn very_wide_images_keep_their_centre_four_to_one() {
    use losslens_core::data::folder::{MAX_ASPECT, stored_size};
    assert_eq!(MAX_ASPECT, 4);
    assert_eq!(stored_size(20, 200, 16), [16, 64]);
    assert_eq!(stored_size(300, 30, 16), [64, 16]);
    assert_eq!(stored_size(40, 60, 32), [32, 48]);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("panorama");
    std::fs::create_dir_all(root.join("a")).unwrap();
    // 200 × 20: the outer 20 columns on each side are red; the centre 4:1 part (columns 60..140)
    // is blue.
    let img = image::RgbImage::from_fn(200, 20, |x, _| match x {
        0..20 | 180.. => image::Rgb([255, 0, 0]),
        _ => image::Rgb([0, 0, 255]),
    });
    img.save(root.join("a").join("0.png")).unwrap();
    let (set, _) = read_image_folder(&root, 16).unwrap();
    assert_eq!(set.size(0), [16, 64]);
    assert!(
        set.image(0).chunks_exact(3).all(|p| p[0] < 30 && p[2] > 220),
        "only the blue centre is kept"
    );
}
