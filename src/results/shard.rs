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

use super::scan::ScanRecord;
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
    let mut options = serde_json::json!({
        "receiver": spec.receiver.label(),
        "begin_layer": spec.begin_layer,
        "algorithm": spec.algorithm,
        "metric": spec.metric,
    });
    // Only when not the default, so heads-only fingerprints are what they always were.
    if spec.senders != crate::patching::Senders::Heads {
        options["senders"] = serde_json::json!(spec.senders);
    }
    fingerprint_of(model, pairs, options)
}

/// The fingerprint of any sharded computation: the model's shape, the tokenized data and the
/// options that change its numbers.
pub fn fingerprint_of(
    model: &ModelInfo,
    pairs: &[TokenizedPair],
    options: serde_json::Value,
) -> String {
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
        "options": options,
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

/// What a result must offer to be merged from shard parts: rows (sender layers, or a scan's
/// layers) that each part computes some of, baselines every part shares, per-example values.
pub trait Mergeable: Clone {
    fn shard(&self) -> Option<&ShardInfo>;
    /// (layers, columns) of its matrices.
    fn shape(&self) -> (usize, usize);
    fn n_examples(&self) -> usize;
    /// The two baselines (means over examples), which every part of one computation shares.
    fn baselines(&self) -> (f64, f64);
    /// The rows of the whole computation split into `count` shards (one: every row).
    fn split(&self, count: usize) -> Vec<Vec<usize>>;
    /// The fields every mergeable result has, to be read and rewritten by the merge.
    fn common(&mut self) -> Common<'_>;
    /// The rows computed and the per-example values, read-only (a part is only read).
    fn done(&self) -> (&[usize], Option<&PerExample>);
    /// Row `l` of the kind's own matrices emptied (the shared per-example values and
    /// `rows_computed` are the merge's, [`clear_row`]).
    fn clear_row(&mut self, l: usize);
    /// Row `l` taken from `from`.
    fn copy_row(&mut self, from: &Self, l: usize);
    fn to_json(&self) -> String;
    fn per_example_files(&self, path: &Path) -> Vec<(PathBuf, Vec<u8>)>;
}

/// The fields of a result that the merge reads and rewrites, whatever the kind.
pub struct Common<'a> {
    pub rows_computed: &'a mut Vec<usize>,
    pub complete: &'a mut bool,
    pub created: &'a mut String,
    pub warnings: &'a mut Vec<String>,
    pub timing: &'a mut Option<super::Timing>,
    pub shard: &'a mut Option<ShardInfo>,
    pub per_example: &'a mut Option<PerExample>,
}

/// A part as read: its path and record (per-example values included when present).
pub struct Part<R> {
    pub path: PathBuf,
    pub record: R,
}

impl<R: Mergeable> Part<R> {
    fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn shard(&self) -> Result<&ShardInfo, MergeError> {
        self.record
            .shard()
            .ok_or_else(|| MergeError::NotAPart { path: self.name() })
    }
}

/// The parts of a list of files and folders, of either kind of result.
pub enum Parts {
    Runs(Vec<Part<RunRecord>>),
    Scans(Vec<Part<ScanRecord>>),
}

/// A file read as a part of the kind its `format` says.
enum Loaded {
    Run(Box<Part<RunRecord>>),
    Scan(Box<Part<ScanRecord>>),
}

fn load_part(path: &Path) -> Result<Loaded, MergeError> {
    let value = super::read::read_json(path)?;
    if super::read::format_of(&value, path)? == Some(super::scan::FORMAT) {
        let mut r = ScanRecord::from_value(value, path)?;
        let (l, c) = r.shape();
        r.per_example = read_per_example(path, r.n_examples(), (l, c))?;
        return Ok(Loaded::Scan(Box::new(Part {
            path: path.to_path_buf(),
            record: r,
        })));
    }
    let mut r = RunRecord::from_value(value, path)?;
    let (l, c) = r.shape();
    r.per_example = read_per_example(path, r.n_examples(), (l, c))?;
    if r.senders.mlp() && r.per_example.is_some() {
        r.mlp_per_example = read_mlp_per_example(path, r.n_examples(), l)?;
    }
    Ok(Loaded::Run(Box::new(Part {
        path: path.to_path_buf(),
        record: r,
    })))
}

/// The MLP senders' per-example values beside a result file ([example][layer]), checked
/// against its shape; `None` when the file is absent (the merge then drops them, as it drops
/// the heads' for a part without them).
pub fn read_mlp_per_example(
    path: &Path,
    n: usize,
    l: usize,
) -> Result<Option<Vec<Vec<f32>>>, MergeError> {
    let file = super::mlp_per_example_path(path);
    if !file.exists() {
        return Ok(None);
    }
    let bad = |why: String| MergeError::Bad {
        path: file.display().to_string(),
        why,
    };
    let bytes = super::read::read_bytes(&file)?;
    let (data, got) =
        super::npy::decode_f64(&bytes).ok_or_else(|| bad("not a float64 .npy file".into()))?;
    if got != [n, l] {
        return Err(bad(format!("shape {got:?}, expected {:?}", [n, l])));
    }
    Ok(Some(
        data.chunks(l.max(1))
            .map(|ex| ex.iter().map(|&x| x as f32).collect())
            .collect(),
    ))
}

/// The per-example values beside a result file, checked against its shape; `None` when the
/// files are absent (a part saved without them still merges, without them).
pub fn read_per_example(
    path: &Path,
    n: usize,
    (l, h): (usize, usize),
) -> Result<Option<PerExample>, MergeError> {
    let [p, b] = super::per_example_paths(path);
    if !p.exists() && !b.exists() {
        return Ok(None);
    }
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
    let patched = decode(&p, &[n, l, h])?;
    let base = decode(&b, &[n, 2])?;
    let patched = patched
        .chunks((l * h).max(1))
        .map(|ex| {
            ex.chunks(h.max(1))
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
/// shard part (other JSON files there, a merged result say, are left alone). Parts of runs and
/// of scans do not mix.
pub fn find_parts(given: &[PathBuf]) -> Result<Parts, MergeError> {
    let mut loaded = Vec::new();
    for g in given {
        if !g.is_dir() {
            loaded.push(load_part(g)?);
            continue;
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(g)
            .map_err(|e| ResultsError::io(g, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for f in files {
            // Other results in the folder (a merged one, say) are not parts.
            if let Ok(part) = load_part(&f) {
                let is_part = match &part {
                    Loaded::Run(p) => p.record.shard().is_some(),
                    Loaded::Scan(p) => p.record.shard().is_some(),
                };
                if is_part {
                    loaded.push(part);
                }
            }
        }
    }
    let (mut runs, mut scans) = (Vec::new(), Vec::new());
    for l in loaded {
        match l {
            Loaded::Run(p) => runs.push(*p),
            Loaded::Scan(p) => scans.push(*p),
        }
    }
    match (runs.is_empty(), scans.first()) {
        (false, Some(s)) => Err(MergeError::Bad {
            path: s.name(),
            why: format!("a scan part among path-patching parts ({})", runs[0].name()),
        }),
        (_, Some(_)) => Ok(Parts::Scans(scans)),
        _ => Ok(Parts::Runs(runs)),
    }
}

/// Merges parts of one computation. `partial`: missing shards (and parts stopped early) are
/// allowed, and the result is then incomplete, instead of an error.
pub fn merge<R: Mergeable>(parts: Vec<Part<R>>, partial: bool) -> Result<R, MergeError> {
    let first = parts.first().ok_or(MergeError::NoParts)?;
    let info = first.shard()?.clone();
    let mut by_index: BTreeMap<usize, &Part<R>> = BTreeMap::new();
    for p in &parts {
        check_belongs(first, &info, p)?;
        let s = p.shard()?;
        let (done, _) = p.record.done();
        let lacking: Vec<usize> = s
            .layers
            .iter()
            .filter(|l| !done.contains(l))
            .copied()
            .collect();
        if !lacking.is_empty() && !partial {
            return Err(MergeError::Bad {
                path: p.name(),
                why: format!(
                    "shard {} was stopped before layers {lacking:?}; run it again, or merge with --partial",
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
        return Err(missing_error(&missing, &info, &first.record));
    }
    let mut merged = first.record.clone();
    for &l in &info.layers {
        clear_row(&mut merged, l);
    }
    for p in by_index.values() {
        copy_rows(&mut merged, p)?;
    }
    let mut records: Vec<R> = parts.into_iter().map(|p| p.record).collect();
    finish(&mut merged, &mut records);
    Ok(merged)
}

/// The same computation (fingerprint, shard count) and the same baselines as the first part.
fn check_belongs<R: Mergeable>(
    first: &Part<R>,
    info: &ShardInfo,
    p: &Part<R>,
) -> Result<(), MergeError> {
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
    let (a, b) = (p.record.baselines(), first.record.baselines());
    for (what, x, y) in [("normal", a.0, b.0), ("contrast", a.1, b.1)] {
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

fn missing_error<R: Mergeable>(missing: &[usize], info: &ShardInfo, first: &R) -> MergeError {
    let split = first.split(info.count);
    let layers: Vec<usize> = missing
        .iter()
        .flat_map(|&i| split.get(i).cloned().unwrap_or_default())
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

/// Row `l` emptied (not computed): the kind's matrices, the per-example values, the row list.
fn clear_row<R: Mergeable>(m: &mut R, l: usize) {
    m.clear_row(l);
    let c = m.common();
    if let Some(pe) = c.per_example.as_mut() {
        for ex in &mut pe.patched {
            ex[l] = vec![f32::NAN; ex[l].len()];
        }
    }
    c.rows_computed.retain(|&x| x != l);
}

/// Copies a part's computed rows into the merged record.
fn copy_rows<R: Mergeable>(m: &mut R, p: &Part<R>) -> Result<(), MergeError> {
    let s = p.shard()?;
    if p.record.shape() != m.shape() {
        let ((a, b), (c, d)) = (p.record.shape(), m.shape());
        return Err(MergeError::Bad {
            path: p.name(),
            why: format!("{a}×{b} cells, the first part {c}×{d}"),
        });
    }
    let from = &p.record;
    let (done, from_pe) = from.done();
    for &l in s.layers.iter().filter(|l| done.contains(l)) {
        if m.common().rows_computed.contains(&l) {
            return Err(MergeError::Bad {
                path: p.name(),
                why: format!("layer {l} is in another part too (overlapping shards)"),
            });
        }
        m.copy_row(from, l);
        match (m.common().per_example.as_mut(), from_pe) {
            (Some(to), Some(f)) => {
                for (t, x) in to.patched.iter_mut().zip(&f.patched) {
                    t[l] = x[l].clone();
                }
            }
            // One part without per-example values: the merged result has none either, rather
            // than rows of NaN that read as not computed.
            (Some(_), None) => *m.common().per_example = None,
            _ => {}
        }
        m.common().rows_computed.push(l);
    }
    Ok(())
}

/// Completes the merged record: rows sorted, complete when every row of the whole is there,
/// not a part, created now, the parts' warnings (once each) and timings (sweep seconds summed:
/// the compute spent; the others' largest).
fn finish<R: Mergeable>(m: &mut R, parts: &mut [R]) {
    let all = m.split(1).concat();
    let mut warnings = Vec::new();
    let mut timings = Vec::new();
    for p in parts.iter_mut() {
        let c = p.common();
        warnings.extend(c.warnings.iter().cloned());
        timings.extend(*c.timing);
    }
    let c = m.common();
    c.rows_computed.sort_unstable();
    *c.complete = all.iter().all(|l| c.rows_computed.contains(l));
    *c.shard = None;
    *c.created = now();
    for w in warnings {
        if !c.warnings.contains(&w) {
            c.warnings.push(w);
        }
    }
    if let Some(t) = c.timing.as_mut() {
        t.sweep_seconds = timings.iter().map(|t| t.sweep_seconds).sum();
        t.cache_seconds = timings.iter().map(|t| t.cache_seconds).fold(0.0, f64::max);
        t.load_seconds = timings.iter().map(|t| t.load_seconds).fold(0.0, f64::max);
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Mergeable for RunRecord {
    fn shard(&self) -> Option<&ShardInfo> {
        self.shard.as_ref()
    }
    fn shape(&self) -> (usize, usize) {
        (self.n_layers, self.n_heads)
    }
    fn n_examples(&self) -> usize {
        self.data.as_ref().map_or(0, |d| d.n_examples)
    }
    fn baselines(&self) -> (f64, f64) {
        let v = |x: Option<f64>| x.unwrap_or(f64::NAN);
        (v(self.normal_logit_diff), v(self.contrast_logit_diff))
    }
    fn split(&self, count: usize) -> Vec<Vec<usize>> {
        let spec = PatchSpec {
            receiver: self.receiver.clone(),
            begin_layer: self.begin_layer,
            batch_size: self.batch_size.unwrap_or(1).max(1),
            algorithm: self.algorithm.unwrap_or_default(),
            chunk_rows: 0,
            metric: self.metric,
            senders: self.senders,
        };
        crate::patching::shard::split(&spec, self.n_layers, count)
    }
    fn common(&mut self) -> Common<'_> {
        Common {
            rows_computed: &mut self.rows_computed,
            complete: &mut self.complete,
            created: &mut self.created,
            warnings: &mut self.warnings,
            timing: &mut self.timing,
            shard: &mut self.shard,
            per_example: &mut self.per_example,
        }
    }
    fn done(&self) -> (&[usize], Option<&PerExample>) {
        (&self.rows_computed, self.per_example.as_ref())
    }
    fn clear_row(&mut self, l: usize) {
        self.relative[l] = None;
        if let Some(p) = self.patched_logit_diff.as_mut() {
            p[l] = None;
        }
        if let Some(ci) = self.relative_ci.as_mut() {
            ci[l] = None;
        }
        self.clear_mlp_row(l);
    }
    fn copy_row(&mut self, from: &Self, l: usize) {
        self.relative[l] = from.relative[l].clone();
        if let (Some(to), Some(f)) = (self.patched_logit_diff.as_mut(), &from.patched_logit_diff) {
            to[l] = f[l].clone();
        }
        if let (Some(to), Some(f)) = (self.relative_ci.as_mut(), &from.relative_ci) {
            to[l] = f[l].clone();
        }
        self.copy_mlp_row(from, l);
    }
    fn to_json(&self) -> String {
        RunRecord::to_json(self)
    }
    fn per_example_files(&self, path: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        RunRecord::per_example_files(self, path)
    }
}

impl RunRecord {
    /// Layer `l`'s MLP emptied (not computed), per-example values included.
    fn clear_mlp_row(&mut self, l: usize) {
        for v in [&mut self.mlp_relative, &mut self.mlp_patched_logit_diff]
            .into_iter()
            .flatten()
        {
            v[l] = None;
        }
        if let Some(ci) = self.mlp_relative_ci.as_mut() {
            ci[l] = None;
        }
        if let Some(pe) = self.mlp_per_example.as_mut() {
            pe.iter_mut().for_each(|ex| ex[l] = f32::NAN);
        }
    }

    /// Layer `l`'s MLP taken from `from`; a part without MLP per-example values leaves the
    /// merged record without them (rather than a column of NaN that reads as not computed).
    fn copy_mlp_row(&mut self, from: &Self, l: usize) {
        let pairs = [
            (&mut self.mlp_relative, &from.mlp_relative),
            (
                &mut self.mlp_patched_logit_diff,
                &from.mlp_patched_logit_diff,
            ),
        ];
        for (to, f) in pairs {
            if let (Some(to), Some(f)) = (to.as_mut(), f) {
                to[l] = f[l];
            }
        }
        if let (Some(to), Some(f)) = (self.mlp_relative_ci.as_mut(), &from.mlp_relative_ci) {
            to[l] = f[l];
        }
        match (self.mlp_per_example.as_mut(), &from.mlp_per_example) {
            (Some(to), Some(f)) => to.iter_mut().zip(f).for_each(|(t, x)| t[l] = x[l]),
            (Some(_), None) => self.mlp_per_example = None,
            _ => {}
        }
    }
}

impl Mergeable for ScanRecord {
    fn shard(&self) -> Option<&ShardInfo> {
        self.shard.as_ref()
    }
    fn shape(&self) -> (usize, usize) {
        (self.n_layers, self.n_columns)
    }
    fn n_examples(&self) -> usize {
        self.data.as_ref().map_or(0, |d| d.n_examples)
    }
    fn baselines(&self) -> (f64, f64) {
        (self.normal, self.contrast)
    }
    fn split(&self, count: usize) -> Vec<Vec<usize>> {
        (0..count)
            .map(|k| crate::patching::scan::shard_layers(self.n_layers, Shard { index: k, count }))
            .collect()
    }
    fn common(&mut self) -> Common<'_> {
        Common {
            rows_computed: &mut self.rows_computed,
            complete: &mut self.complete,
            created: &mut self.created,
            warnings: &mut self.warnings,
            timing: &mut self.timing,
            shard: &mut self.shard,
            per_example: &mut self.per_example,
        }
    }
    fn done(&self) -> (&[usize], Option<&PerExample>) {
        (&self.rows_computed, self.per_example.as_ref())
    }
    fn clear_row(&mut self, l: usize) {
        self.relative[l] = None;
        self.patched[l] = None;
        if let Some(ci) = self.relative_ci.as_mut() {
            ci[l] = None;
        }
    }
    fn copy_row(&mut self, from: &Self, l: usize) {
        self.relative[l] = from.relative[l].clone();
        self.patched[l] = from.patched[l].clone();
        if let (Some(to), Some(f)) = (self.relative_ci.as_mut(), &from.relative_ci) {
            to[l] = f[l].clone();
        }
    }
    fn to_json(&self) -> String {
        ScanRecord::to_json(self)
    }
    fn per_example_files(&self, path: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        ScanRecord::per_example_files(self, path)
    }
}
