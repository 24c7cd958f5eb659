//! `headhunt eval`: how often the model's next token is the normal or the contrast answer, on
//! the normal and on the contrast prompts (the paper's orig_acc and cf_acc for single-token
//! answers), with the mean logit differences that path patching normalises by.

use anyhow::{bail, Result};
use clap::Args;

use super::{DataArgs, ModelArgs};
use crate::model::tokenizer::printable;
use crate::patching::accuracy::{evaluate, Accuracy};
use crate::patching::matrix::SMALL_GAP;

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// Prompts per forward pass.
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Also list the first N examples' answers and predictions.
    #[arg(long, default_value_t = 0)]
    pub show: usize,
    /// Print the counts and every prediction as JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

fn pct(acc: &Accuracy, c: usize) -> String {
    format!("{:>6.1}% ({c})", 100.0 * acc.rate(c))
}

/// The accuracy table.
pub fn table(acc: &Accuracy) -> String {
    let other_n = acc.n - acc.normal_prompt_normal_answer - acc.normal_prompt_contrast_answer;
    let other_c = acc.n - acc.contrast_prompt_normal_answer - acc.contrast_prompt_contrast_answer;
    let mut s = String::new();
    s.push_str(&format!(
        "argmax next token        {:>14}  {:>14}  {:>14}\n",
        "normal answer", "contrast answer", "other"
    ));
    s.push_str(&format!(
        "on normal prompts        {:>14}  {:>14}  {:>14}\n",
        pct(acc, acc.normal_prompt_normal_answer),
        pct(acc, acc.normal_prompt_contrast_answer),
        pct(acc, other_n)
    ));
    s.push_str(&format!(
        "on contrast prompts      {:>14}  {:>14}  {:>14}\n",
        pct(acc, acc.contrast_prompt_normal_answer),
        pct(acc, acc.contrast_prompt_contrast_answer),
        pct(acc, other_c)
    ));
    s.push_str(&format!(
        "accuracy    normal (orig_acc) {:.3}, contrast (cf_acc) {:.3}\n",
        acc.rate(acc.normal_prompt_normal_answer),
        acc.rate(acc.contrast_prompt_contrast_answer)
    ));
    let gap = acc.mean_ld_contrast - acc.mean_ld_normal;
    s.push_str(&format!(
        "baselines   LD_normal {:+.4}   LD_contrast {:+.4}   gap {gap:+.4}  (LD = logit[normal answer] - logit[contrast answer])\n",
        acc.mean_ld_normal, acc.mean_ld_contrast
    ));
    if !gap.is_finite() {
        s.push_str("warning     the logit differences are not finite: the model's weights hold NaN or Inf, or its dtype overflows\n");
    } else if crate::patching::matrix::ill_conditioned(acc.mean_ld_normal, acc.mean_ld_contrast) {
        s.push_str(&format!(
            "warning     |LD_contrast - LD_normal| = {:.3} < {SMALL_GAP}: the model barely tells the prompts apart; path-patching scores r would be ill-conditioned\n",
            gap.abs()
        ));
    }
    s
}

/// The accuracies, through the one output path (`output::Report`).
pub fn run(a: EvalArgs) -> Result<super::output::Report> {
    let mut r = super::output::Report::new();
    let lm = a.model.load()?;
    let spec = a.data.spec()?;
    let tokenized = super::checks::load_checked(&lm, &spec)?.tok;
    if tokenized.pairs.is_empty() {
        bail!("{}: no examples to evaluate", spec.file.display());
    }
    let started = std::time::Instant::now();
    let acc = evaluate(&lm.model, &tokenized.pairs, a.batch_size)?;
    super::checks::baseline(&lm, &tokenized, &acc.top_tokens());
    let seconds = started.elapsed().as_secs_f64();
    if a.json {
        out!(r, "{}", serde_json::to_string_pretty(&acc)?);
        return Ok(r);
    }
    if spec.task == crate::data::TaskKind::Pairs {
        out!(
            r,
            "data        {} (prompt pairs, {} examples)",
            spec.file.display(),
            acc.n
        );
    } else {
        out!(
            r,
            "data        {} ({}, {} shots, offset {:+}, {} examples)",
            spec.file.display(),
            spec.task,
            spec.shots,
            spec.offset,
            acc.n
        );
    }
    r.push(&table(&acc));
    if a.show > 0 {
        let t = |id: u32| printable(&lm.tokenizer.token_text(id));
        out!(
            r,
            "{:>6}  {:>8} {:>8}  {:>8} {:>8}  {:>9} {:>9}",
            "ex",
            "normal",
            "contrast",
            "→normal",
            "→contr.",
            "LD_normal",
            "LD_contr."
        );
        for p in acc.predictions.iter().take(a.show) {
            out!(
                r,
                "{:>6}  {:>8} {:>8}  {:>8} {:>8}  {:>+9.3} {:>+9.3}",
                p.index + 1,
                t(p.normal_answer),
                t(p.contrast_answer),
                t(p.on_normal),
                t(p.on_contrast),
                p.ld_normal,
                p.ld_contrast
            );
        }
    }
    out!(r, "time        {seconds:.2} s ({} prompts)", 2 * acc.n);
    Ok(r)
}
