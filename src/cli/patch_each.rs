//! `headhunt patch --each`: one sweep per receiver head input, each its own result file in
//! `--out DIR`. This is a drill-down level (the heads found at one level, each head's q, k and
//! v as the next receivers) run at once; with `--shard K/N` each array task runs its share of
//! the sweeps (dealt by cost), and every file is a complete, ordinary result (nothing to merge).
//! Every file is planned before any work; a signal stops after the current sweep's step and
//! keeps the sweeps done (the current one saved partial).

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

use super::output::{Planned, Report};
use super::patch::{report, save, spec_of, sweep, Data, PatchArgs};
use super::signals;
use crate::patching::{shard::deal, PatchSpec, Receiver, Shard};

/// Each head input of `--receiver` values on its own: `9.1.q` as given, `9.1` as its q, k and
/// v; residual receivers are refused (a level of the drill-down is heads).
fn each_receiver(values: &[String]) -> Result<Vec<Receiver>> {
    let mut out: Vec<Receiver> = Vec::new();
    for piece in values.iter().flat_map(|v| v.split(',')).map(str::trim) {
        let texts: Vec<String> = match piece.split('.').collect::<Vec<_>>()[..] {
            [l, h] if l.parse::<usize>().is_ok() && h.parse::<usize>().is_ok() => ["q", "k", "v"]
                .iter()
                .map(|x| format!("{piece}.{x}"))
                .collect(),
            _ => vec![piece.to_string()],
        };
        for t in texts {
            let r = Receiver::parse_one(&t)?;
            if !matches!(r, Receiver::Heads { .. }) {
                bail!("--receiver {t}: --each runs head receivers (LAYER.HEAD.q|k|v, or LAYER.HEAD for all three)");
            }
            if out.contains(&r) {
                bail!("--receiver {t}: given twice");
            }
            out.push(r);
        }
    }
    if out.is_empty() {
        bail!("--each: no --receiver given (expected head inputs such as 9.1.q or 9.1)");
    }
    Ok(out)
}

/// `DIR/<receiver>.json` (`DIR/9.1.q.json`).
fn file_of(dir: &Path, r: &Receiver) -> PathBuf {
    dir.join(format!("{}.json", r.cli_text().replace(' ', "_")))
}

pub fn run(a: PatchArgs, shard: Option<Shard>) -> Result<Report> {
    let receivers = each_receiver(&a.receivers)?;
    let Some(dir) = a.out.clone() else {
        bail!("--each: give --out DIR, the folder for one result file per receiver");
    };
    if dir.exists() && !dir.is_dir() {
        bail!(
            "--out {}: --each writes a file per receiver into a folder, and this is a file",
            dir.display()
        );
    }
    let copies = a.model.load_each()?;
    let lm = &copies[0];
    let specs = receivers
        .into_iter()
        .map(|r| spec_of(&a, r, lm))
        .collect::<Result<Vec<PatchSpec>>>()?;
    let mine = share(&specs, shard, lm.model.n_layers());
    std::fs::create_dir_all(&dir).map_err(|e| anyhow::anyhow!("--out {}: {e}", dir.display()))?;
    let planned = mine
        .iter()
        .map(|&i| {
            super::patch::plan_out(
                Some(&file_of(&dir, &specs[i].receiver)),
                PathBuf::new,
                a.force,
                a.npy,
            )
        })
        .collect::<Result<Vec<Planned>>>()?;
    let data = Data::load(lm, a.data.spec()?, a.metric)?;
    let mut r = Report::new();
    let honour = signals::Honour::start();
    for (&i, planned) in mine.iter().zip(planned) {
        if let Some(sig) = signals::received() {
            r.stopped = Some(sig);
            break;
        }
        let spec = &specs[i];
        let (record, complete) =
            match sweep(&copies, &data, spec, &spec.sender_layers(), a.max_memory) {
                Ok(x) => x,
                Err(e) => {
                    r.error = Some(e.context(format!("receiver {}", spec.receiver.cli_text())));
                    break;
                }
            };
        out!(r, "== receiver {} ==", spec.receiver.cli_text());
        report(&mut r, &record, &a);
        out!(r);
        save(&mut r, planned, &record, a.npy);
        if !complete {
            r.stopped = Some(signals::received().unwrap_or(signal_hook::consts::SIGINT));
            break;
        }
    }
    drop(honour);
    Ok(r)
}

/// The sweeps this process runs: all of them, or shard K's share dealt by cost.
fn share(specs: &[PatchSpec], shard: Option<Shard>, n_layers: usize) -> Vec<usize> {
    let Some(s) = shard else {
        return (0..specs.len()).collect();
    };
    let costs: Vec<f64> = specs.iter().map(|sp| sp.total_cost(n_layers)).collect();
    let mine = deal(&costs, s.count).swap_remove(s.index);
    let names: Vec<String> = mine.iter().map(|&i| specs[i].receiver.cli_text()).collect();
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "shard {}: receivers {}",
        s.label(),
        names.join(", ")
    );
    mine
}
