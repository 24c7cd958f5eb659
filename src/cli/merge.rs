//! `headhunt merge`: the shard parts of one sweep (`patch --shard`) into the result one
//! unsharded run would have written. Parts that do not belong together are refused with the
//! part named; missing shards are named with their sender layers (a running array job: merge
//! again later, or `--partial` for what is there, marked incomplete).

use anyhow::{bail, Result};
use clap::Args;
use std::path::{Path, PathBuf};

use super::output::{Output, Report};
use crate::results::shard::{find_parts, merge, Mergeable, Part, Parts};
use crate::results::text;
use crate::results::RunRecord;

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Part files (`patch --shard` results) or folders holding them.
    #[arg(required = true)]
    pub parts: Vec<PathBuf>,
    /// The merged result file (JSON; its per-example .npy files go beside it).
    #[arg(long, short = 'o')]
    pub out: PathBuf,
    /// Overwrite an existing result file.
    #[arg(long)]
    pub force: bool,
    /// Merge the parts that are there when shards are missing; the result is marked partial.
    #[arg(long)]
    pub partial: bool,
    /// Do not print the heatmap.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(a: MergeArgs) -> Result<Report> {
    let planned = super::patch::plan_out(Some(&a.out), PathBuf::new, a.force, false)?;
    match find_parts(&a.parts)? {
        Parts::Runs(parts) => {
            let text =
                |rec: &RunRecord| format!("{}\n\n{}\n", text::summary(rec), text::heatmap(rec));
            finish(&a, planned, parts, text)
        }
        Parts::Scans(parts) => finish(&a, planned, parts, crate::results::scan::text),
    }
}

/// Merges parts of one kind, refusing to write over one of them, and reports the result.
fn finish<R: Mergeable + 'static>(
    a: &MergeArgs,
    planned: super::output::Planned,
    parts: Vec<Part<R>>,
    text: impl Fn(&R) -> String,
) -> Result<Report> {
    if parts.is_empty() {
        bail!("no shard parts in {}", list(&a.parts));
    }
    for p in &parts {
        if same_file(&p.path, &a.out) {
            bail!(
                "--out {}: is one of the parts being merged",
                a.out.display()
            );
        }
    }
    let n = parts.len();
    let mut record = merge(parts, a.partial)?;
    let mut r = Report::new();
    if !a.quiet {
        r.push(&text(&record));
        out!(r);
    }
    let c = record.common();
    let rows = c.rows_computed.len();
    let state = if *c.complete { "complete" } else { "partial" };
    out!(r, "merged {n} parts: {rows} rows, {state}");
    let mut output = Output::new(planned, record.to_json().into_bytes());
    output.companions = Some(Box::new(move |p: &Path| record.per_example_files(p)));
    r.save(output);
    Ok(r)
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
