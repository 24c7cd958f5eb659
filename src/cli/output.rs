//! The one output path of every command that computes something: its files are checked before
//! the work (`Planned`), the work's text is gathered, not printed (`Report`), then `finish`
//! saves every file atomically (a file that cannot go where asked goes to a `.recovered` path
//! named on stderr), and only then prints. A closed or full stdout, a full disk, a file that
//! appeared meanwhile or a signal therefore never costs a finished result, in any command.

use anyhow::{bail, Result};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::results::text::terminal_safe;
use crate::results::write::{self, Placed};
use crate::results::ResultsError;

/// The exit status of a command whose reader went away (128 + SIGPIPE), as the shell's
/// `yes | head -1` reports.
pub const EXIT_BROKEN_PIPE: i32 = 141;

/// A file a command will write, checked before its work (`results::write::preflight`).
#[derive(Debug, Clone)]
pub struct Planned {
    /// The flag that named it (`--json`, `--out` ...), for messages.
    pub flag: &'static str,
    pub path: PathBuf,
    pub force: bool,
    /// A default name: numbered (`-2`, `-3` ...) if another run takes it meanwhile.
    pub numbered: bool,
}

impl Planned {
    /// `flag PATH` as the user gave it, checked now: what stands there, the folder, its
    /// permissions and the temporary file's name length.
    pub fn given(flag: &'static str, path: &Path, force: bool) -> Result<Planned> {
        write::preflight(path, force).map_err(|e| anyhow::anyhow!("{flag} {}", word(&e)))?;
        Ok(Planned {
            flag,
            path: path.to_path_buf(),
            force,
            numbered: false,
        })
    }

    /// An optional `flag PATH`.
    pub fn optional(flag: &'static str, path: Option<&Path>, force: bool) -> Result<Option<Self>> {
        path.map(|p| Self::given(flag, p, force)).transpose()
    }

    /// The first free name like `base` (`-2`, `-3` ... appended) whose `companions` are free
    /// too; never replaces anything.
    pub fn default_name(
        flag: &'static str,
        base: &Path,
        companions: &dyn Fn(&Path) -> Vec<PathBuf>,
    ) -> Result<Planned> {
        for n in 1..1000 {
            let p = write::numbered(base, n);
            let all = std::iter::once(p.clone()).chain(companions(&p));
            match all
                .map(|q| write::preflight(&q, false))
                .collect::<Result<Vec<()>, _>>()
            {
                Ok(_) => {
                    return Ok(Planned {
                        flag,
                        path: p,
                        force: false,
                        numbered: true,
                    })
                }
                Err(ResultsError::Exists { .. }) => continue,
                Err(e) => bail!("{flag} {}", word(&e)),
            }
        }
        bail!("{flag}: no free name like {} is left", base.display())
    }
}

/// A results error worded for the command line.
pub fn word(e: &ResultsError) -> String {
    match e {
        ResultsError::Exists { path } => {
            format!("{path} already exists; pass --force to overwrite it")
        }
        other => other.to_string(),
    }
}

/// A file's bytes and where they go; `companions` are written beside it once its own path is
/// known (the `.npy` files of a result, which follow it to a fallback path).
pub struct Output {
    pub planned: Planned,
    pub bytes: Vec<u8>,
    pub companions: Option<Companions>,
}

/// The companion files of an output, from the path the output itself went to.
pub type Companions = Box<dyn Fn(&Path) -> Vec<(PathBuf, Vec<u8>)>>;

impl Output {
    pub fn new(planned: Planned, bytes: Vec<u8>) -> Self {
        Output {
            planned,
            bytes,
            companions: None,
        }
    }
}

/// What a finished command saves and prints.
#[derive(Default)]
pub struct Report {
    /// stdout, printed after every file is saved.
    pub text: String,
    outputs: Vec<Output>,
    /// The signal that stopped the work (the result is partial): the exit status says so.
    pub stopped: Option<i32>,
    /// An error found after the text was gathered (printed after it, exit status 2).
    pub error: Option<anyhow::Error>,
}

impl Report {
    pub fn new() -> Self {
        Self::default()
    }

    /// Saves `output` when the command finishes.
    pub fn save(&mut self, output: Output) {
        self.outputs.push(output);
    }

    /// Text without a newline.
    pub fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }

    /// Saves every file, then prints the text and where each file went; returns the exit
    /// status: 2 when a file could not go where asked (or not at all), else 141 / 2 when stdout
    /// went away / failed, else 128 + the signal that stopped the work, else 0.
    pub fn finish(self) -> i32 {
        // All files are saved before a signal may end the process, not just each one.
        let (saved, mut failed) = super::signals::while_saving(|| {
            let mut saved = String::new();
            let failed = self
                .outputs
                .into_iter()
                .fold(false, |f, o| !save(o, &mut saved) | f);
            (saved, failed)
        });
        let printed = print(&self.text, &saved);
        if let Some(e) = &self.error {
            let worded = crate::error::one_line_error_worded(e, super::wording::flag_words);
            note(&format!("error: {worded}"));
            failed = true;
        }
        if failed {
            return 2;
        }
        match printed {
            Ok(()) => self.stopped.map_or(0, super::signals::exit_code),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => EXIT_BROKEN_PIPE,
            Err(e) => {
                note(&format!("error: cannot print to stdout: {e}"));
                2
            }
        }
    }
}

/// Saves one output (and its companions); a line per file written goes to `saved`, errors to
/// stderr at once (stdout may be gone). False when anything did not go where asked.
fn save(o: Output, saved: &mut String) -> bool {
    let Output {
        planned,
        bytes,
        companions,
    } = o;
    let placed = write::save_or_recover(
        &planned.path,
        planned.force,
        planned.numbered,
        &mut |p, ow| write::write_atomic(p, &bytes, ow),
    );
    let mut ok = true;
    let at = match placed {
        Placed::At(p) => p,
        Placed::Recovered { path, why } => {
            note(&format!(
                "error: {} {}: cannot write it ({}); saved it to {} instead",
                planned.flag,
                planned.path.display(),
                word(&why),
                path.display()
            ));
            ok = false;
            path
        }
        Placed::Lost { why, tried } => {
            let tried: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
            note(&format!(
                "error: {} {}: cannot write it ({}), nor at {}; the result is lost",
                planned.flag,
                planned.path.display(),
                word(&why),
                tried.join(" or ")
            ));
            return false;
        }
    };
    let _ = writeln!(saved, "saved {}", at.display());
    for (p, b) in companions.map(|c| c(&at)).unwrap_or_default() {
        match write::write_atomic(&p, &b, planned.force || at != planned.path) {
            Ok(()) => {
                let _ = writeln!(saved, "saved {}", p.display());
            }
            Err(e) => {
                note(&format!(
                    "error: {}: {} (the main file {} is saved)",
                    planned.flag,
                    word(&e),
                    at.display()
                ));
                ok = false;
            }
        }
    }
    ok
}

/// Prints the command's text and the saved lines, control characters escaped.
fn print(text: &str, saved: &str) -> std::io::Result<()> {
    let mut o = std::io::stdout().lock();
    o.write_all(terminal_safe(text).as_bytes())?;
    o.write_all(terminal_safe(saved).as_bytes())?;
    o.flush()
}

/// A line on stderr; a closed or full stderr never stops a command.
pub fn note(line: &str) {
    let _ = writeln!(std::io::stderr(), "{}", terminal_safe(line));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_but_lines_kept() {
        assert_eq!(terminal_safe("a\tb\nc"), "a\tb\nc");
        assert_eq!(
            terminal_safe("\u{1b}]0;x\u{7}\u{1b}[2J\u{9b}"),
            "\\x1b]0;x\\x07\\x1b[2J\\u{9b}"
        );
    }
}
