//! `headhunt attention`: where chosen heads attend, without the TUI. For each head, the mean
//! attention (over the first prompts of a dataset) of one query position over the key tokens,
//! sorted, or the whole grid for short prompts.

use anyhow::{bail, Result};
use clap::Args;
use std::path::PathBuf;

use super::output::{Output, Planned, Report};
use super::{DataArgs, ModelArgs};
use crate::model::tokenizer::printable;
use crate::patching::attention::{mean_patterns, prompt_rows, PromptChoice, RunKind};
use crate::plot::{
    self,
    attention::{AttentionFile, HeadPattern, PromptsUsed},
};
use crate::results::{DataInfo, ModelInfo};

#[derive(Args, Debug)]
pub struct AttentionArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    /// A head `LAYER.HEAD`; repeat for several.
    #[arg(long = "head", required = true)]
    pub heads: Vec<String>,
    /// Which prompts: the normal or the contrast ones.
    #[arg(long, value_enum, default_value_t = RunKind::Contrast)]
    pub run: RunKind,
    /// Average over the first N examples that have the first example's token length.
    #[arg(long, default_value_t = 1)]
    pub prompts: usize,
    /// One example alone (0-based) instead of the mean over --prompts.
    #[arg(long, conflicts_with = "prompts")]
    pub example: Option<usize>,
    /// Query position (0-based; negative counts from the end: -1 is the last token).
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    pub query: i64,
    /// How many key tokens to list (the largest weights).
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Print the whole [query × key] grid (rows: queries) instead of one query row.
    #[arg(long)]
    pub grid: bool,
    /// Also save the patterns, the token texts and the prompt choice as JSON (for
    /// `headhunt plot`).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Overwrite an existing --json file.
    #[arg(long)]
    pub force: bool,
}

/// Parses `L.H`.
pub fn parse_head(s: &str) -> Result<(usize, usize)> {
    let parse = || -> Option<(usize, usize)> {
        let (l, h) = s.split_once('.')?;
        Some((l.trim().parse().ok()?, h.trim().parse().ok()?))
    };
    parse().ok_or_else(|| anyhow::anyhow!("--head {s:?}: expected LAYER.HEAD, e.g. 13.4"))
}

/// One head's query row, sorted by weight: `(position, weight)`.
pub fn ranked_row(row: &[f32]) -> Vec<(usize, f32)> {
    let mut v: Vec<(usize, f32)> = row.iter().copied().enumerate().collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

/// The patterns; `--json` is checked before the model loads and saved before printing.
pub fn run(a: AttentionArgs) -> Result<Report> {
    let json = Planned::optional("--json", a.json.as_deref(), a.force)?;
    let heads: Vec<(usize, usize)> = a
        .heads
        .iter()
        .map(|h| parse_head(h))
        .collect::<Result<_>>()?;
    if a.prompts == 0 {
        bail!("--prompts 0: expected at least 1");
    }
    let lm = a.model.load()?;
    let spec = a.data.spec()?;
    let tok = super::checks::load_checked(&lm, &spec)?.tok;
    let choice = match a.example {
        Some(i) => PromptChoice::One(i),
        None => PromptChoice::Mean(a.prompts),
    };
    let rows = prompt_rows(&tok.pairs, a.run, choice)?;
    let len = rows[0].len();
    let q = if a.query < 0 {
        len as i64 + a.query
    } else {
        a.query
    };
    if q < 0 || q as usize >= len {
        bail!("--query {}: the prompts have {len} tokens", a.query);
    }
    let q = q as usize;
    let patterns = mean_patterns(&lm.model, &rows, &heads)?;
    if patterns.iter().flatten().flatten().any(|x| !x.is_finite()) {
        bail!(
            "the attention patterns are not finite: the model's weights hold NaN or Inf, or {} overflows; nothing written",
            crate::model::source::dtype_name(lm.model.dtype)
        );
    }
    let texts: Vec<String> = rows[0]
        .iter()
        .map(|&id| printable(&lm.tokenizer.token_text(id)))
        .collect();
    let mut r = Report::new();
    if let Some(planned) = json {
        let used = match choice {
            PromptChoice::One(example) => PromptsUsed::One { example },
            PromptChoice::Mean(requested) => PromptsUsed::Mean {
                requested,
                used: rows.len(),
            },
        };
        let file = AttentionFile {
            format: plot::attention::FORMAT.into(),
            format_version: plot::attention::FORMAT_VERSION,
            model: Some(ModelInfo::of(&lm)),
            data: Some(DataInfo::of(&spec, &tok)),
            run: a.run.name().into(),
            prompts: used,
            tokens: texts.clone(),
            heads: heads
                .iter()
                .zip(&patterns)
                .map(|(&head, p)| HeadPattern {
                    head,
                    pattern: p.clone(),
                })
                .collect(),
        };
        let mut json = serde_json::to_string(&file)?;
        json.push('\n');
        r.save(Output::new(planned, json.into_bytes()));
    }
    let run_name = a.run.name();
    out!(
        r,
        "{} prompts ({run_name}), {} tokens each{}; token texts are the first prompt's",
        rows.len(),
        len,
        if rows.len() < a.prompts {
            format!(" (only {} of the first length)", rows.len())
        } else {
            String::new()
        }
    );
    for (&(l, h), pat) in heads.iter().zip(&patterns) {
        if a.grid {
            out!(
                r,
                "head {l}.{h}: attention (rows: query position, columns: key position, %)"
            );
            r.push(&format!("{:>4} {:>8} ", "", ""));
            for k in 0..len {
                r.push(&format!("{k:>5}"));
            }
            out!(r);
            for (qi, row) in pat.iter().enumerate() {
                r.push(&format!("{qi:>4} {:>8} ", truncate(&texts[qi], 8)));
                for w in row {
                    r.push(&format!("{:>5.0}", 100.0 * w));
                }
                out!(r);
            }
            continue;
        }
        out!(
            r,
            "head {l}.{h}: query {q} {:?} attends to (top {}):",
            texts[q],
            a.top.min(len)
        );
        for (pos, w) in ranked_row(&pat[q]).into_iter().take(a.top) {
            out!(r, "  {pos:>4}  {:<12} {w:.4}", format!("{:?}", texts[pos]));
        }
    }
    Ok(r)
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}
