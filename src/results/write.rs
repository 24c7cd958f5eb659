//! Atomic, no-clobber file writing: a temporary file in the same folder, then a rename (or a
//! hard link when overwriting is not allowed, which fails if the target appeared meanwhile).
//!
//! What may be replaced is narrow on purpose: only a regular file, and only when the caller
//! says so. A device node, FIFO, socket, folder or symbolic link at the target is refused
//! whatever the caller says, because `rename` would silently turn it into a regular file (as
//! root, `/dev/full` included). Temporary files are named `.NAME.tmp-PID-N`; a process killed
//! mid-write (SIGKILL, power loss) leaves one behind, and the next write into that folder
//! removes those whose process is gone.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::ResultsError;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A temporary file whose process is gone is removed only once it is this old, so that a
/// writer in another PID namespace sharing the folder (whose PID we cannot see) is never hit.
const STALE_AFTER: Duration = Duration::from_secs(60);

/// The longest file name most file systems take (Linux `NAME_MAX`).
const NAME_MAX: usize = 255;

/// The folder a path's file goes in (`.` for a bare name).
pub fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `.NAME.tmp-PID-N`: hidden, and recognisable as ours by `clean_stale`.
fn temp_name(name: &OsStr) -> String {
    format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Checks what stands at `path`: nothing, or a regular file that may be replaced only with
/// `overwrite`. Everything else is refused.
pub fn check_target(path: &Path, overwrite: bool) -> Result<(), ResultsError> {
    let refuse = |what: &str| ResultsError::NotReplaceable {
        path: path.display().to_string(),
        what: what.to_string(),
    };
    let s = path.as_os_str().to_string_lossy();
    if s.is_empty() || s.ends_with('/') || path.file_name().is_none() {
        return Err(refuse(
            "names a directory (trailing /), expected a file name",
        ));
    }
    let name_len = path.file_name().map_or(0, |n| n.len());
    if name_len > NAME_MAX {
        return Err(ResultsError::io(
            path,
            format!("the file name is {name_len} bytes long, at most {NAME_MAX} are allowed"),
        ));
    }
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            return Err(ResultsError::io(
                path,
                "a folder on its path is not a folder but a file",
            ))
        }
        Err(e) => return Err(ResultsError::io(path, format!("cannot inspect: {e}"))),
    };
    let ft = meta.file_type();
    if ft.is_symlink() {
        let to = std::fs::read_link(path)
            .map(|t| t.display().to_string())
            .unwrap_or_else(|_| "?".into());
        let dangling = if path.exists() { "" } else { " (dangling)" };
        return Err(refuse(&format!(
            "is a symbolic link{dangling} to {to}; give the target's own path or another name"
        )));
    }
    if ft.is_dir() {
        return Err(refuse("is a directory, expected a file name"));
    }
    if !ft.is_file() {
        return Err(refuse(
            "is not a regular file (a device, FIFO or socket) and is never replaced",
        ));
    }
    if !overwrite {
        return Err(ResultsError::Exists {
            path: path.display().to_string(),
        });
    }
    Ok(())
}

/// Everything that can be known before a long run about writing `path` later: what stands
/// there, that the folder exists (it is created) and takes a file with the temporary name
/// (which is longer than the final one). Leaves nothing behind.
pub fn preflight(path: &Path, overwrite: bool) -> Result<(), ResultsError> {
    check_target(path, overwrite)?;
    let parent = parent_of(path);
    if parent.exists() && !parent.is_dir() {
        return Err(ResultsError::io(
            path,
            format!("{} is not a folder", parent.display()),
        ));
    }
    std::fs::create_dir_all(&parent).map_err(|e| {
        ResultsError::io(
            path,
            format!("cannot create folder {}: {e}", parent.display()),
        )
    })?;
    let probe = parent.join(temp_name(path.file_name().expect("checked above")));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| {
            ResultsError::io(
                path,
                format!("cannot write in folder {}: {e}", parent.display()),
            )
        })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Writes `bytes` to `path` atomically: readers see the old file or the new one, never a
/// part. Without `overwrite`, an existing file is an error and is never touched; with it, only
/// a regular file is replaced (see `check_target`). The parent folder is created if needed.
pub fn write_atomic(path: &Path, bytes: &[u8], overwrite: bool) -> Result<(), ResultsError> {
    check_target(path, overwrite)?;
    let parent = parent_of(path);
    std::fs::create_dir_all(&parent).map_err(|e| {
        ResultsError::io(
            path,
            format!("cannot create folder {}: {e}", parent.display()),
        )
    })?;
    clean_stale(&parent);
    let tmp = parent.join(temp_name(path.file_name().expect("checked above")));
    let mut file = None;
    let result = (|| -> std::io::Result<()> {
        let f = file.insert(
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?,
        );
        f.write_all(bytes)?;
        f.sync_all()?;
        Ok(())
    })();
    if let Err(e) = result {
        remove_temp(&tmp, file.as_ref());
        return Err(ResultsError::io(path, format!("cannot write: {e}")));
    }
    let placed = place(&tmp, path, overwrite);
    remove_temp(&tmp, file.as_ref());
    placed?;
    // The rename is durable only once the folder itself is on disk.
    if let Ok(d) = std::fs::File::open(&parent) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Removes the temporary file, also when its folder was moved or replaced while it was written
/// (then its name no longer reaches it): on Linux the open handle still knows where it is.
fn remove_temp(tmp: &Path, file: Option<&std::fs::File>) {
    if std::fs::remove_file(tmp).is_ok() {
        return;
    }
    #[cfg(target_os = "linux")]
    if let Some(f) = file {
        use std::os::fd::AsRawFd;
        if let Ok(now) = std::fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd())) {
            if now.file_name() == tmp.file_name() {
                let _ = std::fs::remove_file(now);
            }
        }
    }
}

/// Moves the finished temporary file to `path`.
fn place(tmp: &Path, path: &Path, overwrite: bool) -> Result<(), ResultsError> {
    let failed = |e: std::io::Error| ResultsError::io(path, format!("cannot write: {e}"));
    if overwrite {
        // Something may have appeared at the target during a long run: check again.
        check_target(path, true)?;
        return std::fs::rename(tmp, path).map_err(failed);
    }
    match std::fs::hard_link(tmp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(ResultsError::Exists {
            path: path.display().to_string(),
        }),
        // File systems without hard links: the check at the start has to do.
        Err(_) => {
            check_target(path, false)?;
            std::fs::rename(tmp, path).map_err(failed)
        }
    }
}

/// `Some(pid)` when `name` is one of our temporary names `.NAME.tmp-PID-N`.
fn temp_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?;
    let (_, tail) = rest.rsplit_once(".tmp-")?;
    let (pid, n) = tail.split_once('-')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Removes our temporary files in `folder` left by processes that are gone (Linux: no
/// `/proc/PID`) and older than `STALE_AFTER`. Elsewhere, nothing is removed.
pub fn clean_stale(folder: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = temp_pid(&name.to_string_lossy()) else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let old = e
            .metadata()
            .ok()
            .filter(|m| m.file_type().is_file())
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= STALE_AFTER);
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Where a finished result goes when its own path cannot take it (the folder vanished or
/// filled up, a file appeared): beside it under a name of this process, then the system's
/// temporary folder. Losing hours of computation is worse than one file in an unexpected
/// place, and the caller says where it went.
pub fn fallback_paths(path: &Path) -> Vec<PathBuf> {
    let stem = path
        .file_stem()
        .map_or_else(|| "result".into(), |s| s.to_string_lossy().to_string());
    let ext = path
        .extension()
        .map_or_else(|| "json".into(), |s| s.to_string_lossy().to_string());
    let name = format!("{stem}.recovered-{}.{ext}", std::process::id());
    vec![
        parent_of(path).join(&name),
        std::env::temp_dir().join(&name),
    ]
}

/// The `n`-th candidate for a default name: `base` itself, then `base` with `-2`, `-3`, ...
/// before the extension (for a name another run took in the same second).
pub fn numbered(base: &Path, n: usize) -> PathBuf {
    if n <= 1 {
        return base.to_path_buf();
    }
    let stem = base.file_stem().unwrap_or_default().to_string_lossy();
    match base.extension() {
        Some(ext) => base.with_file_name(format!("{stem}-{n}.{}", ext.to_string_lossy())),
        None => base.with_file_name(format!("{stem}-{n}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hh-write-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn refuses_to_overwrite_without_intent() {
        let dir = dir("clobber");
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

    #[test]
    fn never_replaces_what_is_not_a_regular_file() {
        let dir = dir("kinds");
        std::fs::create_dir_all(dir.join("folder")).unwrap();
        std::fs::write(dir.join("target"), b"keep").unwrap();
        std::os::unix::fs::symlink(dir.join("target"), dir.join("link")).unwrap();
        std::os::unix::fs::symlink(dir.join("nowhere"), dir.join("dangling")).unwrap();
        for name in ["folder", "link", "dangling", "folder/"] {
            let p = PathBuf::from(format!("{}/{name}", dir.display()));
            let e = write_atomic(&p, b"x", true).unwrap_err();
            assert!(
                matches!(e, ResultsError::NotReplaceable { .. }),
                "{name}: {e}"
            );
            assert!(preflight(&p, true).is_err(), "{name}");
        }
        assert_eq!(std::fs::read(dir.join("target")).unwrap(), b"keep");
        assert!(write_atomic(Path::new("/dev/null"), b"x", true).is_err());
        assert!(std::fs::symlink_metadata(dir.join("dangling"))
            .unwrap()
            .file_type()
            .is_symlink());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn preflight_finds_names_too_long_for_the_temporary_file() {
        let dir = dir("long");
        std::fs::create_dir_all(&dir).unwrap();
        // 250 bytes fit as a name, but not with the temporary prefix and suffix.
        let p = dir.join(format!("{}.json", "a".repeat(245)));
        assert!(preflight(&p, false).is_err());
        assert!(preflight(&dir.join("ok.json"), false).is_ok());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "probe left");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stale_temporary_files_of_dead_processes_are_removed() {
        let dir = dir("stale");
        std::fs::create_dir_all(&dir).unwrap();
        // PID 4194304 is above Linux's pid_max: no such process.
        let dead_old = dir.join(".r.json.tmp-4194304-0");
        let dead_new = dir.join(".r.json.tmp-4194304-1");
        let alive = dir.join(format!(".r.json.tmp-{}-9", std::process::id()));
        let other = dir.join(".notes.tmp-4194304-x");
        for p in [&dead_old, &dead_new, &alive, &other] {
            std::fs::write(p, b"").unwrap();
        }
        let old = std::time::SystemTime::now() - Duration::from_secs(3600);
        for p in [&dead_old, &alive, &other] {
            let f = std::fs::File::options().write(true).open(p).unwrap();
            f.set_modified(old).unwrap();
        }
        write_atomic(&dir.join("r.json"), b"{}", false).unwrap();
        assert!(!dead_old.exists());
        assert!(dead_new.exists() && alive.exists() && other.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temp_names_are_recognised() {
        assert_eq!(temp_pid(".a.b.json.tmp-12-3"), Some(12));
        assert_eq!(temp_pid("a.json.tmp-12-3"), None);
        assert_eq!(temp_pid(".a.json.tmp-12-"), None);
        assert_eq!(
            numbered(Path::new("r/x.json"), 3),
            PathBuf::from("r/x-3.json")
        );
    }
}
