//! The on-disk result format: one JSON file per run with full metadata, written atomically;
//! matrices also exportable as `.npy`; the paper's own result files imported.
//!
//! Schema (`format: "headhunt-path-patching"`, `format_version: 1`), see README "Result files":
//! rows of senders that were not computed are `null` in `relative` and `patched_logit_diff`
//! (and NaN in the `.npy` exports), so they never read as a computed 0.

pub mod analysis;
pub mod attention;
pub mod export;
pub mod groups;
pub mod import;
pub mod naming;
pub mod npy;
pub mod read;
pub mod scan;
pub mod shard;
pub mod text;
pub mod write;

pub use export::npy_paths;

use std::path::{Path, PathBuf};

use crate::data::DataSpec;
use crate::model::{Family, ModelOrigin};
use crate::patching::{Algorithm, Metric, PatchMatrix, Receiver, Senders};

pub use read::{read_json, SavedFile};
pub use write::{preflight, write_atomic};

pub const FORMAT: &str = "headhunt-path-patching";
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("{path}: {msg}")]
    Io { path: String, msg: String },
    #[error("{path}: {msg}")]
    Format { path: String, msg: String },
    /// The file exists and overwriting was not allowed (the CLI adds how to allow it).
    #[error("{path} already exists")]
    Exists { path: String },
    /// Something that is not a regular file stands where a file would be written.
    #[error("{path}: {what}")]
    NotReplaceable { path: String, what: String },
}

impl ResultsError {
    pub fn io(path: &Path, e: impl std::fmt::Display) -> Self {
        ResultsError::Io {
            path: path.display().to_string(),
            msg: e.to_string(),
        }
    }
}

/// The model a run used.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelInfo {
    pub origin: ModelOrigin,
    /// Path or hub id as given.
    pub label: String,
    pub family: Family,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub d_model: usize,
    pub d_head: usize,
    pub d_mlp: usize,
    pub vocab_size: usize,
    pub dtype: String,
    pub device: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<String>,
    /// Config keys headhunt did not read, allowed by `--allow-unknown-config-keys`
    /// (`key = value`): they may change the numbers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored_config_keys: Vec<String>,
    /// A parallel-residual block (GPT-J, GPT-NeoX/Pythia): its MLP reads the block's input, so
    /// what reaches `mlp_in:L` differs (`Receiver::for_block`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub parallel_block: bool,
}

impl ModelInfo {
    pub fn of(lm: &crate::model::LoadedModel) -> Self {
        let c = &lm.model.cfg;
        ModelInfo {
            origin: lm.origin.clone(),
            label: lm.origin.label(),
            family: c.family,
            n_layers: c.n_layers,
            n_heads: c.n_heads,
            n_kv_heads: c.n_kv_heads,
            d_model: c.d_model,
            d_head: c.d_head,
            d_mlp: c.d_mlp,
            vocab_size: c.vocab_size,
            dtype: crate::model::source::dtype_name(lm.model.dtype).into(),
            device: crate::model::source::devices_label(&lm.model),
            quantization: lm.model.quantization.clone(),
            ignored_config_keys: c.ignored_keys.clone(),
            parallel_block: c.block == crate::model::BlockShape::Parallel,
        }
    }
}

/// The data a run used.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DataInfo {
    #[serde(flatten)]
    pub spec: DataSpec,
    /// Examples actually used (after skipping mismatched ones).
    pub n_examples: usize,
    /// Example indices skipped because normal and contrast lengths differ.
    #[serde(default)]
    pub skipped: Vec<usize>,
    /// Example indices whose answers span several tokens.
    #[serde(default)]
    pub multi_token_answers: Vec<usize>,
}

impl DataInfo {
    /// The data of a run: its spec and what tokenizing it kept and noticed.
    pub fn of(spec: &DataSpec, tok: &crate::data::Tokenized) -> Self {
        DataInfo {
            spec: spec.clone(),
            n_examples: tok.pairs.len(),
            skipped: tok.skipped.clone(),
            multi_token_answers: tok.multi_token_answers.clone(),
        }
    }
}

/// How long the run took.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Timing {
    pub load_seconds: f64,
    pub cache_seconds: f64,
    pub sweep_seconds: f64,
}

/// A named group of heads (consolidation, function induction, ...).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HeadGroup {
    pub name: String,
    pub heads: Vec<(usize, usize)>,
}

/// One saved run (or an imported result).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunRecord {
    pub format: String,
    pub format_version: u32,
    pub headhunt_version: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// False when the run was cancelled: only `rows_computed` hold results.
    pub complete: bool,
    pub receiver: Receiver,
    pub receiver_label: String,
    pub begin_layer: usize,
    /// `None` for imported results.
    pub algorithm: Option<Algorithm>,
    pub batch_size: Option<usize>,
    pub model: Option<ModelInfo>,
    pub data: Option<DataInfo>,
    pub n_layers: usize,
    pub n_heads: usize,
    /// What the baselines and patched values are of. In the file the three fields below are
    /// named after it (`normal_logprob`, `patched_kl` ...; `normal_logit_diff` for the default
    /// metric, which is then not written): a reader that knows only the logit difference can
    /// never mistake another metric for it.
    #[serde(default, skip_serializing_if = "is_logit_diff")]
    pub metric: Metric,
    pub normal_logit_diff: Option<f64>,
    pub contrast_logit_diff: Option<f64>,
    /// Fraction of examples whose unpatched normal (contrast) run predicts the scored normal
    /// (contrast) answer token (`patching::baseline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_accuracy: Option<crate::patching::baseline::BaselineAccuracy>,
    /// What the run warned about its inputs (low baseline accuracy, answers of several
    /// tokens, ...), as printed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Layers whose rows were computed.
    pub rows_computed: Vec<usize>,
    /// r per [layer][head], masked like the paper; `null` rows were not computed.
    #[serde(with = "nan_cells")]
    pub relative: Vec<Option<Vec<f64>>>,
    /// Mean patched logit difference per [layer][head]; absent for imported results.
    #[serde(default, with = "nan_cells_opt")]
    pub patched_logit_diff: Option<Vec<Option<Vec<f64>>>>,
    /// The 95% bootstrap interval of r per [layer][head] ([low, high]; `null` rows not
    /// computed, and rows masked as `relative` is), from the examples (see `bootstrap`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// A bound is `null` where no resample defines r (its denominator is 0 in every one).
    pub relative_ci: Option<Intervals>,
    /// How `relative_ci` was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<crate::patching::bootstrap::Bootstrap>,
    pub timing: Option<Timing>,
    #[serde(default)]
    pub groups: Vec<HeadGroup>,
    /// Heads selected in the explorer when the run was saved, (layer, head).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub selected: Vec<(usize, usize)>,
    /// Where an imported result came from, or a free note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// `patch --sender-positions`: where the senders were patched (absent: everywhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_positions: Option<String>,
    /// Per receiver part (`Receiver::parts`), the position set it was patched at (`null`:
    /// everywhere); absent when no part has one. `receiver_label` then reads `39.7.q@last`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver_positions: Option<Vec<Option<String>>>,
    /// The patched metric per example, layer and head, and the baselines per example (written
    /// as `.npy` beside the JSON, not in it).
    #[serde(skip)]
    pub per_example: Option<PerExample>,
    /// A shard part (`patch --shard`): which shard of which sweep; `merge` joins the parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<shard::ShardInfo>,
    /// Which senders were patched (`patch --senders`); absent for the paper's heads only, so
    /// such files are what they always were. With `mlp` alone the head rows are never
    /// computed: `relative` and `patched_logit_diff` are all `null`, and `rows_computed` lists
    /// the sender layers whose MLPs were.
    #[serde(default, skip_serializing_if = "is_heads")]
    pub senders: Senders,
    /// r of each sender layer's MLP [layer], masked as `relative` is (with the MLP's
    /// reachability); `null` where not computed, or where r is not a number (a computed
    /// layer, listed in `rows_computed`: read back as NaN). Only with MLP senders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlp_relative: Option<Vec<Option<f64>>>,
    /// Mean patched metric of each layer's MLP (named after the metric in the file, as
    /// `patched_logit_diff`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlp_patched_logit_diff: Option<Vec<Option<f64>>>,
    /// The 95% bootstrap interval of each MLP's r (as `relative_ci`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlp_relative_ci: Option<Vec<Option<[Option<f64>; 2]>>>,
    /// The MLPs' patched metric per [example][layer], NaN where not computed (written as
    /// `STEM.mlp_per_example.npy`, not in the JSON).
    #[serde(skip)]
    pub mlp_per_example: Option<Vec<Vec<f32>>>,
}

fn is_heads(s: &Senders) -> bool {
    *s == Senders::Heads
}

/// Intervals of r per [layer][head] (`[low, high]`), `None` rows not computed.
pub type Intervals = Vec<Option<Vec<[Option<f64>; 2]>>>;

/// The per-example values of a run: what its means and intervals are made of.
#[derive(Debug, Clone, PartialEq)]
pub struct PerExample {
    /// [example][layer][head], NaN where a row was not computed.
    pub patched: Vec<Vec<Vec<f32>>>,
    pub normal: Vec<f32>,
    pub contrast: Vec<f32>,
}

/// The MLPs' per-example values [example][layer] (NaN where not computed), or `None` for a
/// matrix without the MLP column or without per-example values.
fn mlp_per_example(m: &PatchMatrix) -> Option<Vec<Vec<f32>>> {
    let c = m.mlp.as_ref()?;
    if m.normal_each.is_empty() || c.each.iter().all(Option::is_none) {
        return None;
    }
    let at = |l: usize, e: usize| c.each[l].as_ref().map_or(f32::NAN, |v| v[e]);
    Some(
        (0..m.normal_each.len())
            .map(|e| (0..m.n_layers).map(|l| at(l, e)).collect())
            .collect(),
    )
}

impl PerExample {
    /// `STEM.per_example.npy` ([example, layer, column]) and
    /// `STEM.baselines.npy` ([example, 2]: normal, contrast) beside `path`, with their bytes:
    /// the one writer for path-patching runs and scans.
    pub fn files(&self, path: &Path, (layers, columns): (usize, usize)) -> Vec<(PathBuf, Vec<u8>)> {
        let n = self.normal.len();
        let patched: Vec<f64> = (self.patched.iter().flatten().flatten())
            .map(|&x| x as f64)
            .collect();
        let base: Vec<f64> = (self.normal.iter().zip(&self.contrast))
            .flat_map(|(&a, &b)| [a as f64, b as f64])
            .collect();
        let [p, b] = per_example_paths(path);
        vec![
            (p, npy::encode_f64(&patched, &[n, layers, columns])),
            (b, npy::encode_f64(&base, &[n, 2])),
        ]
    }

    /// A sweep's per-example values ([example][layer][head], NaN in rows not computed), or
    /// `None` for a matrix that has none (one rebuilt from a run's events).
    pub fn of(m: &PatchMatrix) -> Option<PerExample> {
        // A sweep of MLP senders alone keeps its baselines (and NaN heads) beside the MLPs'.
        let no_mlp = m
            .mlp
            .as_ref()
            .is_none_or(|c| c.each.iter().all(Option::is_none));
        if m.normal_each.is_empty() || (m.each.iter().all(Option::is_none) && no_mlp) {
            return None;
        }
        let n = m.normal_each.len();
        let patched = (0..n)
            .map(|e| {
                (0..m.n_layers)
                    .map(|l| match &m.each[l] {
                        Some(heads) => heads.iter().map(|v| v[e]).collect(),
                        None => vec![f32::NAN; m.n_heads],
                    })
                    .collect()
            })
            .collect();
        Some(PerExample {
            patched,
            normal: m.normal_each.clone(),
            contrast: m.contrast_each.clone(),
        })
    }
}

fn is_logit_diff(m: &Metric) -> bool {
    *m == Metric::LogitDiff
}

/// The fields whose file names say the metric.
const METRIC_FIELDS: [&str; 4] = ["normal", "contrast", "patched", "mlp_patched"];

/// Renames the metric's fields of a record's JSON between the in-memory names
/// (`normal_logit_diff` ...) and the file's (`normal_kl` ...).
fn rename_metric_fields(v: &mut serde_json::Value, metric: Metric, to_file: bool) {
    if metric == Metric::LogitDiff {
        return;
    }
    let Some(map) = v.as_object_mut() else { return };
    for f in METRIC_FIELDS {
        let (mem, file) = (format!("{f}_logit_diff"), format!("{f}_{}", metric.key()));
        let (from, to) = if to_file { (mem, file) } else { (file, mem) };
        if let Some(x) = map.remove(&from) {
            map.insert(to, x);
        }
    }
}

/// Everything needed to build a record from a finished (or cancelled) sweep.
pub struct RecordParts<'a> {
    pub matrix: &'a PatchMatrix,
    pub complete: bool,
    pub receiver: &'a Receiver,
    pub begin_layer: usize,
    pub algorithm: Algorithm,
    pub batch_size: usize,
    pub model: ModelInfo,
    pub data: Option<DataInfo>,
    pub timing: Timing,
}

impl RunRecord {
    /// Records a run's position sets: the senders', and each receiver part's (the label then
    /// names them: `39.7.q@last`).
    pub fn set_positions(&mut self, sender: Option<String>, receiver: &[Option<String>]) {
        self.sender_positions = sender;
        if receiver.iter().any(|s| s.is_some()) {
            self.receiver_positions = Some(receiver.to_vec());
            self.receiver_label = self.receiver.positioned_text(receiver);
        }
    }

    /// The record of a sweep of `spec` run by `lm` on `data` (tokenized as `tok`).
    pub fn of_sweep(
        outcome: &crate::patching::PatchOutcome,
        spec: &crate::patching::PatchSpec,
        lm: &crate::model::LoadedModel,
        data: &DataSpec,
        tok: &crate::data::Tokenized,
    ) -> Self {
        let mut record = RunRecord::from_run(RecordParts {
            matrix: &outcome.matrix,
            complete: outcome.complete,
            receiver: &spec.receiver,
            begin_layer: spec.begin_layer,
            algorithm: spec.algorithm,
            batch_size: spec.batch_size,
            model: ModelInfo::of(lm),
            data: Some(DataInfo::of(data, tok)),
            timing: Timing {
                load_seconds: lm.load_seconds,
                cache_seconds: outcome.cache_seconds,
                sweep_seconds: outcome.sweep_seconds,
            },
        });
        record.baseline_accuracy =
            crate::patching::baseline::BaselineAccuracy::of(&tok.pairs, &outcome.top_tokens);
        record.senders = spec.senders;
        record
    }

    pub fn from_run(p: RecordParts) -> Self {
        let m = p.matrix;
        let rel = m.relative(p.receiver, p.begin_layer);
        let rows = |full: &[Vec<f64>]| -> Vec<Option<Vec<f64>>> {
            (0..m.n_layers)
                .map(|l| m.computed[l].then(|| full[l].clone()))
                .collect()
        };
        RunRecord {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            headhunt_version: env!("CARGO_PKG_VERSION").into(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            complete: p.complete,
            receiver: p.receiver.clone(),
            receiver_label: p.receiver.label(),
            begin_layer: p.begin_layer,
            algorithm: Some(p.algorithm),
            batch_size: Some(p.batch_size),
            model: Some(p.model),
            data: p.data,
            n_layers: m.n_layers,
            n_heads: m.n_heads,
            metric: m.metric,
            normal_logit_diff: Some(m.ld_normal),
            contrast_logit_diff: Some(m.ld_contrast),
            baseline_accuracy: None,
            warnings: Vec::new(),
            rows_computed: (0..m.n_layers)
                .filter(|&l| m.computed[l] || m.mlp.as_ref().is_some_and(|c| c.computed[l]))
                .collect(),
            relative: rows(&rel),
            patched_logit_diff: Some(rows(&m.patched)),
            timing: Some(p.timing),
            groups: Vec::new(),
            selected: Vec::new(),
            source: None,
            note: None,
            sender_positions: None,
            receiver_positions: None,
            relative_ci: None,
            bootstrap: None,
            per_example: PerExample::of(m),
            shard: None,
            senders: match m.mlp {
                Some(_) => Senders::HeadsAndMlp,
                None => Senders::Heads,
            },
            mlp_relative: m.mlp_relative(p.receiver, p.begin_layer),
            mlp_patched_logit_diff: m.mlp.as_ref().map(|c| {
                (0..m.n_layers)
                    .map(|l| c.computed[l].then_some(c.patched[l]))
                    .collect()
            }),
            mlp_relative_ci: None,
            mlp_per_example: mlp_per_example(m),
        }
        .with_intervals(m, p.receiver, p.begin_layer)
        .with_mlp_intervals(m, p.receiver, p.begin_layer)
    }

    /// Adds the bootstrap intervals of the MLPs' r (the heads' resampling, one column), masked
    /// as `mlp_relative` is; none without per-example values.
    fn with_mlp_intervals(mut self, m: &PatchMatrix, receiver: &Receiver, begin: usize) -> Self {
        let (Some(c), Some(_)) = (&m.mlp, &self.mlp_per_example) else {
            return self;
        };
        let b = crate::patching::bootstrap::Bootstrap::default();
        let each: Vec<Option<Vec<Vec<f32>>>> =
            c.each.iter().map(|e| e.clone().map(|v| vec![v])).collect();
        let iv = b.intervals(&each, &m.normal_each, &m.contrast_each);
        let finite = |x: f64| x.is_finite().then_some(x);
        let rows = iv
            .into_iter()
            .enumerate()
            .map(|(l, row)| {
                let masked = l < begin || !receiver.mlp_reachable_from(l);
                let (lo, hi) = row?.into_iter().next()?;
                Some(match masked {
                    true => [Some(0.0), Some(0.0)],
                    false => [finite(lo), finite(hi)],
                })
            })
            .collect();
        self.mlp_relative_ci = Some(rows);
        self
    }

    /// r of layer `layer`'s MLP, `None` when the run has no MLP senders or it was not computed.
    pub fn mlp_r(&self, layer: usize) -> Option<f64> {
        *self.mlp_relative.as_ref()?.get(layer)?
    }

    /// Adds the bootstrap intervals of r from the matrix's per-example values (none without
    /// them), masked as `relative` is.
    fn with_intervals(mut self, m: &PatchMatrix, receiver: &Receiver, begin_layer: usize) -> Self {
        if self.per_example.is_none() {
            return self;
        }
        let b = crate::patching::bootstrap::Bootstrap::default();
        let iv = b.intervals(&m.each, &m.normal_each, &m.contrast_each);
        let rows = iv
            .into_iter()
            .enumerate()
            .map(|(l, row)| {
                let masked = l < begin_layer || !receiver.reachable_from(l);
                row.map(|r| {
                    r.into_iter()
                        .map(|(lo, hi)| {
                            let finite = |x: f64| x.is_finite().then_some(x);
                            if masked {
                                [Some(0.0), Some(0.0)]
                            } else {
                                [finite(lo), finite(hi)]
                            }
                        })
                        .collect()
                })
            })
            .collect();
        self.relative_ci = Some(rows);
        self.bootstrap = Some(b);
        self
    }

    /// The bootstrap interval of r at (layer, head), when the run has one and both bounds are
    /// defined.
    pub fn interval(&self, layer: usize, head: usize) -> Option<(f64, f64)> {
        match self.relative_ci.as_ref()?.get(layer)?.as_ref()?.get(head)? {
            [Some(lo), Some(hi)] => Some((*lo, *hi)),
            _ => None,
        }
    }

    /// Whether the cell's interval holds 0: its effect is not told from noise over the
    /// examples (false without intervals; a cell whose r is masked is never noise).
    pub fn holds_zero(&self, layer: usize, head: usize) -> bool {
        let masked = !self.receiver.reachable_from(layer) || layer < self.begin_layer;
        !masked
            && self
                .interval(layer, head)
                .is_some_and(|(lo, hi)| lo <= 0.0 && hi >= 0.0)
    }

    /// r at (layer, head), `None` when that row was not computed.
    pub fn r(&self, layer: usize, head: usize) -> Option<f64> {
        self.relative.get(layer)?.as_ref()?.get(head).copied()
    }

    /// Patched logit difference at (layer, head), when known.
    pub fn patched(&self, layer: usize, head: usize) -> Option<f64> {
        self.patched_logit_diff
            .as_ref()?
            .get(layer)?
            .as_ref()?
            .get(head)
            .copied()
    }

    /// The r matrix with 0 for rows that were not computed (for head lists).
    pub fn relative_filled(&self) -> Vec<Vec<f64>> {
        self.relative
            .iter()
            .map(|r| r.clone().unwrap_or_else(|| vec![0.0; self.n_heads]))
            .collect()
    }

    /// Rebuilds the in-memory matrix (for views that work on `PatchMatrix`).
    pub fn matrix(&self) -> PatchMatrix {
        let mut m = PatchMatrix::new(
            self.n_layers,
            self.n_heads,
            self.normal_logit_diff.unwrap_or(f64::NAN),
            self.contrast_logit_diff.unwrap_or(f64::NAN),
            self.data.as_ref().map_or(0, |d| d.n_examples),
        );
        // A layer computed for its MLP alone (`--senders mlp`) has no head row.
        for &l in self
            .rows_computed
            .iter()
            .filter(|&&l| self.relative[l].is_some())
        {
            let row = match &self.patched_logit_diff {
                Some(p) => p[l].clone().unwrap_or_else(|| vec![0.0; self.n_heads]),
                None => vec![0.0; self.n_heads],
            };
            m.set_row(l, row);
        }
        m
    }

    /// Model label for display.
    pub fn model_label(&self) -> String {
        self.model
            .as_ref()
            .map_or_else(|| "?".into(), |m| m.label.clone())
    }

    pub fn to_json(&self) -> String {
        let mut v = serde_json::to_value(self).expect("records serialize");
        rename_metric_fields(&mut v, self.metric, true);
        let mut s = serde_json::to_string_pretty(&v).expect("records serialize");
        s.push('\n');
        s
    }

    /// Saves to `path` atomically; refuses to overwrite unless `force`.
    pub fn save(&self, path: &Path, force: bool) -> Result<(), ResultsError> {
        write_atomic(path, self.to_json().as_bytes(), force)
    }

    /// The per-example files beside `path` ([`per_example_paths`]) with their bytes; none for
    /// a record without per-example values.
    pub fn per_example_files(&self, path: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let Some(pe) = &self.per_example else {
            return Vec::new();
        };
        let n = pe.normal.len();
        let mut files = pe.files(path, (self.n_layers, self.n_heads));
        if let Some(mlp) = &self.mlp_per_example {
            let data: Vec<f64> = mlp.iter().flatten().map(|&x| x as f64).collect();
            files.push((
                mlp_per_example_path(path),
                npy::encode_f64(&data, &[n, self.n_layers]),
            ));
        }
        files
    }

    /// Loads a headhunt result file or one of the paper's result files.
    pub fn load(path: &Path) -> Result<Self, ResultsError> {
        Self::from_value(read_json(path)?, path)
    }

    /// [`RunRecord::load`] of JSON already read from `path` (named in errors): a headhunt
    /// run (its `format_version` one this headhunt reads), or one of the paper's result files
    /// (no `format`, a `matrix`). Every field's type, the shape and the ranges are checked.
    pub fn from_value(value: serde_json::Value, path: &Path) -> Result<Self, ResultsError> {
        let bad = |msg: String| ResultsError::Format {
            path: path.display().to_string(),
            msg,
        };
        match read::format_of(&value, path)? {
            Some(FORMAT) => {
                read::check_version(&value, path, FORMAT, FORMAT_VERSION)?;
                read::typed_data(&value, path, FORMAT)?;
                let mut value = value;
                let metric = metric_of(&value, path)?;
                rename_metric_fields(&mut value, metric, false);
                let mut rec: RunRecord = read::typed(value, path, FORMAT)?;
                rec.check().map_err(bad)?;
                rec.nan_in_computed_mlp();
                Ok(rec)
            }
            None if value.get("matrix").is_some() => {
                let rec = import::paper_result(&value, path)?;
                rec.check().map_err(bad)?;
                Ok(rec)
            }
            Some(groups::GROUPS_FORMAT) => Err(bad(
                "a head-groups file, not a run (headhunt show prints it; opened in the explorer it applies its groups)".into(),
            )),
            Some(attention::FORMAT) => Err(bad(
                "an attention file, not a run (headhunt show prints it, headhunt plot draws it)"
                    .into(),
            )),
            Some(scan::FORMAT) => Err(bad(
                "an activation-patching scan, not a path-patching run (headhunt show prints it)"
                    .into(),
            )),
            Some(f) if analysis::ANALYSIS_FORMATS.contains(&f) => Err(bad(format!(
                "a {f} result, not a path-patching run (headhunt show prints it, headhunt plot draws it)"
            ))),
            Some(other) => Err(bad(format!(
                "field `format` is {other:?}: not a file this headhunt reads ({FORMAT}, {}, {}, {} or the paper's result files)",
                groups::GROUPS_FORMAT,
                analysis::ANALYSIS_FORMATS.join(", "),
                attention::FORMAT
            ))),
            None => Err(bad(
                "neither a headhunt result (field `format`) nor a paper result (field `matrix`)"
                    .into(),
            )),
        }
    }

    /// Consistency after loading, so that no reader (the heatmap, the lists, a figure) meets
    /// a shape it cannot draw: at least one layer and one head, rows of the shape, heads
    /// named inside it, accuracies that are fractions.
    fn check(&self) -> Result<(), String> {
        let shape = (self.n_layers, self.n_heads);
        read::shape_not_empty(shape, "")?;
        check_rows(&self.relative, shape, "relative")?;
        if let Some(p) = &self.patched_logit_diff {
            check_rows(p, shape, "patched_logit_diff")?;
        }
        for &l in &self.rows_computed {
            if l >= self.n_layers {
                return Err(format!(
                    "field `rows_computed` names layer {l} of {}",
                    self.n_layers
                ));
            }
            if self.senders.heads() && self.relative[l].is_none() {
                return Err(format!(
                    "field `rows_computed` lists layer {l} but `relative[{l}]` is null"
                ));
            }
        }
        self.check_mlp()?;
        self.receiver
            .validate(self.n_layers, self.n_heads)
            .map_err(|e| format!("field `receiver`: {e}"))?;
        if self.begin_layer > self.receiver.max_layer() {
            return Err(format!(
                "field `begin_layer` is {}, above the receiver's layer {}",
                self.begin_layer,
                self.receiver.max_layer()
            ));
        }
        if let Some(m) = &self.model {
            if (m.n_layers, m.n_heads) != shape {
                return Err(format!(
                    "field `model` is {} layers × {} heads but `n_layers` × `n_heads` is {} × {}",
                    m.n_layers, m.n_heads, self.n_layers, self.n_heads
                ));
            }
        }
        check_groups(&self.groups, shape)?;
        read::heads_inside(&self.selected, shape, "selected")?;
        check_baseline_accuracy(self.baseline_accuracy.as_ref())
    }
}

impl RunRecord {
    /// The MLP fields are there exactly when `senders` has MLPs, one value per layer.
    fn check_mlp(&self) -> Result<(), String> {
        let fields = [
            ("mlp_relative", self.mlp_relative.as_ref().map(Vec::len)),
            (
                "mlp_patched_logit_diff",
                self.mlp_patched_logit_diff.as_ref().map(Vec::len),
            ),
            (
                "mlp_relative_ci",
                self.mlp_relative_ci.as_ref().map(Vec::len),
            ),
        ];
        for (field, len) in fields {
            match len {
                Some(_) if !self.senders.mlp() => {
                    return Err(format!(
                        "field `{field}` is given but `senders` is {} (no MLP senders)",
                        self.senders.name()
                    ))
                }
                Some(n) if n != self.n_layers => {
                    return Err(format!(
                        "field `{field}` has {n} values, expected n_layers = {}",
                        self.n_layers
                    ))
                }
                _ => {}
            }
        }
        if self.senders.mlp() && self.mlp_relative.is_none() {
            return Err(format!(
                "field `senders` is {} but `mlp_relative` is missing",
                self.senders.name()
            ));
        }
        Ok(())
    }

    /// A computed MLP cell written `null` (r not a number) reads back as NaN, never as "not
    /// computed".
    fn nan_in_computed_mlp(&mut self) {
        let rows = self.rows_computed.clone();
        for v in [&mut self.mlp_relative, &mut self.mlp_patched_logit_diff]
            .into_iter()
            .flatten()
        {
            let n = v.len();
            for &l in rows.iter().filter(|&&l| l < n) {
                v[l].get_or_insert(f64::NAN);
            }
        }
    }
}

/// `rows` has one row per layer, each null or of one value per head.
fn check_rows(rows: &[Option<Vec<f64>>], shape: (usize, usize), field: &str) -> Result<(), String> {
    check_rows_of(rows, shape, field, "n_heads")
}

/// `rows` has one row per layer, each null or of `n_columns` values (`columns` names them in
/// the message: `n_heads`, a scan's `n_columns`).
pub(crate) fn check_rows_of(
    rows: &[Option<Vec<f64>>],
    (n_layers, n_heads): (usize, usize),
    field: &str,
    columns: &str,
) -> Result<(), String> {
    if rows.len() != n_layers {
        return Err(format!(
            "field `{field}` has {} rows, expected n_layers = {n_layers}",
            rows.len()
        ));
    }
    for (l, row) in rows.iter().enumerate() {
        if let Some(r) = row.as_ref().filter(|r| r.len() != n_heads) {
            return Err(format!(
                "field `{field}[{l}]` has {} values, expected {columns} = {n_heads}",
                r.len()
            ));
        }
    }
    Ok(())
}

/// Every group named, its heads inside the shape.
pub(crate) fn check_groups(groups: &[HeadGroup], shape: (usize, usize)) -> Result<(), String> {
    for (i, g) in groups.iter().enumerate() {
        if g.name.trim().is_empty() {
            return Err(format!("field `groups[{i}].name` is empty"));
        }
        read::heads_inside(&g.heads, shape, &format!("groups[{i}].heads"))?;
    }
    Ok(())
}

/// The baseline accuracies, when recorded, are fractions.
pub(crate) fn check_baseline_accuracy(
    acc: Option<&crate::patching::baseline::BaselineAccuracy>,
) -> Result<(), String> {
    if let Some(a) = acc {
        read::fraction(a.normal, "baseline_accuracy.normal", false)?;
        read::fraction(a.contrast, "baseline_accuracy.contrast", false)?;
    }
    Ok(())
}

/// The metric a result file names (`metric`, default the logit difference), checked: an
/// unknown one, or baselines named after another metric, is an error naming the field.
fn metric_of(value: &serde_json::Value, path: &Path) -> Result<Metric, ResultsError> {
    let bad = |msg: String| ResultsError::Format {
        path: path.display().to_string(),
        msg,
    };
    let metric = match value.get("metric") {
        None => Metric::LogitDiff,
        Some(serde_json::Value::String(s)) => Metric::parse(s).ok_or_else(|| {
            let known: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
            bad(format!(
                "field `metric` is {s:?}, expected one of {}",
                known.join(", ")
            ))
        })?,
        Some(other) => return Err(bad(format!("field `metric` is {other}, expected a string"))),
    };
    for m in Metric::ALL.into_iter().filter(|&m| m != metric) {
        for f in METRIC_FIELDS {
            let key = format!("{f}_{}", m.key());
            if value.get(&key).is_some() {
                return Err(bad(format!(
                    "field `{key}` is of the metric {m}, but the file's `metric` is {metric}"
                )));
            }
        }
    }
    Ok(metric)
}

/// Where a result's per-example values go: `STEM.per_example.npy` (the patched metric,
/// [example, layer, head] float64, NaN in rows not computed) and `STEM.baselines.npy` ([example,
/// 2]: the normal and contrast runs' metric).
pub fn per_example_paths(path: &Path) -> [PathBuf; 2] {
    let stem = path.with_extension("");
    ["per_example", "baselines"]
        .map(|suffix| PathBuf::from(format!("{}.{suffix}.npy", stem.display())))
}

/// Where a run with MLP senders keeps their per-example values: `STEM.mlp_per_example.npy`
/// ([example, layer] float64, NaN where not computed), beside [`per_example_paths`]' files.
pub fn mlp_per_example_path(path: &Path) -> PathBuf {
    PathBuf::from(format!(
        "{}.mlp_per_example.npy",
        path.with_extension("").display()
    ))
}

/// Matrix rows whose cells may be NaN (r when LD_contrast == LD_normal, or a model that
/// overflowed): JSON has no NaN, so such a cell is written `null` and read back as NaN.
pub(crate) mod nan_cells {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    type Rows = Vec<Option<Vec<f64>>>;

    pub fn serialize<S: Serializer>(rows: &Rows, s: S) -> Result<S::Ok, S::Error> {
        let cells: Vec<Option<Vec<Option<f64>>>> = rows
            .iter()
            .map(|r| {
                r.as_ref()
                    .map(|r| r.iter().map(|&x| x.is_finite().then_some(x)).collect())
            })
            .collect();
        cells.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Rows, D::Error> {
        let cells: Vec<Option<Vec<Option<f64>>>> = Vec::deserialize(d)?;
        Ok(cells
            .into_iter()
            .map(|r| r.map(|r| r.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect()))
            .collect())
    }
}

mod nan_cells_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    type Rows = Vec<Option<Vec<f64>>>;

    pub fn serialize<S: Serializer>(rows: &Option<Rows>, s: S) -> Result<S::Ok, S::Error> {
        match rows {
            Some(r) => super::nan_cells::serialize(r, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Rows>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "super::nan_cells")] Rows);
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}
