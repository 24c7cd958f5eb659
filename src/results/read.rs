//! The one input path for every file headhunt opens: runs (headhunt's and the paper's),
//! head groups, analysis results and attention patterns. `show`, `plot`, `open`, the
//! gallery and the loaders of each kind all read through here, so that no caller can skip a
//! check (README "What is guaranteed"):
//!
//! - the file is opened without blocking (a FIFO in `results/` must not freeze the gallery)
//!   and only a regular file is read, at most [`MAX_BYTES`] of it (a link to `/dev/zero`
//!   must not fill memory);
//! - `format` and `format_version` are checked before anything else, so a file of a newer
//!   headhunt is refused with the version this one reads instead of half-understood;
//! - typed fields are read with their path tracked, so a wrong type names its field
//!   (`minimality[2].value`), on one line with the file.
//!
//! Shapes and value ranges are checked by each kind's own `check`, called by its loader.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{analysis, attention, groups, ResultsError, RunRecord};

/// The largest file read: far above any result (the paper's largest is under 100 KB, an
/// attention file of 500 tokens and 16 heads about 40 MB), far below what fills memory.
pub const MAX_BYTES: u64 = 256 * 1024 * 1024;

fn bad(path: &Path, msg: impl Into<String>) -> ResultsError {
    ResultsError::Format {
        path: path.display().to_string(),
        msg: msg.into(),
    }
}

/// What a file that is not a regular file is, in words.
fn kind_name(ft: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "a folder"
    } else if ft.is_fifo() {
        "a FIFO (named pipe)"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else {
        "not a plain file"
    }
}

/// The one-line refusal of something that is not a regular file; a link names its target,
/// since the name the user gave does not say it is a device.
fn not_regular(path: &Path, ft: &std::fs::FileType) -> ResultsError {
    let link = std::fs::read_link(path)
        .map(|t| format!(" (a link to {})", t.display()))
        .unwrap_or_default();
    bad(
        path,
        format!(
            "{}{link}, not a regular file: headhunt reads only regular files",
            kind_name(ft)
        ),
    )
}

/// Opens `path` for reading without waiting for a writer (`O_NONBLOCK`: opening a FIFO
/// otherwise blocks until someone opens its other end) and without making a terminal the
/// controlling one (`O_NOCTTY`).
fn open(path: &Path) -> Result<File, ResultsError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match std::fs::metadata(path) {
            // A socket cannot be opened at all: say what it is, not "no such device".
            Ok(m) if !m.is_file() => not_regular(path, &m.file_type()),
            _ => ResultsError::io(path, e),
        })
}

/// The bytes of `path`: a regular file of at most [`MAX_BYTES`]. Anything else (a FIFO, a
/// socket, a device, a folder) is a one-line error naming what it is, and never blocks.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, ResultsError> {
    read_bytes_capped(path, MAX_BYTES)
}

/// [`read_bytes`] with another cap (for tests: the cap's message without a huge file).
pub fn read_bytes_capped(path: &Path, cap: u64) -> Result<Vec<u8>, ResultsError> {
    let file = open(path)?;
    // fstat of the handle opened: what was checked is what is read.
    let meta = file.metadata().map_err(|e| ResultsError::io(path, e))?;
    if !meta.file_type().is_file() {
        return Err(not_regular(path, &meta.file_type()));
    }
    let too_big = |size: u64| {
        bad(
            path,
            format!(
                "{} bytes, more than the {} bytes ({} MiB) headhunt reads from a result file",
                size,
                cap,
                cap >> 20
            ),
        )
    };
    if meta.len() > cap {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // At most cap + 1 bytes, whatever the file does while it is read (it may grow).
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ResultsError::io(path, e))?;
    if bytes.len() as u64 > cap {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// A file read through [`read_bytes`] and parsed as JSON; bad JSON is one line naming the
/// file, the line and the column.
pub fn read_json(path: &Path) -> Result<Value, ResultsError> {
    let bytes = read_bytes(path)?;
    serde_json::from_slice(&bytes).map_err(|e| bad(path, format!("invalid JSON: {e}")))
}

/// The error of a typed read, naming the field by its path (`model.n_layers`,
/// `minimality[2].value`); `what` is the kind of file (`headhunt-ablation`).
fn field_error(
    path: &Path,
    what: &str,
    prefix: &str,
    e: serde_path_to_error::Error<serde_json::Error>,
) -> ResultsError {
    let inner = e.inner().to_string();
    let at = e.path().to_string();
    let field = match (prefix, at.as_str()) {
        ("", ".") => String::new(),
        (p, ".") => format!("field `{p}`: "),
        ("", a) => format!("field `{a}`: "),
        (p, a) => format!("field `{p}.{a}`: "),
    };
    bad(path, format!("not a valid {what} file: {field}{inner}"))
}

/// `value` read as a `T`, a wrong type or a missing field named by its path.
pub fn typed<T: DeserializeOwned>(
    value: Value,
    path: &Path,
    what: &str,
) -> Result<T, ResultsError> {
    serde_path_to_error::deserialize(value).map_err(|e| field_error(path, what, "", e))
}

/// A part of a file (`value` at field `prefix`) read as a `T` only to name a wrong field:
/// serde loses the path inside `#[serde(flatten)]` fields (an analysis file's header, a
/// data spec), so those parts are read on their own first.
pub fn typed_part<T: DeserializeOwned>(
    value: &Value,
    prefix: &str,
    path: &Path,
    what: &str,
) -> Result<(), ResultsError> {
    serde_path_to_error::deserialize::<_, T>(value)
        .map(drop)
        .map_err(|e| field_error(path, what, prefix, e))
}

/// The `data` of a file (run, analysis, attention), when present, read on its own so that a
/// wrong field of its flattened spec (`data.shots`) is named.
pub fn typed_data(value: &Value, path: &Path, what: &str) -> Result<(), ResultsError> {
    match value.get("data") {
        Some(d) if d.is_object() => typed_part::<crate::data::DataSpec>(d, "data", path, what),
        _ => Ok(()),
    }
}

/// The `format` field: absent, or a string (anything else is named).
pub fn format_of<'a>(value: &'a Value, path: &Path) -> Result<Option<&'a str>, ResultsError> {
    match value.get("format") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(bad(
            path,
            format!("field `format`: expected a string, got {other}"),
        )),
    }
}

/// `format_version` of a file of `format`: a whole number from 1 to `supported`. A missing
/// version, 0, or one above `supported` (a newer headhunt's file, whose fields this one may
/// misread) is refused with the version this headhunt reads.
pub fn check_version(
    value: &Value,
    path: &Path,
    format: &str,
    supported: u32,
) -> Result<u32, ResultsError> {
    let reads = format!("this headhunt reads version {supported} of {format}");
    match value.get("format_version") {
        None | Some(Value::Null) => Err(bad(path, format!("no field `format_version`; {reads}"))),
        Some(v) => match v.as_u64() {
            Some(n) if (1..=supported as u64).contains(&n) => Ok(n as u32),
            Some(n) => Err(bad(path, format!("field `format_version` is {n}; {reads}"))),
            None => Err(bad(
                path,
                format!("field `format_version`: expected a whole number, got {v}; {reads}"),
            )),
        },
    }
}

/// Any file headhunt opens, by its `format` field: a run (headhunt's, or the paper's with
/// its `matrix`), head groups, an analysis result, or attention patterns. The file is read,
/// parsed and checked once here, so the gallery, `headhunt open`, `show` and `plot`
/// dispatch on the kind instead of each reading the file its own way.
#[derive(Debug)]
pub enum SavedFile {
    Run(Box<RunRecord>),
    Groups(Box<groups::GroupsFile>),
    Analysis(Box<analysis::AnalysisFile>),
    Attention(Box<attention::AttentionFile>),
}

impl SavedFile {
    /// Reads and checks `path`, whatever its kind; every failure is one line naming the file
    /// and, where there is one, the field.
    pub fn load(path: &Path) -> Result<Self, ResultsError> {
        Self::from_value(read_json(path)?, path)
    }

    /// [`SavedFile::load`] of JSON already read from `path` (named in errors).
    pub fn from_value(value: Value, path: &Path) -> Result<Self, ResultsError> {
        Ok(match format_of(&value, path)? {
            Some(groups::GROUPS_FORMAT) => {
                SavedFile::Groups(Box::new(groups::GroupsFile::from_value(value, path)?))
            }
            Some(f) if analysis::ANALYSIS_FORMATS.contains(&f) => {
                SavedFile::Analysis(Box::new(analysis::AnalysisFile::from_value(value, path)?))
            }
            Some(attention::FORMAT) => {
                SavedFile::Attention(Box::new(attention::AttentionFile::from_value(value, path)?))
            }
            _ => SavedFile::Run(Box::new(RunRecord::from_value(value, path)?)),
        })
    }

    /// What the file is, in words (for messages that refuse a kind).
    pub fn kind(&self) -> String {
        match self {
            SavedFile::Run(_) => "a path-patching result".into(),
            SavedFile::Groups(_) => "a head-groups file".into(),
            SavedFile::Analysis(f) if f.kind() == "ablation" => "an ablation result".into(),
            SavedFile::Analysis(f) => format!("a {} result", f.kind()),
            SavedFile::Attention(_) => "an attention file".into(),
        }
    }
}

/// Every head of `heads` inside `n_layers × n_heads`; the error names `field` and the head.
pub fn heads_inside(
    heads: &[(usize, usize)],
    (n_layers, n_heads): (usize, usize),
    field: &str,
) -> Result<(), String> {
    match heads.iter().find(|&&(l, h)| l >= n_layers || h >= n_heads) {
        Some((l, h)) => Err(format!(
            "field `{field}` names head ({l}, {h}), outside the model's {n_layers} layers × {n_heads} heads"
        )),
        None => Ok(()),
    }
}

/// A fraction (an accuracy) in [0, 1]; NaN only where the format writes an undefined value
/// as null (`nan_ok`).
pub fn fraction(x: f64, field: &str, nan_ok: bool) -> Result<(), String> {
    if (0.0..=1.0).contains(&x) || (nan_ok && x.is_nan()) {
        Ok(())
    } else {
        Err(format!(
            "field `{field}` is {x}: an accuracy is a fraction from 0 to 1"
        ))
    }
}

/// A shape of at least one layer and one head: nothing can be drawn or listed of less.
pub fn shape_not_empty((n_layers, n_heads): (usize, usize), prefix: &str) -> Result<(), String> {
    if n_layers == 0 {
        return Err(format!(
            "field `{prefix}n_layers` is 0: a model has at least one layer"
        ));
    }
    if n_heads == 0 {
        return Err(format!(
            "field `{prefix}n_heads` is 0: a layer has at least one head"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("hh-read-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn only_regular_files_are_read() {
        let d = dir("kinds");
        let e = read_bytes(&d).unwrap_err().to_string();
        assert!(e.contains("a folder") && e.lines().count() == 1, "{e}");
        let link = d.join("zero.json");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let e = read_bytes(&link).unwrap_err().to_string();
        assert!(
            e.contains("a character device") && e.contains("/dev/zero"),
            "{e}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_cap_is_named() {
        let d = dir("cap");
        let p = d.join("big.json");
        std::fs::write(&p, "[1, 2, 3]").unwrap();
        let e = read_bytes_capped(&p, 4).unwrap_err().to_string();
        assert!(e.contains("9 bytes") && e.contains("4 bytes"), "{e}");
        assert_eq!(read_bytes_capped(&p, 9).unwrap().len(), 9);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn versions_outside_the_known_are_refused() {
        let p = Path::new("f.json");
        let v = |x: Value| serde_json::json!({ "format_version": x });
        assert_eq!(check_version(&v(1.into()), p, "x", 1).unwrap(), 1);
        for bad in [0.into(), 2.into(), "1".into(), Value::Null] {
            let e = check_version(&v(bad), p, "x", 1).unwrap_err().to_string();
            assert!(e.contains("this headhunt reads version 1 of x"), "{e}");
        }
    }
}
