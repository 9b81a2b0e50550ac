//! IDX files (LeCun's MNIST format, also Fashion-MNIST), raw or gzip-compressed.
//!
//! Layout: two zero bytes, a type byte (0x08 = unsigned byte, the only type image datasets use),
//! the number of dimensions, then each dimension as a big-endian `u32`, then the data in C order.

use std::path::Path;

use crate::error::{Error, Result};

/// An unsigned-byte IDX array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions, outermost first (`[count, rows, cols]` for images, `[count]` for labels).
    pub dims: Vec<usize>,
    /// The values in C order.
    pub data: Vec<u8>,
}

/// Reads an IDX file; names ending in `.gz` are decompressed, only as far as the IDX header
/// says the data reaches (a stream that inflates to more is refused).
pub(crate) fn read_idx(path: &Path) -> Result<IdxArray> {
    let raw = crate::input::read_file(path)?;
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        let mut decoder = flate2::read::GzDecoder::new(raw.as_slice());
        let gzip = |e: std::io::Error| Error::format(path, format!("not a valid gzip stream: {e}"));
        let mut out = vec![0u8; 4];
        let got = crate::input::read_up_to(&mut decoder, &mut out).map_err(gzip)?;
        out.truncate(got);
        if got == 4 {
            let rank = out[3] as usize;
            let mut dims = vec![0u8; 4 * rank];
            let got = crate::input::read_up_to(&mut decoder, &mut dims).map_err(gzip)?;
            out.extend_from_slice(&dims[..got]);
            if got == dims.len() {
                let needed = dims.chunks_exact(4).try_fold(1u64, |acc, d| {
                    acc.checked_mul(u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as u64)
                });
                match needed {
                    Some(needed) => crate::input::read_declared(&mut decoder, needed, &mut out, path, "the IDX data")?,
                    None => return Err(Error::format(path, "IDX header declares an impossible size")),
                }
            }
        }
        out
    } else {
        raw
    };
    parse_idx(&bytes).map_err(|reason| Error::Format {
        path: path.into(),
        reason,
    })
}

/// Parses the bytes of an (uncompressed) IDX file.
pub fn parse_idx(bytes: &[u8]) -> std::result::Result<IdxArray, String> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err("not an IDX file (it must start with two zero bytes)".into());
    }
    if bytes[2] != 0x08 {
        return Err(format!(
            "IDX element type 0x{:02x} is not unsigned byte (0x08)",
            bytes[2]
        ));
    }
    let rank = bytes[3] as usize;
    let header = 4 + 4 * rank;
    if rank == 0 || bytes.len() < header {
        return Err(format!("IDX header of {rank} dimensions is truncated"));
    }
    let dims: Vec<usize> = (0..rank)
        .map(|d| u32::from_be_bytes(bytes[4 + 4 * d..8 + 4 * d].try_into().expect("4 bytes")) as usize)
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or("IDX dimensions overflow")?;
    let body = &bytes[header..];
    if body.len() != count {
        return Err(format!(
            "IDX dimensions {dims:?} need {count} bytes of data but the file has {} (truncated or corrupt)",
            body.len()
        ));
    }
    Ok(IdxArray {
        dims,
        data: body.to_vec(),
    })
}

/// Images and labels from a pair of IDX files.
///
/// # Shapes
/// - images: `[count, rows, cols]` bytes; labels: `[count]`
pub fn read_idx_pair(images: &Path, labels: &Path) -> Result<(IdxArray, IdxArray)> {
    let x = read_idx(images)?;
    let y = read_idx(labels)?;
    if x.dims.len() != 3 {
        return Err(Error::Format {
            path: images.into(),
            reason: format!(
                "IDX images must have 3 dimensions [count, rows, cols], found {:?}",
                x.dims
            ),
        });
    }
    if y.dims.len() != 1 {
        return Err(Error::Format {
            path: labels.into(),
            reason: format!("IDX labels must have 1 dimension [count], found {:?}", y.dims),
        });
    }
    if x.dims[0] != y.dims[0] {
        return Err(Error::Format {
            path: labels.into(),
            reason: format!(
                "{} labels but {} has {} images; the two files must come from the same split",
                y.dims[0],
                images.display(),
                x.dims[0]
            ),
        });
    }
    Ok((x, y))
}

/// A pair of IDX files as an [`ImageSet`](crate::data::ImageSet) of gray images; classes are
/// named `0`, `1`, … up to the largest label.
pub fn read_idx_set(images: &Path, labels: &Path) -> Result<crate::data::ImageSet> {
    let (x, y) = read_idx_pair(images, labels)?;
    let max = y.data.iter().copied().max().unwrap_or(0);
    let set = crate::data::ImageSet::uniform(
        [x.dims[1], x.dims[2]],
        1,
        x.data,
        y.data.iter().map(|&l| usize::from(l)).collect(),
        (0..=max).map(|k| k.to_string()).collect(),
        images.display().to_string(),
    );
    set.validate()?;
    Ok(set)
}
