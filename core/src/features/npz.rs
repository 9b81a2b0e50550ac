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
use crate::input::{read_declared, read_up_to};

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
        let buf = read_member(&mut member, path, &full)?;
        arrays.push((name.clone(), parse_npy(&buf, path, &name)?));
    }
    Ok(arrays)
}

/// Largest `.npy` header losslens reads (numpy writes a few hundred bytes).
const MAX_HEADER: usize = 1 << 20;

/// The bytes of one `.npy` member, read without trusting any size the archive declares: the
/// header first, then exactly the bytes its shape and dtype need; a member that inflates to more
/// is refused before it is inflated further (a decompression bomb).
fn read_member(member: &mut impl Read, path: &Path, full: &str) -> Result<Vec<u8>> {
    let what = format!(".npz member `{full}`");
    let io = |e: std::io::Error| Error::format(path, format!("cannot decompress {what}: {e}"));
    // Magic (6), version (2), header length (2 bytes in version 1, 4 in versions 2 and 3).
    let mut buf = vec![0u8; 12];
    let got = read_up_to(member, &mut buf).map_err(io)?;
    buf.truncate(got);
    let (header_len, prefix) = match buf.get(6) {
        Some(1) if got >= 10 => (u16::from_le_bytes([buf[8], buf[9]]) as usize, 10),
        Some(2 | 3) if got >= 12 => (u32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize, 12),
        // Not a .npy image (or a truncated one): parse_npy says which.
        _ => return Ok(buf),
    };
    if header_len > MAX_HEADER {
        return Err(Error::format(
            path,
            format!("{what} declares a {header_len}-byte header; refusing (at most {MAX_HEADER})"),
        ));
    }
    let total_header = prefix + header_len;
    if buf.len() < total_header {
        let mut rest = vec![0u8; total_header - buf.len()];
        let got = read_up_to(member, &mut rest).map_err(io)?;
        rest.truncate(got);
        buf.extend_from_slice(&rest);
    }
    let Some(needed) = declared_bytes(&buf) else {
        // parse_npy names what is wrong with the header.
        return Ok(buf);
    };
    read_declared(member, needed, &mut buf, path, &what)?;
    Ok(buf)
}

/// The data bytes an `.npy` header declares, if it can be read (parse_npy reports bad headers).
fn declared_bytes(header: &[u8]) -> Option<u64> {
    let header = npyz::NpyHeader::from_reader(Cursor::new(header)).ok()?;
    let npyz::DType::Plain(ts) = header.dtype() else {
        return None;
    };
    header
        .shape()
        .iter()
        .try_fold(ts.size_field(), |acc, &d| acc.checked_mul(d))
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
