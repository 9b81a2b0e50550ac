//! Helpers shared by the tests that read real datasets from `../shared/data`.

#![allow(dead_code)]

use std::path::PathBuf;

/// The shared data folder (`LOSSLENS_DATA` overrides it).
pub fn shared_data() -> PathBuf {
    std::env::var_os("LOSSLENS_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}

/// Whether a missing dataset is a failure (`LOSSLENS_TEST_DATA=require`) rather than a skip.
pub fn require_data() -> bool {
    std::env::var("LOSSLENS_TEST_DATA").as_deref() == Ok("require")
}

/// Unpacks `name.tar.zst` from the shared data into the target folder once; `None` (a skip)
/// when the archive is missing and real data is not required.
pub fn unpacked(name: &str) -> Option<PathBuf> {
    let archive = shared_data().join(format!("{name}.tar.zst"));
    if !archive.exists() {
        assert!(!require_data(), "no {}", archive.display());
        return None;
    }
    let dest = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("data");
    if !dest.join(name).join("test").is_dir() {
        std::fs::create_dir_all(&dest).unwrap();
        let status = std::process::Command::new("tar")
            .args(["-I", "zstd", "-xf"])
            .arg(&archive)
            .arg("-C")
            .arg(&dest)
            .status()
            .expect("tar runs");
        assert!(status.success(), "unpacking {} (needs zstd)", archive.display());
    }
    Some(dest.join(name))
}
