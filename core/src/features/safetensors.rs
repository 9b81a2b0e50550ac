//! safetensors files (<https://huggingface.co/docs/safetensors>): read F16/BF16/F32/F64 features
//! and integer labels; write F32/F64/I64 arrays plus losslens metadata in the header's
//! `__metadata__` map.

use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::array::{Array, ArrayData, NamedArrays};
use crate::error::{Error, Result};

/// Key of the JSON metadata entry in the safetensors `__metadata__` map.
pub(crate) const METADATA_KEY: &str = "losslens";
/// Key of the array order (a JSON list of names): safetensors stores tensors sorted by dtype and
/// name, losslens keeps the layer order of the network.
pub(crate) const ORDER_KEY: &str = "losslens_order";

/// Decodes every tensor of a safetensors image, in the order of their data, and the
/// losslens metadata string when present.
pub fn parse_safetensors(bytes: &[u8], path: &Path) -> Result<(NamedArrays, Option<String>)> {
    let bad = |e: safetensors::SafeTensorError| Error::format(path, format!("not a valid safetensors file: {e}"));
    let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(bad)?;
    let tensors = SafeTensors::deserialize(bytes).map_err(bad)?;
    let mut arrays = Vec::new();
    for name in metadata.offset_keys() {
        let view = tensors.tensor(&name).map_err(bad)?;
        let raw = view.data();
        let data = match view.dtype() {
            Dtype::F16 => ArrayData::F32(decode::<2, _>(raw, |b| half::f16::from_le_bytes(b).to_f32())),
            Dtype::BF16 => ArrayData::F32(decode::<2, _>(raw, |b| half::bf16::from_le_bytes(b).to_f32())),
            Dtype::F32 => ArrayData::F32(decode::<4, _>(raw, f32::from_le_bytes)),
            Dtype::F64 => ArrayData::F64(decode::<8, _>(raw, f64::from_le_bytes)),
            Dtype::I8 => ArrayData::I64(decode::<1, _>(raw, |b| i8::from_le_bytes(b) as i64)),
            Dtype::U8 => ArrayData::I64(decode::<1, _>(raw, |b| u8::from_le_bytes(b) as i64)),
            Dtype::I16 => ArrayData::I64(decode::<2, _>(raw, |b| i16::from_le_bytes(b) as i64)),
            Dtype::U16 => ArrayData::I64(decode::<2, _>(raw, |b| u16::from_le_bytes(b) as i64)),
            Dtype::I32 => ArrayData::I64(decode::<4, _>(raw, |b| i32::from_le_bytes(b) as i64)),
            Dtype::U32 => ArrayData::I64(decode::<4, _>(raw, |b| u32::from_le_bytes(b) as i64)),
            Dtype::I64 => ArrayData::I64(decode::<8, _>(raw, i64::from_le_bytes)),
            other => {
                return Err(Error::UnsupportedDtype {
                    path: path.to_path_buf(),
                    array: name,
                    dtype: format!("{other:?}"),
                });
            }
        };
        arrays.push((name, Array::new(view.shape().to_vec(), data)));
    }
    let header = metadata.metadata().as_ref();
    if let Some(order) = header
        .and_then(|m| m.get(ORDER_KEY))
        .and_then(|o| serde_json::from_str::<Vec<String>>(o).ok())
    {
        // One lookup per array (a crafted file may hold tens of thousands of them).
        let rank: std::collections::HashMap<&str, usize> =
            order.iter().enumerate().map(|(i, n)| (n.as_str(), i)).rev().collect();
        arrays.sort_by_cached_key(|(name, _)| rank.get(name.as_str()).copied().unwrap_or(usize::MAX));
    }
    Ok((arrays, header.and_then(|m| m.get(METADATA_KEY).cloned())))
}

/// Encodes named arrays as a safetensors image; `metadata` goes into the header.
pub fn safetensors_bytes(arrays: &[(String, Array)], metadata: Option<&str>) -> Result<Vec<u8>> {
    let encoded: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = arrays
        .iter()
        .map(|(name, array)| {
            let (dtype, bytes) = match &array.data {
                ArrayData::F32(v) => (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
                ArrayData::F64(v) => (Dtype::F64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
                ArrayData::I64(v) => (Dtype::I64, v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            };
            (name.clone(), dtype, array.shape.clone(), bytes)
        })
        .collect();
    let views = encoded
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            TensorView::new(*dtype, shape.clone(), bytes).map(|view| (name.as_str(), view))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::format("<memory>", format!("cannot encode safetensors: {e}")))?;
    let order =
        serde_json::to_string(&arrays.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>()).expect("names serialize");
    let info = Some(
        metadata
            .map(|m| (METADATA_KEY.to_string(), m.to_string()))
            .into_iter()
            .chain([(ORDER_KEY.to_string(), order)])
            .collect(),
    );
    safetensors::serialize(views, info)
        .map_err(|e| Error::format("<memory>", format!("cannot encode safetensors: {e}")))
}

fn decode<const N: usize, T>(raw: &[u8], from_le: impl Fn([u8; N]) -> T) -> Vec<T> {
    raw.chunks_exact(N)
        .map(|chunk| from_le(chunk.try_into().expect("chunk of N bytes")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_arrays_and_metadata() {
        let arrays = vec![
            ("z_last".to_string(), Array::from_f32(2, 2, vec![1.0, 2.0, 3.0, 4.0])),
            (
                "a_first".to_string(),
                Array::new(vec![2], ArrayData::F64(vec![0.5, -0.5])),
            ),
            ("labels".to_string(), Array::from_labels(&[1, 0])),
        ];
        let bytes = safetensors_bytes(&arrays, Some("{\"seed\":3}")).unwrap();
        let (back, meta) = parse_safetensors(&bytes, Path::new("x.safetensors")).unwrap();
        assert_eq!(meta.as_deref(), Some("{\"seed\":3}"));
        for (name, array) in &arrays {
            let found = back.iter().find(|(n, _)| n == name).expect("array present");
            assert_eq!(&found.1, array);
        }
    }

    #[test]
    fn garbage_is_an_error() {
        let err = parse_safetensors(
            b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}",
            Path::new("g.safetensors"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("g.safetensors"), "{err}");
        assert!(parse_safetensors(b"\x01", Path::new("g.safetensors")).is_err());
    }
}
