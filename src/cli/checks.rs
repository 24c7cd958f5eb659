//! The command line's side of the input check (`data::checks`, which every command and the
//! explorer share): its warnings printed on stderr, its errors worded with flags.

use anyhow::{bail, Result};
use std::io::Write;

use crate::data::checks::{Checked, Words};
use crate::data::Tokenized;
use crate::model::LoadedModel;

/// How the command line asks for the answer's first token.
pub const WORDS: Words = Words {
    answer_token_first: "--answer-token first",
};

fn warn(msg: &str) {
    let _ = writeln!(std::io::stderr(), "warning: {msg}");
}

/// A prompt text short enough to be worth tokenizing.
pub fn check_text_len(lm: &LoadedModel, text: &str, what: &str) -> Result<()> {
    match crate::data::checks::text_misfit(lm, text) {
        Some(why) => bail!("{what}: {why}"),
        None => Ok(()),
    }
}

/// The examples of `spec`, tokenized and checked against the model; the warnings printed
/// (and returned, for the result file).
pub fn load_checked(lm: &LoadedModel, spec: &crate::data::DataSpec) -> Result<Checked> {
    let checked = crate::data::checks::load_checked(lm, spec, &WORDS)?;
    for w in &checked.warnings {
        warn(w);
    }
    Ok(checked)
}

/// A prompt of `ids` fits the model: its positions and its vocabulary.
pub fn check_prompt(lm: &LoadedModel, ids: &[u32], what: &str) -> Result<()> {
    match lm.prompt_misfit(ids) {
        Some(why) => bail!("{what}: {why}"),
        None => Ok(()),
    }
}

/// What the baseline check found (`patching::baseline::check`): printed before the command's
/// own output, recorded in its result file.
pub type Baseline = crate::patching::baseline::Check;

/// The baseline check of every command that scores answers (`top`: per example, the unpatched
/// normal and contrast runs' top tokens), printed with its warning.
pub fn baseline(lm: &LoadedModel, tok: &Tokenized, top: &[Option<(u32, u32)>]) -> Option<Baseline> {
    let b = crate::patching::baseline::check(&lm.tokenizer, tok, top, WORDS.answer_token_first)?;
    let _ = writeln!(
        std::io::stderr(),
        "baseline accuracy: normal {:.2}, contrast {:.2} (examples whose unpatched run's top next token is the scored answer)",
        b.accuracy.normal, b.accuracy.contrast
    );
    if let Some(w) = &b.warning {
        warn(w);
    }
    Some(b)
}

/// [`baseline`] for commands whose own work does not run the unpatched prompts: two forward
/// passes per example (last position only). Logits that are not finite (NaN weights, an
/// overflowing dtype) are an error here, before any analysis.
pub fn evaluate_baseline(lm: &LoadedModel, tok: &Tokenized, batch_size: usize) -> Result<Baseline> {
    let acc = crate::patching::accuracy::evaluate(&lm.model, &tok.pairs, batch_size.max(1))?;
    if !(acc.mean_ld_normal.is_finite() && acc.mean_ld_contrast.is_finite()) {
        bail!(
            "the model's logit differences are not finite (LD_normal {}, LD_contrast {}): its weights hold NaN or Inf, or {} overflows; nothing computed",
            acc.mean_ld_normal,
            acc.mean_ld_contrast,
            crate::model::source::dtype_name(lm.model.dtype)
        );
    }
    baseline(lm, tok, &acc.top_tokens()).ok_or_else(|| anyhow::anyhow!("no examples to evaluate"))
}
