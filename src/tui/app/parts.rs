//! `headhunt open DIR` on a folder of shard parts (`patch --shard`, a running array job): the
//! parts there merged (partially: missing shards leave their rows empty) into one heatmap,
//! merged again whenever the folder changes, so the heatmap fills in as parts land. Watched
//! over ssh, this is the cluster run's progress.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::{Level, RunState, Session};
use crate::results::shard::{find_parts, merge, Parts};
use crate::results::RunRecord;

/// How often the folder is looked at (the explorer ticks ten times a second).
const EVERY: Duration = Duration::from_secs(1);

/// A folder being watched: what it held when last merged.
#[derive(Debug, Clone)]
pub struct Watch {
    pub dir: PathBuf,
    stamp: Vec<(PathBuf, u64, Option<SystemTime>)>,
    checked: Instant,
}

/// The folder's JSON files with their sizes and times: a part that lands or is rewritten
/// changes it.
fn stamp(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<_> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((e.path(), m.len(), m.modified().ok()))
        })
        .collect();
    v.sort();
    v
}

/// The parts in `dir` merged as far as they go, with how many shards of how many are in.
fn merged(dir: &Path) -> Result<(RunRecord, usize, usize), String> {
    let parts = match find_parts(&[dir.to_path_buf()]).map_err(|e| e.to_string())? {
        Parts::Runs(p) => p,
        Parts::Scans(_) => {
            return Err(format!(
            "{}: scan parts (the explorer shows path-patching parts; `headhunt merge` joins scans)",
            dir.display()
        ))
        }
    };
    let Some(first) = parts.first() else {
        return Err(format!("{}: no shard parts yet", dir.display()));
    };
    let count = first.record.shard.as_ref().map_or(0, |s| s.count);
    let n = parts.len();
    let record = merge(parts, true).map_err(|e| e.to_string())?;
    Ok((record, n, count))
}

impl Session {
    /// Opens a folder of shard parts and starts watching it.
    pub(super) fn open_parts(&mut self, dir: PathBuf) {
        match merged(&dir) {
            Ok((record, n, count)) => {
                self.open_record(record, dir.clone());
                self.not_saved(&dir);
                self.set_status(Level::Info, parts_status(&dir, n, count));
            }
            Err(e) => self.set_status(Level::Error, format!("could not open: {e}")),
        }
        self.watching = Some(Watch {
            stamp: stamp(&dir),
            dir,
            checked: Instant::now(),
        });
    }

    /// Called on every tick: merges the watched folder again when it changed, in place of the
    /// run it opened (the cursor stays).
    pub fn on_tick(&mut self) {
        let Some(w) = self.watching.as_mut() else {
            return;
        };
        if w.checked.elapsed() < EVERY {
            return;
        }
        w.checked = Instant::now();
        let now = stamp(&w.dir);
        if now == w.stamp {
            return;
        }
        w.stamp = now;
        let dir = w.dir.clone();
        match merged(&dir) {
            Ok((record, n, count)) => self.refresh_parts(&dir, record, n, count),
            Err(e) => self.set_status(Level::Warn, e),
        }
    }

    /// The merged run is this session's to save (`s`), not a file's: it was opened from a
    /// folder.
    fn not_saved(&mut self, dir: &Path) {
        for s in &mut self.runs {
            if matches!(&s.state, RunState::Opened(p) if p == dir) {
                s.saved_to = None;
            }
        }
    }

    fn refresh_parts(&mut self, dir: &Path, record: RunRecord, n: usize, count: usize) {
        let slot = self
            .runs
            .iter_mut()
            .find(|s| matches!(&s.state, RunState::Opened(p) if p == dir));
        match slot {
            Some(s) => s.record = Some(record),
            None => {
                self.open_record(record, dir.to_path_buf());
                self.not_saved(dir);
            }
        }
        self.set_status(Level::Info, parts_status(dir, n, count));
    }
}

fn parts_status(dir: &Path, n: usize, count: usize) -> String {
    let state = if n >= count {
        "all in".to_string()
    } else {
        format!("watching for {} more", count - n)
    };
    format!("{}: {n} of {count} shards merged, {state}", dir.display())
}
