//! Result files of the circuit analyses (`headhunt circuit|ablate|fv --json`, and `s` on the
//! explorer's circuit screen): one typed record per kind, built from an `AnalysisReport`, saved
//! atomically and loaded back with its `format` checked. The CLI and the explorer both write
//! through here, so the two write the same fields (README "After discovery").

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};

use super::{read, DataInfo, ModelInfo, ResultsError};
use crate::analysis::ablation::AblationRun;
use crate::analysis::circuit::{Completeness, GreedyOutcome, Minimality};
use crate::analysis::function_vectors::paper_naive_prompts;
use crate::analysis::mean_std;
use crate::analysis::report::{AblationReport, AnalysisReport, CircuitReport, FvReport};
use crate::analysis::Head;
use crate::patching::Metric;

pub const CIRCUIT_FORMAT: &str = "headhunt-circuit";
pub const ABLATION_FORMAT: &str = "headhunt-ablation";
pub const FV_FORMAT: &str = "headhunt-fv";
pub const ANALYSIS_FORMATS: [&str; 3] = [CIRCUIT_FORMAT, ABLATION_FORMAT, FV_FORMAT];
pub const ANALYSIS_FORMAT_VERSION: u32 = 1;

/// JSON writes NaN (faithfulness when LD_n = LD_c, the mean of no random groups) as null;
/// read null back as NaN instead of refusing the file.
fn nan_if_null<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

fn yes() -> bool {
    true
}

fn is_logit_diff(m: &Metric) -> bool {
    *m == Metric::LogitDiff
}

/// What every analysis file has: the header, the model and data, and how it ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Common {
    pub format: String,
    pub format_version: u32,
    pub headhunt_version: String,
    pub created: String,
    pub model: ModelInfo,
    pub data: DataInfo,
    pub batch_size: usize,
    #[serde(deserialize_with = "nan_if_null")]
    pub seconds: f64,
    /// False when the analysis was cancelled: the file holds what was finished.
    #[serde(default = "yes")]
    pub complete: bool,
    /// Fraction of examples whose unpatched normal (contrast) run predicts the scored normal
    /// (contrast) answer token (`patching::baseline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_accuracy: Option<crate::patching::baseline::BaselineAccuracy>,
    /// What the run warned about its inputs (low baseline accuracy, answers of several
    /// tokens, ...), as printed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// What the caller knows beyond the report: model, data, batch size, time taken, and (for
/// an ablation or FV started from the explorer) the name of the group whose heads it used.
#[derive(Debug, Clone, PartialEq)]
pub struct Meta {
    pub model: ModelInfo,
    pub data: DataInfo,
    pub batch_size: usize,
    pub seconds: f64,
    pub group: Option<String>,
    pub baseline_accuracy: Option<crate::patching::baseline::BaselineAccuracy>,
    pub warnings: Vec<String>,
}

impl Meta {
    fn common(&self, format: &str, complete: bool) -> Common {
        Common {
            format: format.into(),
            format_version: ANALYSIS_FORMAT_VERSION,
            headhunt_version: env!("CARGO_PKG_VERSION").into(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            model: self.model.clone(),
            data: self.data.clone(),
            batch_size: self.batch_size,
            seconds: self.seconds,
            complete,
            baseline_accuracy: self.baseline_accuracy,
            warnings: self.warnings.clone(),
        }
    }
}

/// A circuit group as written: positions as their label (`tok:=`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub name: String,
    pub heads: Vec<Head>,
    pub positions: String,
}

/// `headhunt-circuit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CircuitFile {
    #[serde(flatten)]
    pub common: Common,
    /// What F and the baselines are; absent for the logit difference (the paper's), else
    /// the baselines are named after it in the file (`normal_kl`, `contrast_kl`; see
    /// [`metric_names`]).
    #[serde(default, skip_serializing_if = "is_logit_diff")]
    pub metric: Metric,
    pub groups: Vec<GroupRecord>,
    #[serde(rename = "LD_normal", deserialize_with = "nan_if_null")]
    pub ld_normal: f64,
    #[serde(rename = "LD_contrast", deserialize_with = "nan_if_null")]
    pub ld_contrast: f64,
    #[serde(rename = "F_C", deserialize_with = "nan_if_null")]
    pub f_c: f64,
    #[serde(rename = "F_M", deserialize_with = "nan_if_null")]
    pub f_m: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub faithfulness: f64,
    pub completeness: Vec<Completeness>,
    pub minimality: Vec<Minimality>,
    pub greedy: Option<GreedyOutcome>,
}

/// Mean ± population std of the random groups, with the values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    #[serde(deserialize_with = "nan_if_null")]
    pub mean: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub std: f64,
    pub values: Vec<f64>,
}

impl Stat {
    pub fn of(values: Vec<f64>) -> Stat {
        let (mean, std) = mean_std(&values);
        Stat { mean, std, values }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RandomGroups {
    pub n: usize,
    pub seed: u64,
    pub size: usize,
    pub groups: Vec<Vec<Head>>,
    pub logit_diff: Stat,
    pub acc_normal_answer: Stat,
    pub acc_contrast_answer: Stat,
    pub acc_normal_answer_full_vocab: Stat,
    pub acc_contrast_answer_full_vocab: Stat,
}

/// `headhunt-ablation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AblationFile {
    #[serde(flatten)]
    pub common: Common,
    /// What `logit_diff` of every run is; absent for the logit difference, else those fields
    /// are named after it in the file (`kl` ...; see [`metric_names`]).
    #[serde(default, skip_serializing_if = "is_logit_diff")]
    pub metric: Metric,
    /// What the restricted accuracy's argmax runs over (`AnswerSet::describe`): `digits`,
    /// `data answers (N tokens)` or `full vocabulary`.
    pub answer_tokens: String,
    pub heads: Vec<Head>,
    pub logit_diff: f64,
    pub acc_normal_answer: f64,
    pub acc_contrast_answer: f64,
    pub acc_normal_answer_full_vocab: f64,
    pub acc_contrast_answer_full_vocab: f64,
    pub baseline: AblationRun,
    pub random_groups: RandomGroups,
    /// The explorer's group whose heads were ablated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// One shift s of an FV grid: mean of Δ[i][(i+s) mod 10] and the rows whose largest Δ is there.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Shift {
    #[serde(deserialize_with = "nan_if_null")]
    pub mean: f64,
    pub argmax_rows: usize,
}

/// `headhunt-fv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FvFile {
    #[serde(flatten)]
    pub common: Common,
    /// What the grids hold: absent for the read-out tokens' logits (`logit-diff`), else
    /// `logprob` or `prob`, and `baseline` and `delta` are named after it (`delta_logprob`).
    #[serde(default, skip_serializing_if = "is_logit_diff")]
    pub metric: Metric,
    pub heads: Vec<Head>,
    pub naive_prompts: Vec<String>,
    pub digits: Vec<String>,
    pub fv_from: String,
    pub add_at: i64,
    pub centered: bool,
    pub baseline: Vec<Vec<f64>>,
    pub delta: BTreeMap<String, Vec<Vec<f64>>>,
    /// Per key, per shift (`-2` … `+2`); null unless the naive prompts are the paper's.
    pub shifts: Option<BTreeMap<String, BTreeMap<String, Shift>>>,
    /// The explorer's group whose heads these are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// The shifts a grid is summarised by.
pub const SHIFTS: [i64; 5] = [-2, -1, 0, 1, 2];

/// Shift summary of one 10 × 10 grid (rows: the paper's naive prompts, row i asking for
/// digit i): a +k function vector raises the +k diagonal.
pub fn shifts_of(grid: &[Vec<f64>]) -> Vec<(i64, Shift)> {
    let n = grid.len();
    SHIFTS
        .iter()
        .map(|&s| {
            let col = |i: usize| (i as i64 + s).rem_euclid(n as i64) as usize;
            let mean = (0..n).map(|i| grid[i][col(i)]).sum::<f64>() / n as f64;
            let argmax_rows = (0..n)
                .filter(|&i| grid[i].iter().all(|&x| x <= grid[i][col(i)]))
                .count();
            (s, Shift { mean, argmax_rows })
        })
        .collect()
}

/// The shift key as written: `-2`, `+0`, `+1`.
pub fn shift_key(s: i64) -> String {
    format!("{s:+}")
}

impl CircuitFile {
    pub fn new(meta: &Meta, r: &CircuitReport) -> Self {
        let groups = r
            .circuit
            .groups
            .iter()
            .map(|g| GroupRecord {
                name: g.name.clone(),
                heads: g.heads.clone(),
                positions: g.positions.to_string(),
            })
            .collect();
        CircuitFile {
            common: {
                let mut c = meta.common(CIRCUIT_FORMAT, r.complete);
                c.warnings.extend(r.warnings.iter().cloned());
                c
            },
            // The explorer scores by the logit difference; the CLI sets its --metric.
            metric: Metric::LogitDiff,
            groups,
            ld_normal: r.ld_normal,
            ld_contrast: r.ld_contrast,
            f_c: r.f_c,
            f_m: r.f_m,
            faithfulness: r.faithfulness,
            completeness: r.completeness.clone(),
            minimality: r.minimality.clone(),
            greedy: r.greedy.clone(),
        }
    }
}

impl AblationFile {
    pub fn new(meta: &Meta, r: &AblationReport) -> Self {
        let pick = |f: fn(&AblationRun) -> f64| Stat::of(r.random.iter().map(f).collect());
        let random_groups = RandomGroups {
            n: r.random.len(),
            seed: r.seed,
            size: r.heads.heads.len(),
            groups: r.random.iter().map(|g| g.heads.clone()).collect(),
            logit_diff: pick(|r| r.logit_diff),
            acc_normal_answer: pick(|r| r.acc_normal_answer),
            acc_contrast_answer: pick(|r| r.acc_contrast_answer),
            acc_normal_answer_full_vocab: pick(|r| r.acc_normal_answer_full_vocab),
            acc_contrast_answer_full_vocab: pick(|r| r.acc_contrast_answer_full_vocab),
        };
        let h = &r.heads;
        AblationFile {
            common: meta.common(ABLATION_FORMAT, r.complete),
            metric: Metric::LogitDiff,
            answer_tokens: r.answer_set.describe(),
            heads: h.heads.clone(),
            logit_diff: h.logit_diff,
            acc_normal_answer: h.acc_normal_answer,
            acc_contrast_answer: h.acc_contrast_answer,
            acc_normal_answer_full_vocab: h.acc_normal_answer_full_vocab,
            acc_contrast_answer_full_vocab: h.acc_contrast_answer_full_vocab,
            baseline: r.baseline.clone(),
            random_groups,
            group: meta.group.clone(),
        }
    }
}

impl FvFile {
    pub fn new(meta: &Meta, r: &FvReport) -> Self {
        let (o, res) = (&r.options, &r.result);
        let paper = o.naive_prompts == paper_naive_prompts() && o.readout.is_empty();
        let shifts = paper.then(|| {
            res.delta
                .iter()
                .map(|(k, g)| {
                    let m = shifts_of(g).into_iter().map(|(s, v)| (shift_key(s), v));
                    (k.clone(), m.collect())
                })
                .collect()
        });
        FvFile {
            common: meta.common(FV_FORMAT, r.complete),
            metric: o.metric,
            heads: res.heads.clone(),
            naive_prompts: o.naive_prompts.clone(),
            digits: o.labels(),
            fv_from: o.source.to_string(),
            add_at: o.add_at,
            centered: res.centered,
            baseline: res.baseline.clone(),
            delta: res.delta.iter().cloned().collect(),
            shifts,
            group: meta.group.clone(),
        }
    }

    /// Grid keys in display order: the heads as listed, then `all`, then any others.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .heads
            .iter()
            .map(crate::analysis::head_label)
            .filter(|k| self.delta.contains_key(k))
            .collect();
        for k in std::iter::once(&"all".to_string()).chain(self.delta.keys()) {
            if self.delta.contains_key(k) && !keys.contains(k) {
                keys.push(k.clone());
            }
        }
        keys
    }
}

/// One analysis result file of any kind. (A handful exist at a time: the variants' sizes
/// do not matter, and unboxed they match and destructure plainly.)
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum AnalysisFile {
    Circuit(CircuitFile),
    Ablation(AblationFile),
    Fv(FvFile),
}

impl AnalysisFile {
    /// The record of a report (the header's `created` is now).
    pub fn from_report(report: &AnalysisReport, meta: &Meta) -> Self {
        match report {
            AnalysisReport::Circuit(r) => AnalysisFile::Circuit(CircuitFile::new(meta, r)),
            AnalysisReport::Ablation(r) => AnalysisFile::Ablation(AblationFile::new(meta, r)),
            AnalysisReport::Fv(r) => AnalysisFile::Fv(FvFile::new(meta, r)),
        }
    }

    pub fn common(&self) -> &Common {
        match self {
            AnalysisFile::Circuit(f) => &f.common,
            AnalysisFile::Ablation(f) => &f.common,
            AnalysisFile::Fv(f) => &f.common,
        }
    }

    /// `circuit`, `ablation` or `fv` (the gallery's kind column, file names).
    pub fn kind(&self) -> &'static str {
        match self {
            AnalysisFile::Circuit(_) => "circuit",
            AnalysisFile::Ablation(_) => "ablation",
            AnalysisFile::Fv(_) => "fv",
        }
    }

    /// The metric its values are in.
    pub fn metric(&self) -> Metric {
        match self {
            AnalysisFile::Circuit(f) => f.metric,
            AnalysisFile::Ablation(f) => f.metric,
            AnalysisFile::Fv(f) => f.metric,
        }
    }

    pub fn to_json(&self) -> String {
        let value = match self {
            AnalysisFile::Circuit(f) => serde_json::to_value(f),
            AnalysisFile::Ablation(f) => serde_json::to_value(f),
            AnalysisFile::Fv(f) => serde_json::to_value(f),
        };
        let mut value = value.expect("analysis records serialize");
        rename_metric_fields(&mut value, self.kind(), self.metric(), true);
        serde_json::to_string_pretty(&value).expect("analysis records serialize") + "\n"
    }

    /// The same analysis, whenever it was written: equal but for `created`.
    pub fn same_result(&self, other: &AnalysisFile) -> bool {
        let strip = |f: &AnalysisFile| {
            let mut v: serde_json::Value = serde_json::from_str(&f.to_json()).unwrap_or_default();
            if let Some(m) = v.as_object_mut() {
                m.remove("created");
            }
            v
        };
        strip(self) == strip(other)
    }

    /// Writes atomically; an existing file is replaced only with `overwrite` (and never when
    /// it is not a regular file).
    pub fn save(&self, path: &Path, overwrite: bool) -> Result<(), ResultsError> {
        super::write_atomic(path, self.to_json().as_bytes(), overwrite)
    }

    /// Loads an analysis file (through the one reader, [`super::read`]); every failure is
    /// one line naming the file and what is wrong.
    pub fn load(path: &Path) -> Result<Self, ResultsError> {
        Self::from_value(super::read_json(path)?, path)
    }

    /// [`AnalysisFile::load`] of JSON already read from `path` (named in errors): its
    /// `format` and `format_version`, every field's type (named by its path), then shapes,
    /// heads and accuracies ([`AnalysisFile::check`]).
    pub fn from_value(value: serde_json::Value, path: &Path) -> Result<Self, ResultsError> {
        let bad = |msg: String| ResultsError::Format {
            path: path.display().to_string(),
            msg,
        };
        let format = read::format_of(&value, path)?.unwrap_or("").to_string();
        if !ANALYSIS_FORMATS.contains(&format.as_str()) {
            return Err(bad(format!(
                "field `format` is {format:?}, expected one of {}",
                ANALYSIS_FORMATS.join(", ")
            )));
        }
        read::check_version(&value, path, &format, ANALYSIS_FORMAT_VERSION)?;
        // The header is flattened into each kind: read on its own, its fields keep their names.
        read::typed_part::<Common>(&value, "", path, &format)?;
        read::typed_data(&value, path, &format)?;
        let mut value = value;
        let kind = match format.as_str() {
            CIRCUIT_FORMAT => "circuit",
            ABLATION_FORMAT => "ablation",
            _ => "fv",
        };
        let metric = metric_of(&value, kind).map_err(bad)?;
        rename_metric_fields(&mut value, kind, metric, false);
        let file = match format.as_str() {
            CIRCUIT_FORMAT => AnalysisFile::Circuit(read::typed(value, path, &format)?),
            ABLATION_FORMAT => AnalysisFile::Ablation(read::typed(value, path, &format)?),
            _ => AnalysisFile::Fv(read::typed(value, path, &format)?),
        };
        file.check().map_err(bad)?;
        Ok(file)
    }

    /// What a reader relies on: a model of at least one layer and one head, every head named
    /// inside it, accuracies that are fractions, counts that agree, grids of their shape.
    fn check(&self) -> Result<(), String> {
        let c = self.common();
        let shape = (c.model.n_layers, c.model.n_heads);
        read::shape_not_empty(shape, "model.")?;
        super::check_baseline_accuracy(c.baseline_accuracy.as_ref())?;
        match self {
            AnalysisFile::Circuit(f) => check_circuit(f, shape),
            AnalysisFile::Ablation(f) => check_ablation(f, shape),
            AnalysisFile::Fv(f) => {
                read::heads_inside(&f.heads, shape, "heads")?;
                check_fv(f)
            }
        }
    }
}

/// Where an analysis file names its metric: (the object's path, the field's in-memory
/// name, its name in the file for `m`). The logit difference keeps the names the files had
/// before other metrics (`LD_normal`, `logit_diff`); another metric's are named after it, so
/// a reader that knows only the logit difference cannot mistake them for it.
pub fn metric_names(kind: &str, m: Metric) -> Vec<(&'static [&'static str], &'static str, String)> {
    let ld = m == Metric::LogitDiff;
    let named = |mem: &'static str, prefix: &str| {
        if ld {
            mem.to_string()
        } else {
            format!("{prefix}{}", m.key())
        }
    };
    match kind {
        "circuit" => vec![
            (&[][..], "LD_normal", named("LD_normal", "normal_")),
            (&[][..], "LD_contrast", named("LD_contrast", "contrast_")),
        ],
        "ablation" => vec![
            (&[][..], "logit_diff", named("logit_diff", "")),
            (&["baseline"][..], "logit_diff", named("logit_diff", "")),
            (
                &["random_groups"][..],
                "logit_diff",
                named("logit_diff", ""),
            ),
        ],
        _ => vec![
            (&[][..], "baseline", named("baseline", "baseline_")),
            (&[][..], "delta", named("delta", "delta_")),
        ],
    }
}

fn object_at<'v>(
    v: &'v mut serde_json::Value,
    path: &[&str],
) -> Option<&'v mut serde_json::Map<String, serde_json::Value>> {
    let mut v = v;
    for p in path {
        v = v.get_mut(*p)?;
    }
    v.as_object_mut()
}

/// Renames the metric's fields between the in-memory names and the file's (`to_file`) or back.
fn rename_metric_fields(v: &mut serde_json::Value, kind: &str, metric: Metric, to_file: bool) {
    for (path, mem, file) in metric_names(kind, metric) {
        let Some(map) = object_at(v, path) else {
            continue;
        };
        let (from, to) = if to_file {
            (mem.to_string(), file)
        } else {
            (file, mem.to_string())
        };
        if let Some(x) = map.remove(&from) {
            map.insert(to, x);
        }
    }
}

/// The file's `metric` (absent: the logit difference), and no field named after another
/// metric: such a file says one thing in its `metric` and another in its names, so it is
/// refused rather than read as either.
fn metric_of(value: &serde_json::Value, kind: &str) -> Result<Metric, String> {
    let metric = match value.get("metric") {
        None => Metric::LogitDiff,
        Some(serde_json::Value::String(s)) => Metric::parse(s).ok_or_else(|| {
            let known: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
            format!(
                "field `metric` is {s:?}, expected one of {}",
                known.join(", ")
            )
        })?,
        Some(other) => return Err(format!("field `metric` is {other}, expected a string")),
    };
    let own = metric_names(kind, metric);
    for m in Metric::ALL.into_iter().filter(|&m| m != metric) {
        for ((path, _, name), (_, _, mine)) in metric_names(kind, m).into_iter().zip(&own) {
            let mut at = value;
            for p in path {
                at = at.get(*p).unwrap_or(&serde_json::Value::Null);
            }
            if name != *mine && at.get(&name).is_some() {
                let field: Vec<&str> = path.iter().copied().chain([name.as_str()]).collect();
                return Err(format!(
                    "field `{}` is of the metric {m}, but the file's `metric` is {metric}",
                    field.join(".")
                ));
            }
        }
    }
    Ok(metric)
}

fn check_circuit(f: &CircuitFile, shape: (usize, usize)) -> Result<(), String> {
    if f.groups.is_empty() {
        return Err("field `groups` is empty: a circuit has at least one group".into());
    }
    for (i, g) in f.groups.iter().enumerate() {
        if g.heads.is_empty() {
            return Err(format!("field `groups[{i}].heads` is empty"));
        }
        read::heads_inside(&g.heads, shape, &format!("groups[{i}].heads"))?;
    }
    for (i, c) in f.completeness.iter().enumerate() {
        read::heads_inside(&c.k, shape, &format!("completeness[{i}].K"))?;
    }
    for (i, c) in f.greedy.iter().flat_map(|g| &g.sets).enumerate() {
        read::heads_inside(&c.k, shape, &format!("greedy.sets[{i}].K"))?;
    }
    for (i, m) in f.minimality.iter().enumerate() {
        read::heads_inside(&[m.head], shape, &format!("minimality[{i}].head"))?;
        read::heads_inside(&m.k, shape, &format!("minimality[{i}].K"))?;
    }
    if let Some(g) = f
        .greedy
        .as_ref()
        .filter(|g| g.sets.len() > g.options.rollouts)
    {
        return Err(format!(
            "field `greedy.sets` holds {} sets of {} rollouts",
            g.sets.len(),
            g.options.rollouts
        ));
    }
    Ok(())
}

/// The ablated heads and every random group inside the model, one value per random group in
/// every statistic, accuracies in [0, 1].
fn check_ablation(f: &AblationFile, shape: (usize, usize)) -> Result<(), String> {
    read::heads_inside(&f.heads, shape, "heads")?;
    read::heads_inside(&f.baseline.heads, shape, "baseline.heads")?;
    let rg = &f.random_groups;
    if rg.groups.len() != rg.n {
        return Err(format!(
            "field `random_groups`: n is {} but it lists {} groups",
            rg.n,
            rg.groups.len()
        ));
    }
    for (i, g) in rg.groups.iter().enumerate() {
        read::heads_inside(g, shape, &format!("random_groups.groups[{i}]"))?;
    }
    let accuracies = [
        (
            "acc_normal_answer",
            f.acc_normal_answer,
            f.baseline.acc_normal_answer,
            &rg.acc_normal_answer,
        ),
        (
            "acc_contrast_answer",
            f.acc_contrast_answer,
            f.baseline.acc_contrast_answer,
            &rg.acc_contrast_answer,
        ),
        (
            "acc_normal_answer_full_vocab",
            f.acc_normal_answer_full_vocab,
            f.baseline.acc_normal_answer_full_vocab,
            &rg.acc_normal_answer_full_vocab,
        ),
        (
            "acc_contrast_answer_full_vocab",
            f.acc_contrast_answer_full_vocab,
            f.baseline.acc_contrast_answer_full_vocab,
            &rg.acc_contrast_answer_full_vocab,
        ),
    ];
    for (name, heads, baseline, stat) in accuracies {
        read::fraction(heads, name, false)?;
        read::fraction(baseline, &format!("baseline.{name}"), false)?;
        check_stat(stat, rg.n, &format!("random_groups.{name}"), true)?;
    }
    check_stat(&rg.logit_diff, rg.n, "random_groups.logit_diff", false)
}

/// A statistic of `n` random groups: `n` values, fractions when `fractions`.
fn check_stat(s: &Stat, n: usize, field: &str, fractions: bool) -> Result<(), String> {
    if s.values.len() != n {
        return Err(format!(
            "field `{field}.values` has {} values, but random_groups.n is {n}",
            s.values.len()
        ));
    }
    if fractions {
        read::fraction(s.mean, &format!("{field}.mean"), true)?;
        for (i, &v) in s.values.iter().enumerate() {
            read::fraction(v, &format!("{field}.values[{i}]"), false)?;
        }
    }
    Ok(())
}

fn check_fv(f: &FvFile) -> Result<(), String> {
    let (r, c) = (f.naive_prompts.len(), f.digits.len());
    if r == 0 || c == 0 {
        let field = if r == 0 { "naive_prompts" } else { "digits" };
        return Err(format!("field `{field}` is empty: the grids have no cells"));
    }
    if f.delta.is_empty() {
        return Err("field `delta` is empty".into());
    }
    for (k, g) in std::iter::once((&"baseline".to_string(), &f.baseline)).chain(&f.delta) {
        if g.len() != r || g.iter().any(|row| row.len() != c) {
            let field = if k == "baseline" {
                "baseline".to_string()
            } else {
                format!("delta.{k}")
            };
            return Err(format!(
                "field `{field}` is not {r}×{c} (naive_prompts × digits)"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_is_written_as_null_and_read_back_as_nan() {
        // The mean of no random groups: JSON has no NaN.
        let text = serde_json::to_string(&Stat::of(vec![])).unwrap();
        assert_eq!(text, r#"{"mean":null,"std":null,"values":[]}"#);
        let back: Stat = serde_json::from_str(&text).unwrap();
        assert!(back.mean.is_nan() && back.std.is_nan());
    }

    #[test]
    fn shifts_find_the_raised_diagonal() {
        let grid: Vec<Vec<f64>> = (0..10)
            .map(|i| (0..10).map(|j| f64::from(j == (i + 1) % 10)).collect())
            .collect();
        let s: Vec<(i64, Shift)> = shifts_of(&grid);
        assert_eq!(s.iter().map(|x| x.0).collect::<Vec<_>>(), SHIFTS);
        assert_eq!((s[3].1.mean, s[3].1.argmax_rows), (1.0, 10), "+1");
        assert_eq!((s[2].1.mean, s[2].1.argmax_rows), (0.0, 0), "+0");
        assert_eq!(shift_key(0), "+0");
        assert_eq!(shift_key(-2), "-2");
    }

    #[test]
    fn newer_format_version_and_bad_json_are_one_line() {
        let dir = std::env::temp_dir().join(format!("hh-analysis-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.json");
        std::fs::write(&p, r#"{"format": "headhunt-fv", "format_version": 9}"#).unwrap();
        let e = AnalysisFile::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("x.json")
                && e.contains("`format_version` is 9; this headhunt reads version 1"),
            "{e}"
        );
        std::fs::write(&p, "{\"format\": \"headhunt-fv\",\n").unwrap();
        let e = AnalysisFile::load(&p).unwrap_err().to_string();
        assert!(e.contains("invalid JSON") && e.lines().count() == 1, "{e}");
        std::fs::write(
            &p,
            r#"{"format": "headhunt-ablation", "format_version": 1}"#,
        )
        .unwrap();
        let e = AnalysisFile::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("not a valid headhunt-ablation file") && e.lines().count() == 1,
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
