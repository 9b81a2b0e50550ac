//! Atomic file writes: a temporary file in the destination folder, synced, then renamed over
//! the destination, so a reader never sees a half-written file and a crash loses nothing that
//! was already there. Every file losslens writes goes through [`write`] (or [`write_json`]).

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Writes `bytes` to `path` atomically: a uniquely named temporary file beside `path` (so
/// concurrent writers never share one), synced, renamed over `path`, then the folder synced so
/// the rename itself survives a crash. The temporary file is removed on any error.
pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let result = (|| {
        let prefix = format!(".{name}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp");
        // Readable by everyone, like any file a program writes (temporary files are private by
        // default, which would keep a web server from serving a result site).
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
        let mut file = builder.tempfile_in(dir)?;
        file.write_all(bytes)?;
        file.as_file().sync_all()?;
        file.persist(path).map_err(|e| e.error)?;
        // Durability of the rename; not every platform can open a folder for syncing.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e: std::io::Error| Error::io(path, e))
}

/// Writes `value` as pretty-printed JSON to `path` atomically.
pub fn write_json<T: serde::Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::format(path, e.to_string()))?;
    write(path, text.as_bytes())
}

/// Removes the folder `path` and everything in it as one step for a reader: it is first renamed
/// to a hidden sibling, so a process killed during the removal leaves either the whole folder
/// or none of it under its name. A leftover from such a kill is removed by the next call.
pub fn remove_dir(path: &Path) -> Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("folder");
    let doomed = path.with_file_name(format!(".{name}.removing"));
    if doomed.exists() {
        std::fs::remove_dir_all(&doomed).map_err(|e| Error::io(&doomed, e))?;
    }
    if path.exists() {
        std::fs::rename(path, &doomed).map_err(|e| Error::io(path, e))?;
        std::fs::remove_dir_all(&doomed).map_err(|e| Error::io(&doomed, e))?;
    }
    Ok(())
}

/// Moves the folder `path` aside to the first free sibling `<name>.superseded-<n>` (n = 1, 2,
/// …) and returns where it went: work that is replaced is kept, never deleted.
pub fn move_aside(path: &Path) -> Result<std::path::PathBuf> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("folder");
    let mut n = 1;
    loop {
        let target = path.with_file_name(format!("{name}.superseded-{n}"));
        if !target.exists() {
            std::fs::rename(path, &target).map_err(|e| Error::io(path, e))?;
            return Ok(target);
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_folder_is_gone_whole_and_a_leftover_is_cleared() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("run");
        std::fs::create_dir_all(dir.join("checkpoint")).unwrap();
        write(&dir.join("checkpoint/state.json"), b"{}").unwrap();
        // A leftover of a removal that was killed half-way.
        let leftover = root.path().join(".run.removing");
        std::fs::create_dir_all(&leftover).unwrap();
        remove_dir(&dir).unwrap();
        assert!(!dir.exists() && !leftover.exists());
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
        // Nothing there: nothing to do.
        remove_dir(&dir).unwrap();
        // Written files are readable by others (a web server serving a site).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let file = root.path().join("f.json");
            write(&file, b"{}").unwrap();
            assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o644);
        }
    }

    #[test]
    fn a_superseded_folder_is_kept_beside_its_successor() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("run");
        for round in 1..=2 {
            std::fs::create_dir_all(&dir).unwrap();
            write(&dir.join("model.bpk"), format!("weights {round}").as_bytes()).unwrap();
            let kept = move_aside(&dir).unwrap();
            assert_eq!(kept, root.path().join(format!("run.superseded-{round}")));
            assert_eq!(
                std::fs::read(kept.join("model.bpk")).unwrap(),
                format!("weights {round}").as_bytes()
            );
            assert!(!dir.exists());
        }
    }
}
