//! `headhunt show`: re-print a saved run, or one of the paper's result files.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;

use crate::results::text::{self, Thresholds};
use crate::results::RunRecord;

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// A result file: headhunt's JSON, or the paper's (`results/<model>/<name>.json`).
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
    let rec = RunRecord::load(&a.file)?;
    print!("{}", text::summary(&rec));
    println!();
    print!("{}", text::heatmap(&rec));
    println!();
    print!(
        "{}",
        text::head_lists(&rec, Thresholds { hi: a.hi, lo: a.lo })
    );
    if a.npy {
        for p in rec.save_npy(&a.file, a.force)? {
            println!("saved {}", p.display());
        }
    }
    if a.csv {
        println!("saved {}", rec.save_csv(&a.file, a.force)?.display());
    }
    Ok(())
}
