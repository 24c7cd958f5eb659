//! The result file of an activation-patching scan (`headhunt scan`, `patching::scan`):
//! `format: "headhunt-scan"`, `format_version: 1`. Like a path-patching result it records the
//! metric and names its fields after it (`normal_kl`, `contrast_kl`, `patched_kl`), keeps r per
//! cell with a seeded 95% bootstrap interval, and writes the per-example values beside the JSON
//! (`STEM.per_example.npy` [examples, layers, columns], `STEM.baselines.npy` [examples, 2]:
//! normal, contrast). Rows are layers; columns are heads, positions or the one MLP column
//! (`columns`). A scan has no receiver and no head groups, so it is a file of its own rather
//! than a `RunRecord`: no reader of runs can mistake a position for a head.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{read, DataInfo, Intervals, ModelInfo, PerExample, ResultsError, Timing};
use crate::patching::baseline::BaselineAccuracy;
use crate::patching::bootstrap::Bootstrap;
use crate::patching::scan::{Direction, ScanKind, ScanOutcome};
use crate::patching::Metric;

pub const FORMAT: &str = "headhunt-scan";
pub const FORMAT_VERSION: u32 = 1;

/// The fields named after the metric in the file (`{field}_{metric key}`).
const METRIC_FIELDS: [&str; 3] = ["normal", "contrast", "patched"];

/// One saved scan.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScanRecord {
    pub format: String,
    pub format_version: u32,
    pub headhunt_version: String,
    pub created: String,
    /// False when the scan was cancelled: only `rows_computed` hold results.
    pub complete: bool,
    pub kind: ScanKind,
    pub direction: Direction,
    pub metric: Metric,
    /// The score's formula for this direction, in words.
    pub score: String,
    /// The TransformerLens function whose numbers the scan reproduces.
    pub transformer_lens: String,
    pub batch_size: usize,
    pub model: Option<ModelInfo>,
    pub data: Option<DataInfo>,
    pub n_layers: usize,
    pub n_columns: usize,
    /// What a column is: `head`, `position` or `mlp` (the kind's).
    pub columns: String,
    /// The patched (base) prompt's tokens of the first example, one per position column.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<String>,
    /// Mean metric of the unpatched normal and contrast runs (`normal_<metric>` in the file).
    pub normal: f64,
    pub contrast: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_accuracy: Option<BaselineAccuracy>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub rows_computed: Vec<usize>,
    /// r per [layer][column]; `null` rows were not computed, `null` cells are undefined.
    #[serde(with = "super::nan_cells")]
    pub relative: Vec<Option<Vec<f64>>>,
    /// Mean patched metric per [layer][column] (`patched_<metric>` in the file).
    #[serde(with = "super::nan_cells")]
    pub patched: Vec<Option<Vec<f64>>>,
    /// 95% bootstrap interval of r per [layer][column].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative_ci: Option<Intervals>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<Bootstrap>,
    pub timing: Option<Timing>,
    /// Written as `.npy` beside the JSON, not in it.
    #[serde(skip)]
    pub per_example: Option<PerExample>,
    /// A shard part (`scan --shard`): which shard of which scan; `merge` joins the parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<super::shard::ShardInfo>,
}

/// What a record is made of besides the outcome.
pub struct ScanParts {
    pub model: ModelInfo,
    pub data: DataInfo,
    pub tokens: Vec<String>,
    pub baseline_accuracy: Option<BaselineAccuracy>,
    pub load_seconds: f64,
}

impl ScanRecord {
    /// The record of a finished (or cancelled) scan, with its bootstrap intervals.
    pub fn of(o: &ScanOutcome, parts: ScanParts) -> Self {
        let mean = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64;
        let b = Bootstrap::default();
        // The bootstrap's r is (M_p − its `contrast`) / (its `contrast` − its `normal`): the
        // base run in the place of the contrast run, the source run in that of the normal run.
        let ci = b
            .intervals(&o.each, o.source_each(), o.base_each())
            .into_iter()
            .map(|row| {
                row.map(|cols| {
                    let finite = |x: f64| x.is_finite().then_some(x);
                    cols.into_iter()
                        .map(|(lo, hi)| [finite(lo), finite(hi)])
                        .collect()
                })
            })
            .collect();
        let per_example = (!o.normal_each.is_empty()).then(|| PerExample {
            patched: (0..o.normal_each.len())
                .map(|e| {
                    (0..o.n_layers)
                        .map(|l| match &o.each[l] {
                            Some(cols) => cols.iter().map(|v| v[e]).collect(),
                            None => vec![f32::NAN; o.n_columns],
                        })
                        .collect()
                })
                .collect(),
            normal: o.normal_each.clone(),
            contrast: o.contrast_each.clone(),
        });
        ScanRecord {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            headhunt_version: env!("CARGO_PKG_VERSION").into(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            complete: o.complete,
            kind: o.spec.kind,
            direction: o.spec.direction,
            metric: o.spec.metric,
            score: o.spec.direction.score_formula().into(),
            transformer_lens: o.spec.kind.transformer_lens().into(),
            batch_size: o.spec.batch_size,
            model: Some(parts.model),
            data: Some(parts.data),
            n_layers: o.n_layers,
            n_columns: o.n_columns,
            columns: o.spec.kind.column_name().into(),
            tokens: parts.tokens,
            normal: mean(&o.normal_each),
            contrast: mean(&o.contrast_each),
            baseline_accuracy: parts.baseline_accuracy,
            warnings: Vec::new(),
            rows_computed: (0..o.n_layers).filter(|&l| o.each[l].is_some()).collect(),
            relative: o.relative(),
            patched: o.patched_means(),
            relative_ci: Some(ci),
            bootstrap: Some(b),
            timing: Some(Timing {
                load_seconds: parts.load_seconds,
                cache_seconds: o.cache_seconds,
                sweep_seconds: o.scan_seconds,
            }),
            per_example,
            shard: None,
        }
    }

    /// r at (layer, column), `None` when not computed.
    pub fn r(&self, layer: usize, col: usize) -> Option<f64> {
        self.relative.get(layer)?.as_ref()?.get(col).copied()
    }

    /// The bootstrap interval at (layer, column), when both bounds are defined.
    pub fn interval(&self, layer: usize, col: usize) -> Option<(f64, f64)> {
        match self.relative_ci.as_ref()?.get(layer)?.as_ref()?.get(col)? {
            [Some(lo), Some(hi)] => Some((*lo, *hi)),
            _ => None,
        }
    }

    pub fn to_json(&self) -> String {
        let mut v = serde_json::to_value(self).expect("records serialize");
        rename_metric_fields(&mut v, self.metric, true);
        let mut s = serde_json::to_string_pretty(&v).expect("records serialize");
        s.push('\n');
        s
    }

    /// The per-example files beside `path` (`results::per_example_paths`) with their bytes.
    pub fn per_example_files(&self, path: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        match &self.per_example {
            Some(pe) => pe.files(path, (self.n_layers, self.n_columns)),
            None => Vec::new(),
        }
    }

    /// Reads and checks a scan file.
    pub fn load(path: &Path) -> Result<Self, ResultsError> {
        Self::from_value(read::read_json(path)?, path)
    }

    /// [`ScanRecord::load`] of JSON already read from `path` (named in errors): the format and
    /// its version first, then the metric and its fields, every field's type, the shape.
    pub fn from_value(mut value: Value, path: &Path) -> Result<Self, ResultsError> {
        let bad = |msg: String| ResultsError::Format {
            path: path.display().to_string(),
            msg,
        };
        if read::format_of(&value, path)? != Some(FORMAT) {
            return Err(bad(format!("field `format`: expected {FORMAT:?}")));
        }
        read::check_version(&value, path, FORMAT, FORMAT_VERSION)?;
        read::typed_data(&value, path, FORMAT)?;
        let metric = match value.get("metric") {
            Some(Value::String(s)) => Metric::parse(s).ok_or_else(|| {
                let known: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
                bad(format!(
                    "field `metric` is {s:?}, expected one of {}",
                    known.join(", ")
                ))
            })?,
            Some(other) => {
                return Err(bad(format!("field `metric` is {other}, expected a string")))
            }
            None => return Err(bad("no field `metric`".into())),
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
        rename_metric_fields(&mut value, metric, false);
        let rec: ScanRecord = read::typed(value, path, FORMAT)?;
        rec.check().map_err(bad)?;
        Ok(rec)
    }

    /// The shape and the fields that must agree with it, so that no reader meets a table it
    /// cannot draw.
    fn check(&self) -> Result<(), String> {
        if self.n_layers == 0 || self.n_columns == 0 {
            return Err(format!(
                "fields `n_layers` × `n_columns` are {} × {}: a scan has at least one cell",
                self.n_layers, self.n_columns
            ));
        }
        if self.columns != self.kind.column_name() {
            return Err(format!(
                "field `columns` is {:?}, but a {} scan's columns are {:?}",
                self.columns,
                self.kind,
                self.kind.column_name()
            ));
        }
        let shape = (self.n_layers, self.n_columns);
        super::check_rows_of(&self.relative, shape, "relative", "n_columns")?;
        super::check_rows_of(&self.patched, shape, "patched", "n_columns")?;
        if let Some(ci) = &self.relative_ci {
            if ci.len() != self.n_layers || ci.iter().flatten().any(|r| r.len() != self.n_columns) {
                return Err(format!(
                    "field `relative_ci` is not {} rows of {} intervals",
                    self.n_layers, self.n_columns
                ));
            }
        }
        if let Some(l) = self
            .rows_computed
            .iter()
            .find(|&&l| l >= self.n_layers || self.relative[l].is_none())
        {
            return Err(format!(
                "field `rows_computed` names layer {l}, which `relative` has no row for"
            ));
        }
        if let Some(m) = &self.model {
            if m.n_layers != self.n_layers {
                return Err(format!(
                    "field `model.n_layers` is {} but `n_layers` is {}",
                    m.n_layers, self.n_layers
                ));
            }
            if self.kind == ScanKind::Heads && m.n_heads != self.n_columns {
                return Err(format!(
                    "field `n_columns` is {} but the model has {} heads",
                    self.n_columns, m.n_heads
                ));
            }
        }
        if !self.tokens.is_empty() && self.tokens.len() != self.n_columns {
            return Err(format!(
                "field `tokens` has {} tokens for {} position columns",
                self.tokens.len(),
                self.n_columns
            ));
        }
        super::check_baseline_accuracy(self.baseline_accuracy.as_ref())
    }
}

/// Renames `normal`/`contrast`/`patched` to the file's `normal_<metric>` ... (`to_file`) or
/// back.
fn rename_metric_fields(v: &mut Value, metric: Metric, to_file: bool) {
    let Some(map) = v.as_object_mut() else { return };
    for f in METRIC_FIELDS {
        let (mem, file) = (f.to_string(), format!("{f}_{}", metric.key()));
        let (from, to) = if to_file { (mem, file) } else { (file, mem) };
        if let Some(x) = map.remove(&from) {
            map.insert(to, x);
        }
    }
}

/// The scan in words: what was patched into what, the baselines, the table of r in % (top
/// row the last layer) and the cells of largest |r| with their intervals.
pub fn text(rec: &ScanRecord) -> String {
    let mut s = String::new();
    let (base, source) = match rec.direction {
        Direction::Denoising => ("contrast", "normal"),
        Direction::Noising => ("normal", "contrast"),
    };
    let _ = writeln!(
        s,
        "scan        {} ({}): the {source} run's activations patched into the {base} run",
        rec.kind, rec.direction
    );
    if let Some(m) = &rec.model {
        let _ = writeln!(
            s,
            "model       {} ({}, {} layers × {} heads, {} on {})",
            m.label, m.family, m.n_layers, m.n_heads, m.dtype, m.device
        );
    }
    if let Some(d) = &rec.data {
        let _ = writeln!(
            s,
            "data        {} ({} examples)",
            d.spec.file.display(),
            d.n_examples
        );
    }
    let x = rec.metric.short();
    let _ = writeln!(
        s,
        "metric      {} ({x}_normal {:+.4}, {x}_contrast {:+.4})",
        rec.metric, rec.normal, rec.contrast
    );
    let _ = writeln!(s, "score       {}", rec.score);
    let _ = writeln!(s, "matches     {}", rec.transformer_lens);
    if !rec.complete {
        let _ = writeln!(
            s,
            "partial     cancelled: layers {:?} computed",
            rec.rows_computed
        );
    }
    s.push('\n');
    s.push_str(&table(rec));
    s.push('\n');
    s.push_str(&largest(rec, 10));
    s
}

/// r in % per layer (rows, top the last layer) and column.
fn table(rec: &ScanRecord) -> String {
    let width = if rec.kind.per_position() { 5 } else { 6 };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "r in %; rows: layer, columns: {}; '·' = not computed",
        rec.columns
    );
    let _ = write!(s, "layer");
    for c in 0..rec.n_columns {
        let label = if rec.kind == ScanKind::Mlp {
            "mlp".to_string()
        } else {
            c.to_string()
        };
        let _ = write!(s, "{label:>width$}");
    }
    s.push('\n');
    for l in (0..rec.n_layers).rev() {
        let _ = write!(s, "{l:>5}");
        for c in 0..rec.n_columns {
            let cell = match rec.r(l, c) {
                Some(r) if r.is_finite() && width == 5 => format!("{:>5.0}", 100.0 * r),
                Some(r) if r.is_finite() => format!("{:>6.1}", 100.0 * r),
                Some(_) => format!("{:>width$}", "nan"),
                None => format!("{:>width$}", "·"),
            };
            s.push_str(&cell);
        }
        s.push('\n');
    }
    if !rec.tokens.is_empty() {
        let toks: Vec<String> = rec
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| format!("{i}:{t:?}"))
            .collect();
        let _ = writeln!(s, "positions   {}", toks.join(" "));
    }
    s
}

/// The `n` cells of largest |r|, with their bootstrap intervals.
fn largest(rec: &ScanRecord, n: usize) -> String {
    let mut cells: Vec<(usize, usize, f64)> = (0..rec.n_layers)
        .flat_map(|l| (0..rec.n_columns).map(move |c| (l, c)))
        .filter_map(|(l, c)| rec.r(l, c).filter(|r| r.is_finite()).map(|r| (l, c, r)))
        .collect();
    cells.sort_by(|a, b| b.2.abs().total_cmp(&a.2.abs()));
    let name = |l: usize, c: usize| match rec.kind {
        ScanKind::Heads => format!("head ({l},{c})"),
        ScanKind::Mlp => format!("mlp {l}"),
        _ => format!("layer {l} @ {c}"),
    };
    let mut s = String::from("largest |r| (95% bootstrap interval over examples):\n");
    for (l, c, r) in cells.into_iter().take(n) {
        let iv = rec
            .interval(l, c)
            .map(|(lo, hi)| format!("[{:.1}, {:.1}]", 100.0 * lo, 100.0 * hi))
            .unwrap_or_else(|| "[?]".into());
        let _ = writeln!(s, "  {:<16} {:>7.1}% {iv}", name(l, c), 100.0 * r);
    }
    s
}
