//! Reading input files that losslens does not control (feature files, datasets, results): only
//! regular files (a link to `/dev/zero` or a pipe would be read until memory runs out), and
//! compressed members only as far as their own headers say they reach.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// Bytes a compressed member may hold beyond what its header declares (padding).
pub(crate) const TRAILING_SLACK: u64 = 4096;

/// The whole of the regular file at `path`.
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(Error::format(
            path,
            "is not a regular file (a folder, device, pipe or socket); give the file itself",
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len().min(1 << 30) as usize);
    std::fs::File::open(path)
        .and_then(|f| f.take(meta.len()).read_to_end(&mut bytes))
        .map_err(|e| Error::io(path, e))?;
    Ok(bytes)
}

/// Reads up to `buf.len()` bytes; fewer only at the end of the stream.
pub(crate) fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Appends to `out` the next `needed` bytes of `reader` (fewer if it ends first: the caller
/// reports the truncation), then makes sure at most [`TRAILING_SLACK`] bytes follow; `what`
/// names the stream in the error. Memory grows with the data actually read, never with a size
/// a header merely declares.
pub(crate) fn read_declared(
    reader: &mut impl Read,
    needed: u64,
    out: &mut Vec<u8>,
    path: &Path,
    what: &str,
) -> Result<()> {
    let limit = needed.saturating_add(TRAILING_SLACK).saturating_add(1);
    let start = out.len();
    reader
        .take(limit)
        .read_to_end(out)
        .map_err(|e| Error::format(path, format!("cannot read {what}: {e}")))?;
    let read = (out.len() - start) as u64;
    if read > needed.saturating_add(TRAILING_SLACK) {
        return Err(Error::format(
            path,
            format!(
                "{what} holds more data than its header declares ({needed} bytes); refusing to read further \
                 (a damaged or hostile file)"
            ),
        ));
    }
    out.truncate(start + read.min(needed) as usize);
    Ok(())
}

/// Refuses a setting whose data would need more than `bytes` of memory beyond what the machine
/// has (or a hard 1 TiB bound), before anything is allocated: `setting` and `value` name the
/// cause in the error.
pub(crate) fn check_memory(setting: &'static str, value: impl std::fmt::Display, bytes: u128) -> Result<()> {
    let available = available_memory();
    if bytes > u128::from(available) {
        return Err(Error::invalid_setting(
            setting,
            value,
            format!(
                "a size that fits in memory: this needs {}, the machine has {} available",
                human_bytes(bytes),
                human_bytes(u128::from(available))
            ),
        ));
    }
    Ok(())
}

/// Memory this process may use: `MemAvailable` of `/proc/meminfo` on Linux, else 16 GiB; never
/// more than 1 TiB.
fn available_memory() -> u64 {
    const FALLBACK: u64 = 16 << 30;
    const CEILING: u64 = 1 << 40;
    let from_proc = std::fs::read_to_string("/proc/meminfo").ok().and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        kib.checked_mul(1024)
    });
    from_proc.unwrap_or(FALLBACK).min(CEILING)
}

/// `1.5 GiB`.
fn human_bytes(bytes: u128) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == UNITS.len() - 1 && value >= 1024.0 {
        return format!("more than {:.0} {}", value, UNITS[unit]);
    }
    format!("{value:.1} {}", UNITS[unit])
}
