//! `headhunt scan`: an activation-patching scan (`patching::scan`): each head's output, each
//! MLP's, or the residual stream / an MLP's output at each position of each layer, patched from
//! one run into the other, scored by the metric. The result (`results::scan`) is saved with its
//! per-example values before anything is printed (the one output path, `output::Report`);
//! Ctrl-C, SIGTERM or SIGHUP stop after the current layer and save the finished ones, marked
//! partial.

use anyhow::{bail, Result};
use clap::Args;
use std::path::{Path, PathBuf};

use super::output::{Output, Planned, Report};
use super::{signals, DataArgs, ModelArgs};
use crate::model::tokenizer::printable;
use crate::patching::scan::{self, Direction, ScanKind, ScanSpec};
use crate::patching::{Metric, Observer, PatchEvent};
use crate::results::scan::{ScanParts, ScanRecord};
use crate::results::{DataInfo, ModelInfo};

#[derive(Args, Debug)]
pub struct ScanArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// What each cell patches: heads (each head's output, all positions), mlp (each MLP's
    /// output, all positions), resid (each layer's resid_pre at each position; resid-pos is
    /// the same scan), mlp-pos (each MLP's output at each position).
    #[arg(long)]
    pub kind: String,
    /// denoising: the normal run's activations patched into the contrast run (as path
    /// patching); noising: the contrast run's into the normal run.
    #[arg(long, default_value = "denoising")]
    pub direction: String,
    /// What the patched run is scored by at the last position: logit-diff, logprob, prob, kl.
    #[arg(long, default_value = "logit-diff")]
    pub metric: String,
    /// Prompts per batch (any value gives the same numbers).
    #[arg(long, default_value_t = 4)]
    pub batch_size: usize,
    /// Result file (JSON). Default: results/scan-<model>-<data>-<kind>-<direction>-<time>.json
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
    /// Overwrite an existing result file.
    #[arg(long)]
    pub force: bool,
    /// Do not print the table.
    #[arg(long)]
    pub quiet: bool,
    /// Compute only shard K of N (`K/N`, K from 0) of the layers, split by cost, and save it as
    /// a part for `headhunt merge`; `slurm` takes K and N from the Slurm array task.
    #[arg(long)]
    pub shard: Option<String>,
}

/// One of `names` by its name, or a one-line error naming the flag and what it takes.
fn choice<T>(flag: &str, value: &str, parse: fn(&str) -> Option<T>, names: &str) -> Result<T> {
    parse(value).ok_or_else(|| anyhow::anyhow!("{flag} {value:?}: expected one of {names}"))
}

/// The spec from the flags, checked before the model loads.
fn spec_of(a: &ScanArgs) -> Result<ScanSpec> {
    let metrics: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
    let spec = ScanSpec {
        kind: choice("--kind", &a.kind, ScanKind::parse, ScanKind::NAMES)?,
        direction: choice(
            "--direction",
            &a.direction,
            Direction::parse,
            "denoising, noising",
        )?,
        metric: choice("--metric", &a.metric, Metric::parse, &metrics.join(", "))?,
        batch_size: a.batch_size,
    };
    if spec.batch_size == 0 {
        bail!("--batch-size 0: expected at least 1");
    }
    Ok(spec)
}

/// `--out` (or the first free default name) and its per-example `.npy` files, checked before
/// any compute.
fn plan_out(out: Option<&Path>, base: impl FnOnce() -> PathBuf, force: bool) -> Result<Planned> {
    let companions = |p: &Path| crate::results::per_example_paths(p).to_vec();
    let Some(out) = out else {
        return Planned::default_name("--out", &base(), &companions);
    };
    let planned = Planned::given("--out", out, force)?;
    for p in companions(out) {
        crate::results::preflight(&p, force)
            .map_err(|e| anyhow::anyhow!("--out (its .npy files) {}", super::output::word(&e)))?;
    }
    Ok(planned)
}

/// Progress on stderr, a line per layer; a signal cancels after the current layer, and so do
/// baselines that are not finite (every score would be NaN too).
struct Progress {
    metric: Metric,
    top_tokens: Vec<Option<(u32, u32)>>,
    not_finite: Option<(f64, f64)>,
}

impl Observer for Progress {
    fn event(&mut self, e: &PatchEvent) {
        match e {
            PatchEvent::Baselines {
                ld_normal,
                ld_contrast,
                n_examples,
                cache_seconds,
                top_tokens,
            } => {
                let x = self.metric.short();
                super::output::note(&format!(
                    "baselines: {x}_normal {ld_normal:+.4}, {x}_contrast {ld_contrast:+.4} ({n_examples} examples, caches {cache_seconds:.3} s)"
                ));
                self.top_tokens = top_tokens.clone();
                if !(ld_normal.is_finite() && ld_contrast.is_finite()) {
                    self.not_finite = Some((*ld_normal, *ld_contrast));
                }
            }
            PatchEvent::Row {
                layer,
                done,
                total,
                eta,
                ..
            } => super::output::note(&format!(
                "layer {layer} done ({done}/{total}), ETA {eta:.1} s"
            )),
        }
    }
    fn cancelled(&self) -> bool {
        signals::received().is_some() || self.not_finite.is_some()
    }
}

pub fn run(a: ScanArgs) -> Result<Report> {
    let spec = spec_of(&a)?;
    let shard = a
        .shard
        .as_deref()
        .map(|s| crate::patching::Shard::parse(s, |k| std::env::var(k).ok()))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--shard {e}"))?;
    let given = a
        .out
        .as_deref()
        .map(|o| plan_out(Some(o), PathBuf::new, a.force))
        .transpose()?;
    let lm = a.model.load()?;
    let data_spec = a.data.spec()?;
    let planned = match given {
        Some(p) => p,
        None => {
            let tag = format!("{}-{}", spec.kind, spec.direction);
            let name = crate::results::naming::analysis_file_name(
                "scan",
                &lm.origin.label(),
                Some(&data_spec.file),
                Some(&tag),
            );
            plan_out(None, || PathBuf::from("results").join(name), false)?
        }
    };
    let checked = crate::data::checks::load_checked(&lm, &data_spec, &super::checks::WORDS)?;
    // Answers of several tokens scored in full (logprob, prob; heads and mlp scans).
    let whole = crate::patching::forced::scan_scores_whole_answers(spec.kind, spec.metric);
    let roles = whole
        .then(|| crate::data::token_roles(&data_spec, &lm.tokenizer, &checked.tok))
        .transpose()?;
    let warnings = super::circuit::input_warnings(
        checked.warnings,
        &checked.tok,
        roles.as_deref(),
        whole.then_some(spec.metric),
    );
    let tok = checked.tok;
    if tok.pairs.is_empty() {
        bail!("{}: no examples left to scan", data_spec.file.display());
    }
    if spec.kind.per_position() {
        scan::check_one_length(&tok.pairs, spec.kind)?;
    }
    super::output::note(&format!(
        "scanning {} ({}) on {} examples, metric {}",
        spec.kind,
        spec.direction,
        tok.pairs.len(),
        spec.metric
    ));
    let honour = signals::Honour::start();
    let mut progress = Progress {
        metric: spec.metric,
        top_tokens: Vec::new(),
        not_finite: None,
    };
    let n_layers = lm.model.n_layers();
    let layers: Vec<usize> = match shard {
        Some(s) => {
            let layers = scan::shard_layers(n_layers, s);
            super::output::note(&format!("shard {}: layers {layers:?}", s.label()));
            layers
        }
        None => (0..n_layers).rev().collect(),
    };
    let (outcome, forced) = crate::patching::forced::scan_layers(
        &lm.model,
        &tok.pairs,
        roles.as_deref(),
        &spec,
        &layers,
        &mut progress,
    )?;
    if let Some((n, c)) = progress.not_finite {
        bail!(
            "the model's {} baselines are not finite (normal {n}, contrast {c}): its weights hold NaN or Inf, or {} overflows; nothing saved",
            spec.metric,
            crate::model::source::dtype_name(lm.model.dtype)
        );
    }
    let baseline = super::checks::baseline(&lm, &tok, &progress.top_tokens);
    let tokens = if spec.kind.per_position() {
        let p = &tok.pairs[0];
        let ids = if spec.direction.base_is_normal() {
            &p.normal_ids
        } else {
            &p.contrast_ids
        };
        ids.iter()
            .map(|&id| printable(&lm.tokenizer.token_text(id)))
            .collect()
    } else {
        Vec::new()
    };
    let mut record = ScanRecord::of(
        &outcome,
        ScanParts {
            model: ModelInfo::of(&lm),
            data: DataInfo::of(&data_spec, &tok),
            tokens,
            baseline_accuracy: baseline.as_ref().map(|b| b.accuracy),
            load_seconds: lm.load_seconds,
        },
    );
    record.warnings = warnings;
    record.warnings.extend(forced);
    record.warnings.extend(baseline.and_then(|b| b.warning));
    if let (Some(s), Some(model)) = (shard, record.model.as_ref()) {
        let options = serde_json::json!({
            "scan": spec.kind, "direction": spec.direction, "metric": spec.metric,
        });
        let fingerprint = crate::results::shard::fingerprint_of(model, &tok.pairs, options);
        record.complete &= layers.len() == n_layers;
        record.shard = Some(crate::results::shard::ShardInfo::new(
            s,
            layers.clone(),
            fingerprint,
        ));
    }
    drop(honour);
    let mut r = Report::new();
    if !a.quiet {
        r.push(&crate::results::scan::text(&record));
    }
    let mut output = Output::new(planned, record.to_json().into_bytes());
    let rec = record.clone();
    output.companions = Some(Box::new(move |p: &Path| rec.per_example_files(p)));
    r.save(output);
    if !outcome.complete {
        super::output::note(&format!(
            "cancelled: {} of {} layers computed; saving them, marked partial",
            record.rows_computed.len(),
            record.n_layers
        ));
        r.stopped = Some(signals::received().unwrap_or(signal_hook::consts::SIGINT));
    }
    Ok(r)
}
