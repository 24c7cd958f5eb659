//! Inputs checked against the loaded model before any compute: a meaningless input (a prompt
//! longer than the model's positions, token ids of another model's tokenizer, answers the
//! metric cannot tell apart) would otherwise run for hours and give exit 0.

use anyhow::{bail, Result};
use std::io::Write;
use std::path::Path;

use crate::data::Tokenized;
use crate::model::LoadedModel;

/// Texts tokenizers use for "unknown token".
const UNK_TEXTS: [&str; 3] = ["<unk>", "[UNK]", "<|unk|>"];

fn warn(msg: &str) {
    let _ = writeln!(std::io::stderr(), "warning: {msg}");
}

/// No token of a real vocabulary holds more than this many bytes, so a text of more than
/// `max_position_embeddings` times it cannot fit: refused before tokenizing, which for tens of
/// megabytes would take minutes and gigabytes and then abort.
const MAX_TOKEN_BYTES: usize = 1024;

/// A prompt text short enough to be worth tokenizing (see `MAX_TOKEN_BYTES`).
pub fn check_text_len(lm: &LoadedModel, text: &str, what: &str) -> Result<()> {
    let max = lm.model.cfg.max_positions();
    if text.len() > max.saturating_mul(MAX_TOKEN_BYTES) {
        bail!(
            "{what}: the prompt is {} bytes long, far more than the {max} positions of model {} can hold (max_position_embeddings)",
            text.len(),
            lm.origin.label()
        );
    }
    Ok(())
}

/// The examples of `spec`, tokenized, after checking their sizes against the model.
pub fn load_checked(lm: &LoadedModel, spec: &crate::data::DataSpec) -> Result<Tokenized> {
    let pairs = crate::data::load_pairs(spec)?;
    for (i, p) in pairs.iter().enumerate() {
        let what = format!("--data {}:{}", spec.file.display(), i + 1);
        check_text_len(lm, &p.normal_input, &what)?;
        check_text_len(lm, &p.contrast_input, &what)?;
    }
    let tok = crate::data::tokenize_pairs(
        &lm.tokenizer,
        &pairs,
        spec.answer_token,
        spec.skip_mismatched,
    )
    .map_err(|e| e.with_file(&spec.file))?;
    check_tokenized(lm, &tok, &spec.file)?;
    Ok(tok)
}

/// A prompt of `ids` fits the model: its positions and its vocabulary.
pub fn check_prompt(lm: &LoadedModel, ids: &[u32], what: &str) -> Result<()> {
    match lm.prompt_misfit(ids) {
        Some(why) => bail!("{what}: {why}"),
        None => Ok(()),
    }
}

/// Every tokenized example fits the model (an error otherwise); answers that cannot be told
/// apart or read `<unk>` get a warning.
pub fn check_tokenized(lm: &LoadedModel, tok: &Tokenized, file: &Path) -> Result<()> {
    for p in &tok.pairs {
        let what = format!("--data {}:{}", file.display(), p.index + 1);
        check_prompt(lm, &p.normal_ids, &what)?;
        check_prompt(lm, &p.contrast_ids, &what)?;
        check_prompt(lm, &[p.normal_answer, p.contrast_answer], &what)?;
    }
    let same: Vec<usize> = tok
        .pairs
        .iter()
        .filter(|p| p.normal_answer == p.contrast_answer)
        .map(|p| p.index + 1)
        .collect();
    if !same.is_empty() {
        let msg = format!(
            "--data {}: {} of {} examples (first on line {}) have normal and contrast answers whose read token is the same ({:?}), so their logit difference is always 0",
            file.display(),
            same.len(),
            tok.pairs.len(),
            same[0],
            lm.tokenizer.token_text(
                tok.pairs
                    .iter()
                    .find(|p| p.index + 1 == same[0])
                    .map_or(0, |p| p.normal_answer)
            )
        );
        // A warning, not an error: the sweep still measures raw effects (patched LD).
        warn(&format!(
            "{msg}; r is undefined for them (try --answer-token first)"
        ));
    }
    let unk = tok.pairs.iter().find(|p| {
        [p.normal_answer, p.contrast_answer]
            .iter()
            .any(|&id| UNK_TEXTS.contains(&lm.tokenizer.token_text(id).as_str()))
    });
    if let Some(p) = unk {
        warn(&format!(
            "--data {}:{}: an answer tokenizes to the unknown token (tokenizer {}): the metric reads <unk>, not the answer",
            file.display(),
            p.index + 1,
            lm.tokenizer.path
        ));
    }
    Ok(())
}
