//! `headhunt ablate`: the paper's §7 head ablation. The listed heads' z on the contrast prompt
//! are replaced, at every position, by their z on the same example's normal prompt; prints the
//! logit difference and accuracies against the plain contrast run and against random head
//! groups of the same size, and writes JSON.

use anyhow::{anyhow, Result};
use clap::Args;
use std::path::PathBuf;

use super::circuit::{heads_flag, plan_json, save_json, Inputs};
use super::output::Report;
use super::{signals, DataArgs, ModelArgs};
use crate::analysis::ablation::{random_groups, task_answer_tokens, AblationRun, Ablator};
use crate::analysis::mean_std;
use crate::analysis::report::AblationReport;
use crate::patching::Metric;
use crate::results::analysis::{AblationFile, AnalysisFile};

#[derive(Args, Debug)]
pub struct AblateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// The heads to ablate, `L.H,L.H`.
    #[arg(long)]
    pub heads: String,
    /// Also ablate N random groups of as many heads (Python's `random.sample` over every
    /// head, seeded with --seed, as the paper draws them).
    #[arg(long, default_value_t = 0)]
    pub random_groups: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Prompts per forward pass (any value gives the same numbers).
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// What the ablated run is scored by: logit-diff (the paper's) or kl at the last prompt
    /// position, or logprob / prob of the normal answer, teacher-forced over all its tokens.
    #[arg(long, default_value = "logit-diff", value_parser = super::circuit::parse_metric)]
    pub metric: Metric,
    /// Write the result as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Overwrite an existing --json file.
    #[arg(long)]
    pub force: bool,
}

fn row(o: &mut Report, name: &str, r: &AblationRun) {
    out!(
        o,
        "{name:<34} {:>+9.4} {:>8.3} {:>8.3} {:>8.3} {:>8.3}",
        r.logit_diff,
        r.acc_normal_answer,
        r.acc_contrast_answer,
        r.acc_normal_answer_full_vocab,
        r.acc_contrast_answer_full_vocab
    );
}

/// Ablates; a signal stops the random groups after the current one and what is finished is
/// saved, marked incomplete.
pub fn run(a: AblateArgs) -> Result<Report> {
    let json = plan_json(a.json.as_deref(), a.force)?;
    // The random groups are drawn up front: their count is checked before the model loads.
    let given = heads_flag("--heads", &a.heads, ',', None)?;
    crate::analysis::ablation::check_random_groups(a.random_groups, given.len())?;
    let whole = matches!(a.metric, Metric::Logprob | Metric::Prob).then_some(a.metric);
    let inp = Inputs::load_scoring(&a.model, &a.data, whole)?;
    let lm = &inp.lm;
    let heads = heads_flag("--heads", &a.heads, ',', Some(lm))?;
    let (answer_set, digits) = task_answer_tokens(
        inp.spec.task,
        &lm.tokenizer,
        &inp.tok.pairs,
        Some(&inp.roles),
    )?;
    let baseline = inp.baseline(a.batch_size)?;
    let mut o = Report::new();
    let _honour = signals::Honour::start();
    let started = std::time::Instant::now();
    let ab = Ablator::with_metric(
        &lm.model,
        &inp.tok.pairs,
        Some(&inp.roles),
        digits.clone(),
        a.batch_size,
        a.metric,
    )
    .map_err(|e| anyhow!("--batch-size {}: {e}", a.batch_size))?;
    let base = ab.ablate(&[])?;
    let run = ab.ablate(&heads)?;
    out!(o, "{}", inp.describe());
    out!(
        o,
        "accuracy on contrast prompts: argmax over {} (teacher-forced){}",
        answer_set.phrase(),
        if digits.is_some() {
            ", and over the full vocabulary (n full, c full)"
        } else {
            ""
        }
    );
    out!(
        o,
        "{:<34} {:>9} {:>8} {:>8} {:>8} {:>8}",
        "heads patched from the normal run",
        a.metric.short(),
        "normal",
        "contr.",
        "n full",
        "c full"
    );
    row(&mut o, "none (contrast run)", &base);
    row(&mut o, &a.heads, &run);
    let groups = random_groups(&lm.model, a.random_groups, heads.len(), a.seed);
    let mut runs = Vec::new();
    for g in &groups {
        if signals::received().is_some() {
            break;
        }
        let r = ab.ablate(g)?;
        let label = g
            .iter()
            .map(|h| format!("{}.{}", h.0, h.1))
            .collect::<Vec<_>>()
            .join(",");
        row(&mut o, &format!("random {label}"), &r);
        runs.push(r);
    }
    let pick = |f: fn(&AblationRun) -> f64| runs.iter().map(f).collect::<Vec<f64>>();
    if !runs.is_empty() {
        let (m, s) = mean_std(&pick(|r| r.acc_contrast_answer));
        let (mn, sn) = mean_std(&pick(|r| r.acc_normal_answer));
        let (ml, sl) = mean_std(&pick(|r| r.logit_diff));
        out!(o,
            "random groups ({} × {} heads, seed {}): {} {ml:+.4} ± {sl:.4}, normal answer {mn:.3} ± {sn:.3}, contrast answer {m:.3} ± {s:.3} (mean ± population std)",
            runs.len(),
            heads.len(),
            a.seed,
            a.metric.short()
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    out!(o, "time        {seconds:.2} s");
    let stopped = signals::received();
    if stopped.is_some() {
        super::output::note(&format!(
            "stopped: {} of {} random groups done; saving them, marked incomplete",
            runs.len(),
            groups.len()
        ));
    }
    let report = AblationReport {
        baseline: base,
        heads: run,
        random: runs,
        seed: a.seed,
        answer_set,
        complete: stopped.is_none(),
    };
    let mut file = AblationFile::new(&inp.meta(a.batch_size, seconds, &baseline), &report);
    file.metric = a.metric;
    save_json(&mut o, json, &AnalysisFile::Ablation(file));
    o.stopped = stopped;
    Ok(o)
}
