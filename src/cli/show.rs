//! `headhunt show`: re-print a saved run, one of the paper's result files, a head-groups
//! file saved by the explorer, or an attention file.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

use crate::results::text::{self, Thresholds};
use crate::results::SavedFile;
use std::io::Write;

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// A result file: headhunt's JSON (a run, head groups or attention patterns), or the paper's
    /// (`results/<model>/<name>.json`).
    pub file: PathBuf,
    #[arg(long, default_value_t = 0.05)]
    pub hi: f64,
    #[arg(long, default_value_t = 0.02)]
    pub lo: f64,
    /// Write the matrices as .npy beside the file.
    #[arg(long)]
    pub npy: bool,
    /// Write the matrices as CSV (layer,head,r,patched_logit_diff) beside the file.
    #[arg(long)]
    pub csv: bool,
    /// Overwrite existing .npy / .csv files.
    #[arg(long)]
    pub force: bool,
}

pub fn run(a: ShowArgs) -> Result<()> {
    super::patch::check_thresholds(a.hi, a.lo)?;
    // The one reader: the version, every field's type, the shape and the ranges are checked
    // there, for every kind of file.
    let rec = match SavedFile::load(&a.file)? {
        SavedFile::Run(rec) => *rec,
        SavedFile::Groups(file) => return show_other(&a, "a head-groups file", &file.summary()),
        SavedFile::Attention(f) => return show_other(&a, "an attention file", &f.summary()),
        f @ SavedFile::Analysis(_) => anyhow::bail!(
            "{}: {}, not a path-patching run (`headhunt plot` draws it)",
            a.file.display(),
            f.kind()
        ),
    };
    // Files first: a closed stdout must not cost them.
    let mut saved = Vec::new();
    if a.npy {
        saved.extend(super::signals::while_saving(|| {
            rec.save_npy(&a.file, a.force)
        })?);
    }
    if a.csv {
        saved.push(super::signals::while_saving(|| {
            rec.save_csv(&a.file, a.force)
        })?);
    }
    let mut out = String::new();
    out.push_str(&text::summary(&rec));
    out.push('\n');
    out.push_str(&text::heatmap(&rec));
    out.push('\n');
    out.push_str(&text::head_lists(&rec, Thresholds { hi: a.hi, lo: a.lo }));
    for p in saved {
        out.push_str(&format!("saved {}\n", p.display()));
    }
    print_safe(&out)
}

/// Prints `s` with the control characters of text from the file (a model label, a token)
/// escaped: a file must not retitle or clear the terminal.
fn print_safe(s: &str) -> Result<()> {
    let mut o = std::io::stdout().lock();
    write!(o, "{}", text::terminal_safe(s))?;
    o.flush()?;
    Ok(())
}

/// A file with no matrices (head groups, attention patterns): its summary.
fn show_other(a: &ShowArgs, what: &str, summary: &str) -> Result<()> {
    if a.npy || a.csv {
        anyhow::bail!(
            "{}: {what} has no matrices: --npy and --csv export path-patching runs",
            a.file.display()
        );
    }
    print_safe(summary)
}
