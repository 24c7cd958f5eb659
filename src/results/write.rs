//! Atomic, no-clobber file writing: a temporary file in the same folder, then a rename (or a
//! hard link when overwriting is not allowed, which fails if the target appeared meanwhile).

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::ResultsError;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Writes `bytes` to `path` atomically. Without `overwrite`, an existing file is an error and
/// is never touched. The parent folder is created if needed.
pub fn write_atomic(path: &Path, bytes: &[u8], overwrite: bool) -> Result<(), ResultsError> {
    if !overwrite && path.exists() {
        return Err(ResultsError::Exists {
            path: path.display().to_string(),
        });
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| {
        ResultsError::io(
            path,
            format!("cannot create folder {}: {e}", parent.display()),
        )
    })?;
    let name = path
        .file_name()
        .ok_or_else(|| ResultsError::io(path, "not a file name"))?
        .to_string_lossy();
    let tmp = parent.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(ResultsError::io(path, format!("cannot write: {e}")));
    }
    let placed = if overwrite {
        std::fs::rename(&tmp, path)
    } else {
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => std::fs::remove_file(&tmp),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let _ = std::fs::remove_file(&tmp);
                return Err(ResultsError::Exists {
                    path: path.display().to_string(),
                });
            }
            // File systems without hard links: the existence check above has to do.
            Err(_) => std::fs::rename(&tmp, path),
        }
    };
    placed.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        ResultsError::io(path, format!("cannot write: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_to_overwrite_without_intent() {
        let dir = std::env::temp_dir().join(format!("hh-write-{}", std::process::id()));
        let p = dir.join("sub/x.json");
        write_atomic(&p, b"one", false).unwrap();
        assert!(matches!(
            write_atomic(&p, b"two", false),
            Err(ResultsError::Exists { .. })
        ));
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        write_atomic(&p, b"two", true).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        // No temporary files left behind.
        let left: Vec<_> = std::fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(left.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
