//! Atomic, no-clobber file writing: a temporary file in the same folder, then a rename (or a
//! hard link when overwriting is not allowed, which fails if the target appeared meanwhile).
//!
//! What may be replaced is narrow on purpose: only a regular file, and only when the caller
//! says so. A device node, FIFO, socket, folder or symbolic link at the target is refused
//! whatever the caller says, because `rename` would silently turn it into a regular file (as
//! root, `/dev/full` included). Temporary files are named `.NAME.headhunt-tmp-PID-N`; a process
//! killed mid-write (SIGKILL, power loss) leaves one behind, and the next write into that
//! folder removes those whose process is gone. The fixed `headhunt-tmp` marker is what makes
//! a file ours: `.notes.tmp-123-4` of another program is never touched.
//!
//! A signal that would end the process during a write is put off until the write is done
//! (`Writing`), so that no command, explorer job or figure write leaves a temporary file.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
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

/// The marker in every temporary name: no other program names its files this way.
const MARKER: &str = ".headhunt-tmp-";

/// Writes in progress in this process (any thread).
static WRITING: AtomicUsize = AtomicUsize::new(0);
/// The exit status of a signal that arrived during a write and ends the process after it.
static DEFERRED_EXIT: AtomicI32 = AtomicI32::new(0);

/// Held while a file is written: an ending signal waits for it (see `end_or_defer`).
pub struct Writing;

impl Writing {
    pub fn start() -> Self {
        WRITING.fetch_add(1, Ordering::SeqCst);
        Writing
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        if WRITING.fetch_sub(1, Ordering::SeqCst) == 1 {
            let code = DEFERRED_EXIT.swap(0, Ordering::SeqCst);
            if code != 0 {
                std::process::exit(code);
            }
        }
    }
}

/// Ends the process with `code` now, or, while a file is being written, as soon as the last
/// write is done. The signal handler's one way to end the process.
pub fn end_or_defer(code: i32) {
    if WRITING.load(Ordering::SeqCst) > 0 {
        let _ = DEFERRED_EXIT.compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst);
        // The write may have finished between the two loads: then nobody would end us.
        if WRITING.load(Ordering::SeqCst) > 0 {
            return;
        }
        let code = DEFERRED_EXIT.swap(0, Ordering::SeqCst);
        if code == 0 {
            return;
        }
        std::process::exit(code);
    }
    std::process::exit(code);
}

/// `.NAME.headhunt-tmp-PID-N`: hidden, and recognisable as ours by `clean_stale`.
fn temp_name(name: &OsStr) -> String {
    format!(
        ".{}{MARKER}{}-{}",
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

/// The temporary path a write of `path` goes through first (for writers that need a path,
/// such as a safetensors save): named as `write_atomic` names its own.
pub fn temp_path(path: &Path) -> PathBuf {
    parent_of(path).join(temp_name(path.file_name().unwrap_or(OsStr::new("file"))))
}

/// Writes `bytes` to `path` atomically: readers see the old file or the new one, never a
/// part. Without `overwrite`, an existing file is an error and is never touched; with it, only
/// a regular file is replaced (see `check_target`). The parent folder is created if needed.
pub fn write_atomic(path: &Path, bytes: &[u8], overwrite: bool) -> Result<(), ResultsError> {
    let _writing = Writing::start();
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

/// `Some(pid)` when `name` is one of our temporary names `.NAME.headhunt-tmp-PID-N`.
fn temp_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix('.')?;
    let (_, tail) = rest.rsplit_once(MARKER)?;
    let (pid, n) = tail.split_once('-')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Removes our temporary files in `folder` (the marker, a regular file of this user) left by
/// processes that are gone (Linux: no `/proc/PID`) and older than `STALE_AFTER`. Elsewhere,
/// nothing is removed.
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
            .filter(|m| m.file_type().is_file() && owned_by_us(m))
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= STALE_AFTER);
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Whether this user owns the file (another user's temporary file is theirs to clean).
/// (Linux: `/proc/self` belongs to the process's user.)
fn owned_by_us(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|me| me.uid() == m.uid())
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

/// Where a finished result went (see `save_or_recover`).
#[derive(Debug)]
pub enum Placed {
    /// Where it was asked to go (a default name possibly numbered).
    At(PathBuf),
    /// Its own path failed (`why`); it went to a fallback path instead.
    Recovered { path: PathBuf, why: ResultsError },
    /// Nothing could take it.
    Lost {
        why: ResultsError,
        tried: Vec<PathBuf>,
    },
}

impl Placed {
    /// The file written, wherever it went.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Placed::At(p) | Placed::Recovered { path: p, .. } => Some(p),
            Placed::Lost { .. } => None,
        }
    }
}

/// Saves a finished result with `save(path, overwrite)` at `path` (a default name that another
/// run took meanwhile is numbered, `numbered`), or, when that fails, at a fallback path
/// (`fallback_paths`). The one way every command and the explorer save what they computed:
/// losing hours of computation is worse than one file in an unexpected place.
pub fn save_or_recover(
    path: &Path,
    overwrite: bool,
    numbered: bool,
    save: &mut dyn FnMut(&Path, bool) -> Result<(), ResultsError>,
) -> Placed {
    let _writing = Writing::start();
    let mut why = None;
    for n in 1..if numbered { 1000 } else { 2 } {
        let p = self::numbered(path, n);
        match save(&p, overwrite && !numbered) {
            Ok(()) => return Placed::At(p),
            Err(ResultsError::Exists { .. }) if numbered => continue,
            Err(e) => {
                why = Some(e);
                break;
            }
        }
    }
    let why = why.unwrap_or_else(|| ResultsError::io(path, "no free numbered name is left"));
    let tried = fallback_paths(path);
    for p in &tried {
        if save(p, false).is_ok() {
            return Placed::Recovered {
                path: p.clone(),
                why,
            };
        }
    }
    Placed::Lost { why, tried }
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
        let dead_old = dir.join(".r.json.headhunt-tmp-4194304-0");
        let dead_new = dir.join(".r.json.headhunt-tmp-4194304-1");
        let alive = dir.join(format!(".r.json.headhunt-tmp-{}-9", std::process::id()));
        let other = dir.join(".notes.tmp-4194304-x");
        // Another program's temporary name, of a dead PID and old: not ours, never removed.
        let theirs = dir.join(".r.json.tmp-4194304-0");
        for p in [&dead_old, &dead_new, &alive, &other, &theirs] {
            std::fs::write(p, b"").unwrap();
        }
        let old = std::time::SystemTime::now() - Duration::from_secs(3600);
        for p in [&dead_old, &alive, &other, &theirs] {
            let f = std::fs::File::options().write(true).open(p).unwrap();
            f.set_modified(old).unwrap();
        }
        write_atomic(&dir.join("r.json"), b"{}", false).unwrap();
        assert!(!dead_old.exists());
        assert!(dead_new.exists() && alive.exists() && other.exists() && theirs.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temp_names_are_recognised() {
        assert_eq!(temp_pid(".a.b.json.headhunt-tmp-12-3"), Some(12));
        assert_eq!(temp_pid(".a.b.json.tmp-12-3"), None);
        assert_eq!(temp_pid("a.json.headhunt-tmp-12-3"), None);
        assert_eq!(temp_pid(".a.json.headhunt-tmp-12-"), None);
        assert_eq!(
            numbered(Path::new("r/x.json"), 3),
            PathBuf::from("r/x-3.json")
        );
    }
}
