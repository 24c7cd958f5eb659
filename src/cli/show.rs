//! `headhunt show`: re-print a saved run, one of the paper's result files, or a head-groups
//! file saved by the explorer.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

use crate::results::groups::{GroupsFile, GROUPS_FORMAT_VERSION};
use crate::results::text::{self, Thresholds};
use crate::results::{RunRecord, SavedFile, FORMAT_VERSION};
use std::io::Write;

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// A result file: headhunt's JSON (a run or head groups), or the paper's
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
    let rec = match SavedFile::load(&a.file)? {
        SavedFile::Run(rec) => *rec,
        SavedFile::Groups(file) => return show_groups(&a, &file),
        SavedFile::Analysis(f) => anyhow::bail!(
            "{}: a {} result, not a path-patching run (`headhunt plot` draws it)",
            a.file.display(),
            f.kind()
        ),
    };
    warn_if_newer(&rec, &a.file);
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
    let mut o = std::io::stdout().lock();
    write!(o, "{}", text::summary(&rec))?;
    writeln!(o)?;
    write!(o, "{}", text::heatmap(&rec))?;
    writeln!(o)?;
    write!(
        o,
        "{}",
        text::head_lists(&rec, Thresholds { hi: a.hi, lo: a.lo })
    )?;
    for p in saved {
        writeln!(o, "saved {}", p.display())?;
    }
    o.flush()?;
    Ok(())
}

/// A file from a newer headhunt may hold fields this one does not know: say so.
fn warn_if_newer(rec: &RunRecord, file: &std::path::Path) {
    if rec.format_version > FORMAT_VERSION {
        let _ = writeln!(
            std::io::stderr(),
            "warning: {}: format_version {} is newer than this headhunt's {FORMAT_VERSION}; fields it does not know are not shown",
            file.display(),
            rec.format_version
        );
    }
}

/// A head-groups file: its model and groups (there are no matrices to export).
fn show_groups(a: &ShowArgs, file: &GroupsFile) -> Result<()> {
    if a.npy || a.csv {
        anyhow::bail!(
            "{}: a head-groups file has no matrices: --npy and --csv export runs",
            a.file.display()
        );
    }
    if file.format_version > GROUPS_FORMAT_VERSION {
        let _ = writeln!(
            std::io::stderr(),
            "warning: {}: format_version {} is newer than this headhunt's {GROUPS_FORMAT_VERSION}; fields it does not know are not shown",
            a.file.display(),
            file.format_version
        );
    }
    let mut o = std::io::stdout().lock();
    write!(o, "{}", file.summary())?;
    o.flush()?;
    Ok(())
}
