//! Shard parts and their merge.
//!
//! `patch --shard K/N` saves a part: an ordinary result whose rows are shard K's sender
//! layers, with a [`ShardInfo`] saying which shard it is and a fingerprint of what was swept
//! (model shape, tokenized data, receiver, first sender layer, algorithm, metric). `merge`
//! puts parts back together into the result one unsharded run would have written, and refuses
//! parts that do not belong together: another fingerprint, another shard count, a shard given
//! twice, rows that overlap, baselines that differ (the same shape with other weights), or
//! missing shards (unless a partial merge is asked for, which is then marked incomplete).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::data::TokenizedPair;
use crate::patching::{PatchSpec, Shard};

use super::{ModelInfo, PerExample, ResultsError, RunRecord};

/// Which shard a part holds, and of what.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ShardInfo {
    pub index: usize,
    pub count: usize,
    /// The shard's sender layers (from the receiver down).
    pub layers: Vec<usize>,
    /// `fnv1a64:HEX` of the model's shape, the tokenized data and the sweep's options: parts
    /// with different fingerprints are of different sweeps.
    pub fingerprint: String,
}

impl ShardInfo {
    pub fn new(shard: Shard, layers: Vec<usize>, fingerprint: String) -> Self {
        ShardInfo {
            index: shard.index,
            count: shard.count,
            layers,
            fingerprint,
        }
    }
}

/// 64-bit FNV-1a: small, stable across platforms and versions (a fingerprint must be the same
/// in every task of an array job).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The fingerprint of a sweep. The model enters by its shape, dtype and quantization, not its
/// path (array tasks may see one checkpoint under different paths); other weights of the same
/// shape are caught by the baselines, which every part records. Batch size, chunk rows and
/// devices change only the schedule, so they are left out.
pub fn fingerprint(model: &ModelInfo, pairs: &[TokenizedPair], spec: &PatchSpec) -> String {
    let what = serde_json::json!({
        "model": {
            "family": model.family,
            "shape": [model.n_layers, model.n_heads, model.n_kv_heads, model.d_model,
                      model.d_head, model.d_mlp, model.vocab_size],
            "dtype": model.dtype,
            "quantization": model.quantization,
            "ignored_config_keys": model.ignored_config_keys,
        },
        "pairs": pairs,
        "receiver": spec.receiver.label(),
        "begin_layer": spec.begin_layer,
        "algorithm": spec.algorithm,
        "metric": spec.metric,
    });
    format!("fnv1a64:{:016x}", fnv1a64(what.to_string().as_bytes()))
}

/// Why parts cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("no parts given")]
    NoParts,
    #[error("{path}: not a shard part (it has no `shard`; it was not written by patch --shard)")]
    NotAPart { path: String },
    #[error("{path}: shard {index} of {count}, but {first} is of {first_count} shards")]
    Count {
        path: String,
        index: usize,
        count: usize,
        first: String,
        first_count: usize,
    },
    #[error("{path}: from another sweep than {first} (fingerprint {this} vs {that}: another model shape, data or option)")]
    Foreign {
        path: String,
        first: String,
        this: String,
        that: String,
    },
    #[error("shard {index} given twice: {a} and {b}")]
    Duplicate { index: usize, a: String, b: String },
    #[error("{path}: its {what} baselines differ from {first}'s ({this} vs {that}): computed with other weights?")]
    Baselines {
        path: String,
        first: String,
        what: &'static str,
        this: f64,
        that: f64,
    },
    #[error("missing shard(s) {missing} of {count} (sender layers {layers}); merge the parts that are there with --partial")]
    Missing {
        missing: String,
        count: usize,
        layers: String,
    },
    #[error("{path}: {why}")]
    Bad { path: String, why: String },
    #[error(transparent)]
    Read(#[from] ResultsError),
}

/// A part as read: its path and record (per-example values included when present).
pub struct Part {
    pub path: PathBuf,
    pub record: RunRecord,
}

impl Part {
    /// Reads a part file and its per-example `.npy` companions when they are there.
    pub fn load(path: &Path) -> Result<Part, MergeError> {
        let mut record = RunRecord::load(path)?;
        record.per_example = read_per_example(path, &record)?;
        Ok(Part {
            path: path.to_path_buf(),
            record,
        })
    }

    fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn shard(&self) -> Result<&ShardInfo, MergeError> {
        self.record
            .shard
            .as_ref()
            .ok_or_else(|| MergeError::NotAPart { path: self.name() })
    }
}

/// The per-example values beside a result file, checked against its shape; `None` when the
/// files are absent (a part saved without them still merges, without intervals' raw data).
pub fn read_per_example(path: &Path, r: &RunRecord) -> Result<Option<PerExample>, MergeError> {
    let [p, b] = super::per_example_paths(path);
    if !p.exists() && !b.exists() {
        return Ok(None);
    }
    let n = r.data.as_ref().map(|d| d.n_examples).unwrap_or(0);
    let decode = |file: &Path, shape: &[usize]| -> Result<Vec<f64>, MergeError> {
        let bad = |why: String| MergeError::Bad {
            path: file.display().to_string(),
            why,
        };
        let bytes = super::read::read_bytes(file)?;
        let (data, got) =
            super::npy::decode_f64(&bytes).ok_or_else(|| bad("not a float64 .npy file".into()))?;
        if got != shape {
            return Err(bad(format!("shape {got:?}, expected {shape:?}")));
        }
        Ok(data)
    };
    let (l, h) = (r.n_layers, r.n_heads);
    let patched = decode(&p, &[n, l, h])?;
    let base = decode(&b, &[n, 2])?;
    let patched = patched
        .chunks(l * h)
        .map(|ex| {
            ex.chunks(h)
                .map(|row| row.iter().map(|&x| x as f32).collect())
                .collect()
        })
        .collect();
    Ok(Some(PerExample {
        patched,
        normal: base.iter().step_by(2).map(|&x| x as f32).collect(),
        contrast: base.iter().skip(1).step_by(2).map(|&x| x as f32).collect(),
    }))
}

/// The parts in a list of files and folders: a folder gives every `*.json` in it that is a
/// shard part (other JSON files there, a merged result say, are left alone).
pub fn find_parts(given: &[PathBuf]) -> Result<Vec<Part>, MergeError> {
    let mut parts = Vec::new();
    for g in given {
        if !g.is_dir() {
            parts.push(Part::load(g)?);
            continue;
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(g)
            .map_err(|e| ResultsError::io(g, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for f in files {
            let part = Part::load(&f)?;
            if part.record.shard.is_some() {
                parts.push(part);
            }
        }
    }
    Ok(parts)
}

/// Merges parts of one sweep. `partial`: missing shards are allowed (the result is then
/// incomplete) instead of an error.
pub fn merge(parts: Vec<Part>, partial: bool) -> Result<RunRecord, MergeError> {
    let first = parts.first().ok_or(MergeError::NoParts)?;
    let info = first.shard()?.clone();
    let mut by_index: BTreeMap<usize, &Part> = BTreeMap::new();
    for p in &parts {
        check_belongs(first, &info, p)?;
        let s = p.shard()?;
        let lacking: Vec<usize> = (s.layers.iter())
            .filter(|l| !p.record.rows_computed.contains(l))
            .copied()
            .collect();
        if !lacking.is_empty() && !partial {
            return Err(MergeError::Bad {
                path: p.name(),
                why: format!(
                    "shard {} was stopped before sender layers {lacking:?}; run it again, or merge with --partial",
                    s.index
                ),
            });
        }
        if let Some(other) = by_index.insert(s.index, p) {
            return Err(MergeError::Duplicate {
                index: s.index,
                a: other.name(),
                b: p.name(),
            });
        }
    }
    let missing: Vec<usize> = (0..info.count)
        .filter(|i| !by_index.contains_key(i))
        .collect();
    if !missing.is_empty() && !partial {
        return Err(missing_error(&missing, &info, first));
    }
    let mut merged = first.record.clone();
    clear_rows(&mut merged);
    for p in by_index.values() {
        copy_rows(&mut merged, p)?;
    }
    finish(&mut merged, &parts);
    Ok(merged)
}

/// The same sweep (fingerprint, shard count) and the same baselines as the first part.
fn check_belongs(first: &Part, info: &ShardInfo, p: &Part) -> Result<(), MergeError> {
    let s = p.shard()?;
    if s.count != info.count {
        return Err(MergeError::Count {
            path: p.name(),
            index: s.index,
            count: s.count,
            first: first.name(),
            first_count: info.count,
        });
    }
    if s.fingerprint != info.fingerprint {
        return Err(MergeError::Foreign {
            path: p.name(),
            first: first.name(),
            this: s.fingerprint.clone(),
            that: info.fingerprint.clone(),
        });
    }
    let (a, b) = (&p.record, &first.record);
    for (what, x, y) in [
        ("normal", a.normal_logit_diff, b.normal_logit_diff),
        ("contrast", a.contrast_logit_diff, b.contrast_logit_diff),
    ] {
        let (x, y) = (x.unwrap_or(f64::NAN), y.unwrap_or(f64::NAN));
        let same = (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-4 * y.abs().max(1.0);
        if !same {
            return Err(MergeError::Baselines {
                path: p.name(),
                first: first.name(),
                what,
                this: x,
                that: y,
            });
        }
    }
    Ok(())
}

fn missing_error(missing: &[usize], info: &ShardInfo, first: &Part) -> MergeError {
    let spec_layers = split_of(&first.record, info.count);
    let layers: Vec<usize> = missing
        .iter()
        .flat_map(|&i| spec_layers.get(i).cloned().unwrap_or_default())
        .collect();
    let list = |v: &[usize]| {
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    MergeError::Missing {
        missing: list(missing),
        count: info.count,
        layers: if layers.is_empty() {
            "none".into()
        } else {
            list(&layers)
        },
    }
}

/// The split the parts were made with, recomputed from the first part's record.
fn split_of(r: &RunRecord, count: usize) -> Vec<Vec<usize>> {
    let spec = PatchSpec {
        receiver: r.receiver.clone(),
        begin_layer: r.begin_layer,
        batch_size: r.batch_size.unwrap_or(1).max(1),
        algorithm: r.algorithm.unwrap_or_default(),
        chunk_rows: 0,
        metric: r.metric,
    };
    crate::patching::shard::split(&spec, r.n_layers, count)
}

/// Empties the computed sender rows of the first part (rows no sender reaches stay: they are
/// the same in every part).
fn clear_rows(m: &mut RunRecord) {
    let senders: Vec<usize> = m
        .shard
        .as_ref()
        .map(|s| s.layers.clone())
        .unwrap_or_default();
    for l in senders {
        m.relative[l] = None;
        if let Some(p) = m.patched_logit_diff.as_mut() {
            p[l] = None;
        }
        if let Some(ci) = m.relative_ci.as_mut() {
            ci[l] = None;
        }
        if let Some(pe) = m.per_example.as_mut() {
            pe.patched
                .iter_mut()
                .for_each(|ex| ex[l] = vec![f32::NAN; ex[l].len()]);
        }
        m.rows_computed.retain(|&x| x != l);
    }
}

/// Copies a part's computed sender rows into the merged record.
fn copy_rows(m: &mut RunRecord, p: &Part) -> Result<(), MergeError> {
    let r = &p.record;
    let s = p.shard()?;
    if (r.n_layers, r.n_heads) != (m.n_layers, m.n_heads) {
        return Err(MergeError::Bad {
            path: p.name(),
            why: format!(
                "{}×{} heads, the first part {}×{}",
                r.n_layers, r.n_heads, m.n_layers, m.n_heads
            ),
        });
    }
    for &l in s.layers.iter().filter(|l| r.rows_computed.contains(l)) {
        if m.rows_computed.contains(&l) {
            return Err(MergeError::Bad {
                path: p.name(),
                why: format!("sender layer {l} is in another part too (overlapping shards)"),
            });
        }
        m.relative[l] = r.relative[l].clone();
        if let (Some(to), Some(from)) = (m.patched_logit_diff.as_mut(), &r.patched_logit_diff) {
            to[l] = from[l].clone();
        }
        if let (Some(to), Some(from)) = (m.relative_ci.as_mut(), &r.relative_ci) {
            to[l] = from[l].clone();
        }
        copy_per_example(m, r, l);
        m.rows_computed.push(l);
    }
    Ok(())
}

fn copy_per_example(m: &mut RunRecord, r: &RunRecord, l: usize) {
    match (m.per_example.as_mut(), &r.per_example) {
        (Some(to), Some(from)) => {
            for (t, f) in to.patched.iter_mut().zip(&from.patched) {
                t[l] = f[l].clone();
            }
        }
        // One part without per-example values: the merged result has none either, rather
        // than a file with rows of NaN that read as not computed.
        (Some(_), None) => m.per_example = None,
        _ => {}
    }
}

/// Completes the merged record: rows sorted, complete when every sender row is there, no
/// shard, the parts' warnings (once each) and timings (sweep seconds summed: the compute
/// spent).
fn finish(m: &mut RunRecord, parts: &[Part]) {
    m.rows_computed.sort_unstable();
    let senders = split_of(m, 1).concat();
    m.complete = senders.iter().all(|l| m.rows_computed.contains(l));
    m.shard = None;
    m.created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for p in parts {
        for w in &p.record.warnings {
            if !m.warnings.contains(w) {
                m.warnings.push(w.clone());
            }
        }
    }
    if let Some(t) = m.timing.as_mut() {
        let all: Vec<_> = parts.iter().filter_map(|p| p.record.timing).collect();
        t.sweep_seconds = all.iter().map(|t| t.sweep_seconds).sum();
        t.cache_seconds = all.iter().map(|t| t.cache_seconds).fold(0.0, f64::max);
        t.load_seconds = all.iter().map(|t| t.load_seconds).fold(0.0, f64::max);
    }
}
