//! NumPy `.npy` arrays: header parsing by `npyz`, bulk element decoding here.
//!
//! Format: <https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html>.
//! Reads float16/32/64 and (u)int8..64, little or big endian, C or Fortran order.

use std::io::Cursor;
use std::path::Path;

use npyz::{DType, Endianness, NpyHeader, Order, TypeChar, WriterBuilder};

use super::array::{Array, ArrayData, fortran_to_c};
use crate::error::{Error, Result};

const MAGIC: &[u8] = b"\x93NUMPY";

/// Decodes one `.npy` image. `path` and `name` only label errors.
pub fn parse_npy(bytes: &[u8], path: &Path, name: &str) -> Result<Array> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(Error::format(
            path,
            format!("array `{name}` is not a NumPy .npy array (wrong magic bytes)"),
        ));
    }
    check_declared_size(bytes, path, name)?;
    let mut cursor = Cursor::new(bytes);
    let header = NpyHeader::from_reader(&mut cursor)
        .map_err(|e| Error::format(path, format!("array `{name}` has a corrupt .npy header: {e}")))?;
    let body = &bytes[cursor.position() as usize..];

    let dtype = header.dtype();
    let DType::Plain(ts) = &dtype else {
        return Err(unsupported(path, name, &dtype));
    };
    let size = ts.size_field() as usize;
    let kind = match (ts.type_char(), size) {
        (TypeChar::Float, 2 | 4 | 8) => Kind::Float,
        (TypeChar::Int, 1 | 2 | 4 | 8) => Kind::Int,
        (TypeChar::Uint, 1 | 2 | 4 | 8) => Kind::Uint,
        _ => return Err(unsupported(path, name, &dtype)),
    };
    let big = matches!(ts.endianness(), Endianness::Big);

    let shape: Vec<usize> = header.shape().iter().map(|&d| d as usize).collect();
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|c| c.checked_mul(size).is_some())
        .ok_or_else(|| Error::format(path, format!("array `{name}` declares an impossible shape {shape:?}")))?;
    let needed = count * size;
    if body.len() < needed {
        return Err(Error::format(
            path,
            format!(
                "array `{name}` declares shape {shape:?} ({needed} bytes of data) but the file holds only {} bytes: it is truncated",
                body.len()
            ),
        ));
    }
    let raw = &body[..needed];
    let data = match kind {
        Kind::Float => match size {
            2 => ArrayData::F32(decode::<2, _>(raw, big, |b| half::f16::from_le_bytes(b).to_f32())),
            4 => ArrayData::F32(decode::<4, _>(raw, big, f32::from_le_bytes)),
            _ => ArrayData::F64(decode::<8, _>(raw, big, f64::from_le_bytes)),
        },
        Kind::Int => ArrayData::I64(match size {
            1 => decode::<1, _>(raw, big, |b| i8::from_le_bytes(b) as i64),
            2 => decode::<2, _>(raw, big, |b| i16::from_le_bytes(b) as i64),
            4 => decode::<4, _>(raw, big, |b| i32::from_le_bytes(b) as i64),
            _ => decode::<8, _>(raw, big, i64::from_le_bytes),
        }),
        Kind::Uint => ArrayData::I64(match size {
            1 => decode::<1, _>(raw, big, |b| u8::from_le_bytes(b) as i64),
            2 => decode::<2, _>(raw, big, |b| u16::from_le_bytes(b) as i64),
            4 => decode::<4, _>(raw, big, |b| u32::from_le_bytes(b) as i64),
            _ => decode::<8, _>(raw, big, |b| i64::try_from(u64::from_le_bytes(b)).unwrap_or(i64::MAX)),
        }),
    };
    let data = if header.order() == Order::Fortran {
        match data {
            ArrayData::F32(v) => ArrayData::F32(fortran_to_c(&shape, &v)),
            ArrayData::F64(v) => ArrayData::F64(fortran_to_c(&shape, &v)),
            ArrayData::I64(v) => ArrayData::I64(fortran_to_c(&shape, &v)),
        }
    } else {
        data
    };
    Ok(Array::new(shape, data))
}

/// Rejects a header whose declared shape has more elements than any file can hold, before the
/// header parser multiplies the extents out.
fn check_declared_size(bytes: &[u8], path: &Path, name: &str) -> Result<()> {
    let (len, start) = match bytes.get(6) {
        Some(1) if bytes.len() >= 10 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        Some(2 | 3) if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        _ => return Ok(()), // the header parser reports the unknown version or the short file
    };
    let Some(text) = bytes.get(start..start.saturating_add(len)) else {
        return Ok(());
    };
    let text = String::from_utf8_lossy(text);
    let Some(shape) = text.split("'shape'").nth(1).and_then(|rest| rest.split(')').next()) else {
        return Ok(());
    };
    let mut elements: u64 = 1;
    for extent in shape.split(|c: char| !c.is_ascii_digit()).filter(|t| !t.is_empty()) {
        elements = extent
            .parse::<u64>()
            .ok()
            .and_then(|e| elements.checked_mul(e))
            .filter(|&e| e <= isize::MAX as u64 / 8)
            .ok_or_else(|| Error::format(path, format!("array `{name}` declares an impossible shape ({shape}))")))?;
    }
    Ok(())
}

/// Encodes an array as a `.npy` image (little endian, C order).
pub fn npy_bytes(array: &Array) -> Vec<u8> {
    let shape: Vec<u64> = array.shape.iter().map(|&d| d as u64).collect();
    let mut out = Vec::with_capacity(128 + array.data.len() * 8);
    match &array.data {
        ArrayData::F32(v) => write_all(&mut out, &shape, v),
        ArrayData::F64(v) => write_all(&mut out, &shape, v),
        ArrayData::I64(v) => write_all(&mut out, &shape, v),
    }
    out
}

/// Encodes bytes as a 1-D `uint8` `.npy` image (how losslens stores JSON metadata in `.npz`).
pub(crate) fn npy_bytes_u8(values: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + values.len());
    write_all(&mut out, &[values.len() as u64], values);
    out
}

fn write_all<T: npyz::AutoSerialize + Copy>(out: &mut Vec<u8>, shape: &[u64], values: &[T]) {
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(Cursor::new(out))
        .begin_nd()
        .expect("writing to memory cannot fail");
    writer
        .extend(values.iter().copied())
        .expect("writing to memory cannot fail");
    writer.finish().expect("writing to memory cannot fail");
}

enum Kind {
    Float,
    Int,
    Uint,
}

fn decode<const N: usize, T>(raw: &[u8], big_endian: bool, from_le: impl Fn([u8; N]) -> T) -> Vec<T> {
    raw.chunks_exact(N)
        .map(|chunk| {
            let mut b: [u8; N] = chunk.try_into().expect("chunk of N bytes");
            if big_endian {
                b.reverse();
            }
            from_le(b)
        })
        .collect()
}

fn unsupported(path: &Path, name: &str, dtype: &DType) -> Error {
    let dtype = match dtype {
        DType::Plain(ts) => ts.to_string(),
        other => format!("{other:?}"),
    };
    Error::UnsupportedDtype {
        path: path.to_path_buf(),
        array: name.to_string(),
        dtype,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(descr: &str, fortran: bool, shape: &str) -> Vec<u8> {
        let dict = format!(
            "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
            if fortran { "True" } else { "False" }
        );
        let mut text = dict.into_bytes();
        // Pad so that magic(6) + version(2) + len(2) + text is a multiple of 64.
        while (10 + text.len() + 1) % 64 != 0 {
            text.push(b' ');
        }
        text.push(b'\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(text.len() as u16).to_le_bytes());
        out.extend_from_slice(&text);
        out
    }

    #[test]
    fn round_trips_each_element_type() {
        for array in [
            Array::from_f32(2, 3, vec![1.0, -2.0, 3.5, 0.0, 1e-7, 6.0]),
            Array::new(vec![3], ArrayData::F64(vec![1.0, f64::MAX, -0.25])),
            Array::from_labels(&[0, 3, 2, 1]),
        ] {
            let bytes = npy_bytes(&array);
            assert_eq!(parse_npy(&bytes, Path::new("t.npy"), "a").unwrap(), array);
        }
    }

    #[test]
    fn reads_half_big_endian_and_fortran() {
        let mut f16 = header("<f2", false, "(2,)");
        f16.extend_from_slice(&half::f16::from_f32(1.5).to_le_bytes());
        f16.extend_from_slice(&half::f16::from_f32(-0.25).to_le_bytes());
        let a = parse_npy(&f16, Path::new("h.npy"), "h").unwrap();
        assert_eq!(a.data, ArrayData::F32(vec![1.5, -0.25]));

        let mut be = header(">f8", false, "(2,)");
        be.extend_from_slice(&2.5f64.to_be_bytes());
        be.extend_from_slice(&(-1.0f64).to_be_bytes());
        let a = parse_npy(&be, Path::new("b.npy"), "b").unwrap();
        assert_eq!(a.data, ArrayData::F64(vec![2.5, -1.0]));

        let mut fo = header("<i4", true, "(2, 3)");
        for v in [0i32, 3, 1, 4, 2, 5] {
            fo.extend_from_slice(&v.to_le_bytes());
        }
        let a = parse_npy(&fo, Path::new("f.npy"), "f").unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data, ArrayData::I64(vec![0, 1, 2, 3, 4, 5]));
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let p = Path::new("bad.npy");
        let err = parse_npy(b"PK\x03\x04garbage", p, "x").unwrap_err().to_string();
        assert!(err.contains("bad.npy") && err.contains("magic"), "{err}");

        let mut short = header("<f4", false, "(1000, 10)");
        short.extend_from_slice(&[0u8; 40]);
        let err = parse_npy(&short, p, "x").unwrap_err().to_string();
        assert!(err.contains("truncated") && err.contains("[1000, 10]"), "{err}");

        let complex = header("<c8", false, "(1,)");
        let err = parse_npy(&complex, p, "x").unwrap_err();
        assert!(matches!(err, Error::UnsupportedDtype { .. }), "{err}");

        let mut corrupt = b"\x93NUMPY\x01\x00".to_vec();
        corrupt.extend_from_slice(&[200, 0]);
        corrupt.extend_from_slice(b"{'descr': garbage");
        let err = parse_npy(&corrupt, p, "x").unwrap_err().to_string();
        assert!(err.contains("header"), "{err}");

        let huge = header("<f8", false, "(4611686018427387904, 8)");
        assert!(parse_npy(&huge, p, "x").is_err());
    }
}
