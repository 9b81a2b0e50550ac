//! NumPy `.npz` archives: a zip of `.npy` members, stored or deflated
//! (`numpy.savez` / `numpy.savez_compressed`).

use std::io::{Cursor, Read, Write};
use std::path::Path;

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use super::array::Array;
#[cfg(test)]
use super::npy::npy_bytes;
use super::npy::parse_npy;
use crate::error::{Error, Result};

/// Decodes every `.npy` member of an `.npz` image, in archive order.
pub fn parse_npz(bytes: &[u8], path: &Path) -> Result<Vec<(String, Array)>> {
    let mut archive = ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| Error::format(path, format!("not a valid .npz (zip) archive: {e}")))?;
    let mut arrays = Vec::with_capacity(archive.len());
    for index in 0..archive.len() {
        let mut member = archive
            .by_index(index)
            .map_err(|e| Error::format(path, format!("corrupt .npz member #{index}: {e}")))?;
        if member.is_dir() {
            continue;
        }
        let full = member
            .name()
            .map_err(|e| Error::format(path, format!("corrupt .npz member name #{index}: {e}")))?
            .to_string();
        let name = full.strip_suffix(".npy").unwrap_or(&full).to_string();
        let mut buf = Vec::with_capacity(member.size().min(1 << 32) as usize);
        member
            .read_to_end(&mut buf)
            .map_err(|e| Error::format(path, format!("cannot decompress .npz member `{full}`: {e}")))?;
        arrays.push((name.clone(), parse_npy(&buf, path, &name)?));
    }
    Ok(arrays)
}

/// Packs encoded `.npy` images (see [`npy_bytes`](super::npy::npy_bytes)) into a deflated
/// `.npz` image readable by `numpy.load`.
pub fn npz_bytes(members: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, body) in members {
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .large_file(body.len() as u64 >= u32::MAX as u64);
        zip.start_file(format!("{name}.npy"), options)
            .and_then(|()| zip.write_all(body).map_err(Into::into))
            .map_err(|e| Error::format("<memory>", format!("cannot write .npz member `{name}`: {e}")))?;
    }
    let cursor = zip
        .finish()
        .map_err(|e| Error::format("<memory>", format!("cannot finish .npz archive: {e}")))?;
    Ok(cursor.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::array::ArrayData;

    fn encode(arrays: &[(String, Array)]) -> Vec<(String, Vec<u8>)> {
        arrays.iter().map(|(n, a)| (n.clone(), npy_bytes(a))).collect()
    }

    #[test]
    fn round_trips_named_arrays_in_order() {
        let arrays = vec![
            ("block1".to_string(), Array::from_f32(2, 2, vec![1.0, 2.0, 3.0, 4.0])),
            (
                "pool".to_string(),
                Array::new(vec![2, 1], ArrayData::F64(vec![0.5, -0.5])),
            ),
            ("labels".to_string(), Array::from_labels(&[1, 0])),
        ];
        let bytes = npz_bytes(&encode(&arrays)).unwrap();
        assert_eq!(parse_npz(&bytes, Path::new("x.npz")).unwrap(), arrays);
    }

    #[test]
    fn truncated_archive_is_an_error() {
        let arrays = vec![("a".to_string(), Array::from_f32(1, 3, vec![1.0, 2.0, 3.0]))];
        let bytes = npz_bytes(&encode(&arrays)).unwrap();
        let err = parse_npz(&bytes[..bytes.len() / 2], Path::new("cut.npz")).unwrap_err();
        assert!(err.to_string().contains("cut.npz"), "{err}");
    }
}
