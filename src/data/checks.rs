//! The one input check every command and the explorer make before any compute: the examples
//! of a dataset tokenized for the loaded model, refused where the model cannot run them (more
//! tokens than its positions; token ids past its vocabulary) and warned about where the metric
//! would read something meaningless (answers whose read tokens are the same, the unknown token,
//! answers of several tokens of which one is read). A meaningless input would otherwise run for
//! hours and give exit 0.

use crate::model::LoadedModel;

use super::{DataError, DataSpec, Tokenized};

/// Texts tokenizers use for "unknown token".
const UNK_TEXTS: [&str; 3] = ["<unk>", "[UNK]", "<|unk|>"];

/// No token of a real vocabulary holds more than this many bytes, so a text of more than
/// `max_positions` times it cannot fit: refused before tokenizing, which for tens of megabytes
/// would take minutes and gigabytes and then abort.
const MAX_TOKEN_BYTES: usize = 1024;

/// A dataset ready for the model, with what the caller must show the user.
#[derive(Debug, Clone)]
pub struct Checked {
    pub tok: Tokenized,
    /// One-line warnings (the caller prints them or shows them in the explorer).
    pub warnings: Vec<String>,
}

/// How the caller's user asks for the answer's first token (the command line:
/// `--answer-token first`), for the warnings that suggest it.
pub struct Words<'a> {
    pub answer_token_first: &'a str,
}

/// Why `text` cannot be a prompt of `lm` before tokenizing it (see `MAX_TOKEN_BYTES`).
pub fn text_misfit(lm: &LoadedModel, text: &str) -> Option<String> {
    let max = lm.model.cfg.max_positions();
    (text.len() > max.saturating_mul(MAX_TOKEN_BYTES)).then(|| {
        format!(
            "the prompt is {} bytes long, far more than the {max} positions of model {} can hold (max_position_embeddings)",
            text.len(),
            lm.origin.label()
        )
    })
}

/// The examples of `spec`, tokenized and checked against `lm`.
pub fn load_checked(
    lm: &LoadedModel,
    spec: &DataSpec,
    words: &Words,
) -> Result<Checked, DataError> {
    let file = spec.file.display().to_string();
    let pairs = super::load_pairs(spec)?;
    for (i, p) in pairs.iter().enumerate() {
        for text in [&p.normal_input, &p.contrast_input] {
            if let Some(why) = text_misfit(lm, text) {
                return Err(DataError::Misfit {
                    file,
                    line: i + 1,
                    why,
                });
            }
        }
    }
    let tok = super::tokenize_pairs(
        &lm.tokenizer,
        &pairs,
        spec.answer_token,
        spec.skip_mismatched,
    )
    .map_err(|e| e.with_file(&spec.file))?;
    check_tokenized(lm, &tok, &file)?;
    let warnings = warnings(lm, &tok, spec, &file, words);
    Ok(Checked { tok, warnings })
}

/// Every example's prompts and answer tokens fit the model.
fn check_tokenized(lm: &LoadedModel, tok: &Tokenized, file: &str) -> Result<(), DataError> {
    for p in &tok.pairs {
        let answers = [p.normal_answer, p.contrast_answer];
        for ids in [&p.normal_ids[..], &p.contrast_ids[..], &answers[..]] {
            if let Some(why) = lm.prompt_misfit(ids) {
                return Err(DataError::Misfit {
                    file: file.to_string(),
                    line: p.index + 1,
                    why,
                });
            }
        }
    }
    Ok(())
}

fn warnings(
    lm: &LoadedModel,
    tok: &Tokenized,
    spec: &DataSpec,
    file: &str,
    words: &Words,
) -> Vec<String> {
    let text = |id: u32| lm.tokenizer.token_text(id);
    let mut out = Vec::new();
    if !tok.skipped.is_empty() {
        out.push(format!(
            "{file}: skipped {} examples whose normal and contrast prompts tokenize to different lengths",
            tok.skipped.len()
        ));
    }
    let same: Vec<&super::TokenizedPair> = tok
        .pairs
        .iter()
        .filter(|p| p.normal_answer == p.contrast_answer)
        .collect();
    if let Some(first) = same.first() {
        out.push(format!(
            "{file}: {} of {} examples (first on line {}) have normal and contrast answers whose read token is the same ({:?}), so their logit difference is always 0; r is undefined for them (try {})",
            same.len(),
            tok.pairs.len(),
            first.index + 1,
            text(first.normal_answer),
            words.answer_token_first
        ));
    }
    let unk = tok.pairs.iter().find(|p| {
        [p.normal_answer, p.contrast_answer]
            .iter()
            .any(|&id| UNK_TEXTS.contains(&text(id).as_str()))
    });
    if let Some(p) = unk {
        out.push(format!(
            "{file}:{}: an answer tokenizes to the unknown token (tokenizer {}): the metric reads <unk>, not the answer",
            p.index + 1,
            lm.tokenizer.path
        ));
    }
    if let Some(&i) = tok.multi_token_answers.first() {
        let p = tok.pairs.iter().find(|p| p.index == i);
        let example = p.map_or(String::new(), |p| {
            format!(
                " (line {}: {:?} is scored as {:?})",
                i + 1,
                p.normal_output,
                text(p.normal_answer)
            )
        });
        out.push(format!(
            "{file}: {} of {} examples have answers of several tokens; the metric reads the {} token of each{example}",
            tok.multi_token_answers.len(),
            tok.pairs.len(),
            spec.answer_token.name()
        ));
    }
    out
}
