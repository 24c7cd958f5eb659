//! `headhunt fv`: function vectors (the paper's §5). Each head's mean contrast z (at the last
//! position, or averaged over another position set) is added to its z on naive prompts
//! `"{i-1}={i-1}\n{i}="`; prints the change of the digit logits as 10 × 10 grids and writes
//! JSON.

use anyhow::{anyhow, bail, Result};
use clap::Args;
use std::path::PathBuf;

use super::circuit::{heads_flag, plan_json, save_json, Inputs};
use super::output::Report;
use super::{DataArgs, ModelArgs};
use crate::analysis::function_vectors::{function_vectors, readout_tokens, FvOptions};
use crate::analysis::positions::PositionSet;
use crate::analysis::report::FvReport;
use crate::model::tokenizer::printable;
use crate::results::analysis::{shifts_of, AnalysisFile, FvFile};

#[derive(Args, Debug)]
pub struct FvArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// The heads, `L.H,L.H`: each alone, then all together.
    #[arg(long)]
    pub heads: String,
    /// A naive prompt (`\n` for a newline); repeat for several. Default: the paper's ten,
    /// `9=9\n0=` ... `8=8\n9=`.
    #[arg(long = "naive-prompt")]
    pub naive_prompts: Vec<String>,
    /// Contrast positions the FV averages: last (the paper), answers (the previous-token
    /// variant), all, tok:TEXT.
    #[arg(long, default_value = "last")]
    pub fv_from: String,
    /// Position of the naive prompt the FV is added at; negative counts from the end (the
    /// previous-token variant: -4).
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    pub add_at: i64,
    /// A token whose logit Δ reads (one token each; repeat, e.g. `--readout " Mary"
    /// --readout " John"`). Default: the ten digits, for the addition task only; other tasks
    /// must name theirs (and give --naive-prompt).
    #[arg(long = "readout")]
    pub readout: Vec<String>,
    /// Raw logits instead of TransformerLens' centred ones (mean over the vocabulary
    /// subtracted; never for soft-capped models), which the paper's numbers use.
    #[arg(long)]
    pub no_center: bool,
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// What Δ is the change of: logit-diff (each read-out token's logit, the paper's),
    /// logprob or prob (its log-probability, probability); kl is refused (one value per
    /// prompt, not per token).
    #[arg(long, default_value = "logit-diff", value_parser = super::circuit::parse_metric)]
    pub metric: crate::patching::Metric,
    /// Write the result as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Overwrite an existing --json file.
    #[arg(long)]
    pub force: bool,
}

/// Function vectors. One computation: a signal during it ends the command (nothing is
/// finished yet); once it is done the result is saved before anything is printed.
pub fn run(a: FvArgs) -> Result<Report> {
    let json = plan_json(a.json.as_deref(), a.force)?;
    let probe = FvOptions {
        metric: a.metric,
        ..FvOptions::default()
    };
    probe
        .check_metric()
        .map_err(|e| anyhow!("--metric {}: {e}", a.metric))?;
    let inp = Inputs::load(&a.model, &a.data)?;
    let lm = &inp.lm;
    let heads = heads_flag("--heads", &a.heads, ',', Some(lm))?;
    let mut opts = FvOptions {
        source: PositionSet::parse(&a.fv_from, &lm.tokenizer)
            .map_err(|e| anyhow!("--fv-from {:?}: {e}", a.fv_from))?,
        add_at: a.add_at,
        batch_size: a.batch_size,
        centered: !a.no_center,
        readout: a.readout.iter().map(|t| t.replace("\\n", "\n")).collect(),
        metric: a.metric,
        ..FvOptions::default()
    };
    if !a.naive_prompts.is_empty() {
        opts.naive_prompts = a
            .naive_prompts
            .iter()
            .map(|p| p.replace("\\n", "\n"))
            .collect();
    }
    for p in &opts.naive_prompts {
        let t = lm.tokenizer.encode(p)?.len() as i64;
        if a.add_at >= t || a.add_at < -t {
            bail!(
                "--add-at {}: the naive prompt {:?} has {t} tokens",
                a.add_at,
                printable(p)
            );
        }
    }
    let digits = readout_tokens(&lm.tokenizer, inp.spec.task, &opts)
        .map_err(|e| anyhow!("--readout / --naive-prompt: {e}"))?;
    let baseline = inp.baseline(a.batch_size)?;
    let started = std::time::Instant::now();
    let res = function_vectors(
        &lm.model,
        &lm.tokenizer,
        &inp.tok.pairs,
        Some(&inp.roles),
        &heads,
        &digits,
        &opts,
    )?;
    let mut o = Report::new();
    out!(o, "{}", inp.describe());
    let what = match a.metric {
        crate::patching::Metric::Logprob => "log-probability",
        crate::patching::Metric::Prob => "probability",
        _ => "logit",
    };
    out!(o,
        "FV = mean contrast z over @{}, added at position {}; Δ = change of each read-out token's {what} (rows: naive prompt, columns: read-out token)",
        opts.source, opts.add_at
    );
    // The prompt column as wide as the longest prompt, so the grid's columns stay aligned.
    let pw = opts
        .naive_prompts
        .iter()
        .map(|p| printable(p).chars().count())
        .max()
        .unwrap_or(0)
        .max(10);
    for (key, grid) in &res.delta {
        out!(o, "{key}:");
        o.push(&format!("  {:<pw$}", "prompt"));
        for d in opts.labels() {
            o.push(&format!("{:>7}", printable(&d)));
        }
        out!(o);
        for (p, row) in opts.naive_prompts.iter().zip(grid) {
            o.push(&format!("  {:<pw$}", printable(p)));
            for x in row {
                o.push(&format!("{x:>+7.3}"));
            }
            out!(o);
        }
    }
    // With the paper's prompts row i asks for digit i: a function vector for +k shows as a
    // raised diagonal Δ[i][i+k].
    if a.naive_prompts.is_empty() && a.readout.is_empty() {
        out!(
            o,
            "shift s: mean over i of Δ[i][(i+s) mod 10], and rows whose largest Δ is at i+s"
        );
        for (key, grid) in &res.delta {
            let mut line = format!("  {key:<6}");
            for (s, v) in shifts_of(grid) {
                line.push_str(&format!("  {s:+}: {:+.2} ({})", v.mean, v.argmax_rows));
            }
            out!(o, "{line}");
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    out!(o, "time        {seconds:.2} s");
    let report = FvReport {
        options: opts,
        result: res,
        complete: true,
    };
    let file = FvFile::new(&inp.meta(a.batch_size, seconds, &baseline), &report);
    save_json(&mut o, json, &AnalysisFile::Fv(file));
    Ok(o)
}
