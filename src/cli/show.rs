//! `headhunt show`: re-print a saved run, one of the paper's result files, a head-groups
//! file saved by the explorer, or an attention file.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

use super::output::{Output, Planned, Report};
use crate::results::text::{self, Thresholds};
use crate::results::SavedFile;

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
    /// Write the matrices as CSV beside the file: one row per cell (layer, head or column, r,
    /// the patched metric under its name, the interval's bounds; MLPs as head `mlp`).
    #[arg(long)]
    pub csv: bool,
    /// Overwrite existing .npy / .csv files.
    #[arg(long)]
    pub force: bool,
}

/// Prints the file; `--npy` and `--csv` files are checked first and saved before printing
/// (the one output path, `output::Report`, which also escapes the file's control characters).
pub fn run(a: ShowArgs) -> Result<Report> {
    super::patch::check_thresholds(a.hi, a.lo)?;
    // The one reader: the version, every field's type, the shape and the ranges are checked
    // there, for every kind of file.
    let value = crate::results::read_json(&a.file)?;
    if crate::results::read::format_of(&value, &a.file)? == Some(crate::results::scan::FORMAT) {
        return show_scan(&a, value);
    }
    let rec = match SavedFile::from_value(value, &a.file)? {
        SavedFile::Run(rec) => *rec,
        SavedFile::Groups(file) => return show_other(&a, "a head-groups file", &file.summary()),
        SavedFile::Attention(f) => return show_other(&a, "an attention file", &f.summary()),
        SavedFile::Analysis(f) => anyhow::bail!(
            "{}: a {} result, not a path-patching run (`headhunt plot` draws it)",
            a.file.display(),
            f.kind()
        ),
    };
    let mut files = Vec::new();
    if a.npy {
        files.extend(rec.npy_files(&a.file).into_iter().map(|f| ("--npy", f)));
    }
    if a.csv {
        let csv = (a.file.with_extension("csv"), rec.to_csv().into_bytes());
        files.push(("--csv", csv));
    }
    let mut r = Report::new();
    for (flag, (path, bytes)) in files {
        r.save(Output::new(Planned::given(flag, &path, a.force)?, bytes));
    }
    r.push(&text::summary(&rec));
    out!(r);
    r.push(&text::heatmap(&rec));
    out!(r);
    r.push(&text::head_lists(&rec, Thresholds { hi: a.hi, lo: a.lo }));
    Ok(r)
}

/// An activation-patching scan: its summary, table and largest cells, and with `--npy` /
/// `--csv` its matrices (its per-example values were written beside it by `headhunt scan`).
fn show_scan(a: &ShowArgs, value: serde_json::Value) -> Result<Report> {
    let rec = crate::results::scan::ScanRecord::from_value(value, &a.file)?;
    let mut files = Vec::new();
    if a.npy {
        files.extend(rec.npy_files(&a.file).into_iter().map(|f| ("--npy", f)));
    }
    if a.csv {
        let csv = (a.file.with_extension("csv"), rec.to_csv().into_bytes());
        files.push(("--csv", csv));
    }
    let mut r = Report::new();
    for (flag, (path, bytes)) in files {
        r.save(Output::new(Planned::given(flag, &path, a.force)?, bytes));
    }
    r.push(&crate::results::scan::text(&rec));
    Ok(r)
}

/// A file with no matrices (head groups, attention patterns): its summary.
fn show_other(a: &ShowArgs, what: &str, summary: &str) -> Result<Report> {
    if a.npy || a.csv {
        anyhow::bail!(
            "{}: {what} has no matrices: --npy and --csv export path-patching runs and scans",
            a.file.display()
        );
    }
    let mut r = Report::new();
    r.push(summary);
    Ok(r)
}
