//! ImageFolder trees: `root/<class>/<image>.{jpg,jpeg,png}`, classes sorted by folder name.
//!
//! Every image is decoded once to RGB and resized so that its shorter side is `size` pixels,
//! keeping its aspect ratio (nothing is cropped: training crops are drawn from the whole image, as
//! "random crops of 10–100 % of the image" are; evaluation takes the centre, which for `size` 256
//! and input 224 is "resize to 256, centre-crop 224"). A longer side beyond [`MAX_ASPECT`] times
//! the shorter one keeps its centre part. The whole set is kept in the decoded-image cache
//! ([`crate::data::cache`]). A file that cannot be decoded is **skipped with a warning and
//! counted** in the manifest (one bad JPEG should not end a long run); a class folder with no
//! decodable image, a root with no class folders, or a missing root are errors.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;

use crate::data::cache::{self, Manifest};
use crate::data::images::ImageSet;
use crate::error::{Error, Result};

/// Longest side kept, as a multiple of the shorter side (panoramas keep their centre 4:1 part), so
/// one odd image cannot take the memory of many.
pub const MAX_ASPECT: usize = 4;

/// File extensions read as images (case-insensitive).
pub const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// The class folders and their image files, sorted.
pub(crate) fn list_image_folder(root: &Path) -> Result<Vec<(String, Vec<PathBuf>)>> {
    let io = |source| Error::Io {
        path: root.into(),
        source,
    };
    if !root.is_dir() {
        return Err(Error::Format {
            path: root.into(),
            reason: "not a folder; an ImageFolder dataset is a folder of class folders of images".into(),
        });
    }
    let mut classes: Vec<(String, PathBuf)> = std::fs::read_dir(root)
        .map_err(io)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    classes.sort();
    if classes.is_empty() {
        return Err(Error::Format {
            path: root.into(),
            reason: "holds no class folders (expected root/<class>/<image>.jpg)".into(),
        });
    }
    let mut out = Vec::with_capacity(classes.len());
    for (name, dir) in classes {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|source| Error::Io {
                path: dir.clone(),
                source,
            })?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            })
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(Error::Format {
                path: dir,
                reason: format!("class folder `{name}` holds no .jpg, .jpeg or .png images"),
            });
        }
        out.push((name, files));
    }
    Ok(out)
}

/// A fingerprint of the listing: names, sizes and modification times, and the decode size.
pub(crate) fn fingerprint(listing: &[(String, Vec<PathBuf>)], size: usize) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ size as u64;
    let mut mix = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for (class, files) in listing {
        mix(class.as_bytes());
        for f in files {
            mix(f.file_name().map(|n| n.as_encoded_bytes()).unwrap_or_default());
            if let Ok(meta) = std::fs::metadata(f) {
                mix(&meta.len().to_le_bytes());
                if let Ok(modified) = meta
                    .modified()
                    .map(|t| t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default())
                {
                    mix(&modified.as_nanos().to_le_bytes());
                }
            }
        }
    }
    format!("{h:016x}")
}

/// The `[height, width]` an `h × w` image is stored at: shorter side `size`, aspect ratio kept
/// (rounded to whole pixels), longer side at most [`MAX_ASPECT`] · `size`.
pub fn stored_size(h: usize, w: usize, size: usize) -> [usize; 2] {
    let scale = size as f64 / h.min(w).max(1) as f64;
    let long = |side: usize| ((side as f64 * scale).round() as usize).clamp(size, MAX_ASPECT * size);
    if h <= w { [size, long(w)] } else { [long(h), size] }
}

/// Decodes one image to RGB at [`stored_size`]: resized with Catmull-Rom so that its shorter
/// side is `size`; returns `([height, width], pixels)`.
pub(crate) fn decode_image(path: &Path, size: usize) -> std::result::Result<([usize; 2], Vec<u8>), String> {
    let img = image::ImageReader::open(path)
        .map_err(|e| e.to_string())?
        .with_guessed_format()
        .map_err(|e| e.to_string())?
        .decode()
        .map_err(|e| e.to_string())?
        .to_rgb8();
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return Err("empty image".into());
    }
    let [sh, sw] = stored_size(h as usize, w as usize, size);
    // A longer side past MAX_ASPECT keeps its centre part.
    let most = MAX_ASPECT as u32;
    let (crop_w, crop_h) = (w.min(most.saturating_mul(h)), h.min(most.saturating_mul(w)));
    let img = if (crop_w, crop_h) == (w, h) {
        img
    } else {
        image::imageops::crop_imm(&img, (w - crop_w) / 2, (h - crop_h) / 2, crop_w, crop_h).to_image()
    };
    let img = if img.dimensions() == (sw as u32, sh as u32) {
        img
    } else {
        image::imageops::resize(&img, sw as u32, sh as u32, FilterType::CatmullRom)
    };
    Ok(([sh, sw], img.into_raw()))
}

/// Decodes an ImageFolder tree into RGB images with shorter side `size` ([`stored_size`]), in
/// parallel; returns the set and the skipped files (`path: reason`).
pub fn read_image_folder(root: &Path, size: usize) -> Result<(ImageSet, Vec<String>)> {
    if size == 0 {
        return Err(Error::InvalidSetting {
            name: "image size",
            value: "0".into(),
            allowed: "at least 1".into(),
        });
    }
    let listing = list_image_folder(root)?;
    let jobs: Vec<(usize, &PathBuf)> = listing
        .iter()
        .enumerate()
        .flat_map(|(k, (_, files))| files.iter().map(move |f| (k, f)))
        .collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len().max(1));
    let chunk = jobs.len().div_ceil(threads);
    type Decoded<'a> = (usize, &'a PathBuf, std::result::Result<([usize; 2], Vec<u8>), String>);
    let decoded: Vec<Decoded> = std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .chunks(chunk.max(1))
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|&(k, f)| (k, f, decode_image(f, size)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("decoder thread"))
            .collect()
    });
    let values = decoded
        .iter()
        .map(|(_, _, r)| r.as_ref().map_or(0, |(_, p)| p.len()))
        .sum();
    let mut pixels = Vec::with_capacity(values);
    let mut sizes = Vec::with_capacity(decoded.len());
    let mut labels = Vec::with_capacity(decoded.len());
    let mut skipped = Vec::new();
    for (k, path, result) in decoded {
        match result {
            Ok((stored, p)) => {
                pixels.extend_from_slice(&p);
                sizes.push(stored);
                labels.push(k);
            }
            Err(reason) => {
                tracing::warn!("skipping {}: {reason}", path.display());
                skipped.push(format!("{}: {reason}", path.display()));
            }
        }
    }
    let set = ImageSet::new(
        sizes,
        3,
        pixels,
        labels,
        listing.into_iter().map(|(name, _)| name).collect(),
        root.display().to_string(),
    );
    set.validate().map_err(|e| match e {
        Error::Format { reason, .. } => Error::Format {
            path: root.into(),
            reason: format!("{reason} that could be decoded ({} files skipped)", skipped.len()),
        },
        other => other,
    })?;
    Ok((set, skipped))
}

/// Reads an ImageFolder tree through its cache at `cache_path`: the cache is used when its
/// manifest matches the tree (same files, sizes, times and decode size), and rebuilt otherwise.
pub fn load_image_folder(root: &Path, size: usize, cache_path: &Path) -> Result<(ImageSet, Manifest)> {
    let listing = list_image_folder(root)?;
    let print = fingerprint(&listing, size);
    if let Ok((set, manifest)) = cache::load(cache_path)
        && manifest.version == cache::CACHE_VERSION
        && manifest.fingerprint == print
    {
        return Ok((set, manifest));
    }
    let (set, skipped) = read_image_folder(root, size)?;
    if !skipped.is_empty() {
        tracing::warn!(
            "{}: {} files could not be decoded and were skipped",
            root.display(),
            skipped.len()
        );
    }
    let manifest = cache::manifest_for(&set, skipped, print);
    cache::save(cache_path, &set, &manifest)?;
    Ok((set, manifest))
}
