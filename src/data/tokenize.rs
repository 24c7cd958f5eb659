//! Tokenizing prompt pairs for the model, and picking the answer tokens.
//!
//! Prompts get BOS the way the model's tokenizer post-processor adds it, once
//! ([`crate::model::Tokenizer::encode`]). Answer tokens ([`AnswerTokenRule`]):
//! - `Last` (the paper, TransformerLens' `to_tokens(answer)[0][-1]`): the last id of
//!   `encode(answer)`, BOS included. For SentencePiece tokenizers that is the token of the
//!   answer as a standalone string (with its "▁" prefix where the tokenizer adds one).
//! - `First`: the first token after the prompt's tokens in `encode(prompt + answer)`; the
//!   prompt's tokens must be a prefix of those (else an error says so).
//!
//! An answer "spans several tokens" when `encode_plain(answer)` (for `Last`) or its continuation
//! tokens (for `First`) hold more than one token: the metric then reads one token of a longer
//! answer. Those examples are listed in [`Tokenized::multi_token_answers`]; this is not an error.

use std::collections::BTreeMap;

use super::{AnswerTokenRule, DataError, DataSpec, PromptPair, TokenizedPair};
use crate::model::Tokenizer;

/// Tokenized examples, ready for patching.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tokenized {
    /// In file order, skipped ones removed. Each pair's normal and contrast prompts have the
    /// same length; different examples may have different lengths.
    pub pairs: Vec<TokenizedPair>,
    /// Example indices (0-based) skipped because their normal and contrast prompts tokenize to
    /// different lengths (only with `skip_mismatched`).
    pub skipped: Vec<usize>,
    /// Example indices (0-based) whose normal or contrast answer spans more than one token.
    pub multi_token_answers: Vec<usize>,
}

impl Tokenized {
    /// Prompt length (tokens) → how many kept examples have it.
    pub fn length_counts(&self) -> BTreeMap<usize, usize> {
        let mut m = BTreeMap::new();
        for p in &self.pairs {
            *m.entry(p.len()).or_insert(0) += 1;
        }
        m
    }

    /// Example indices (0-based) whose normal and contrast answer tokens are the same token: their
    /// logit difference is 0 by construction (the paper's base-k data has many: without a carry
    /// the decimal and base-k sums agree).
    pub fn same_answer(&self) -> Vec<usize> {
        self.pairs
            .iter()
            .filter(|p| p.normal_answer == p.contrast_answer)
            .map(|p| p.index)
            .collect()
    }
}

fn tok_err(line: usize, field: &str, msg: impl Into<String>) -> DataError {
    DataError::Tokenize {
        file: String::new(),
        line,
        field: field.into(),
        msg: msg.into(),
    }
}

fn encode(tok: &Tokenizer, text: &str, line: usize, field: &str) -> Result<Vec<u32>, DataError> {
    tok.encode(text)
        .map_err(|e| tok_err(line, field, crate::model::error::one_line(&e)))
}

/// The answer token of `answer` after `prompt` (whose tokens are `prompt_ids`), and whether
/// the answer spans several tokens.
fn answer_token(
    tok: &Tokenizer,
    prompt: &str,
    prompt_ids: &[u32],
    answer: &str,
    rule: AnswerTokenRule,
    line: usize,
    field: &str,
) -> Result<(u32, bool), DataError> {
    if answer.is_empty() {
        return Err(tok_err(line, field, "the answer is empty"));
    }
    match rule {
        AnswerTokenRule::Last => {
            let plain = tok
                .encode_plain(answer)
                .map_err(|e| tok_err(line, field, crate::model::error::one_line(&e)))?;
            if plain.is_empty() {
                return Err(tok_err(
                    line,
                    field,
                    format!("the answer {answer:?} tokenizes to no token"),
                ));
            }
            let ids = encode(tok, answer, line, field)?;
            Ok((*ids.last().unwrap(), plain.len() > 1))
        }
        AnswerTokenRule::First => {
            let full = encode(tok, &format!("{prompt}{answer}"), line, field)?;
            if !full.starts_with(prompt_ids) {
                let n = prompt_ids.len();
                let at = full
                    .iter()
                    .zip(prompt_ids)
                    .position(|(a, b)| a != b)
                    .unwrap_or(n.min(full.len()));
                return Err(DataError::AnswerNotPrefix {
                    file: String::new(),
                    line,
                    field: field.into(),
                    n,
                    pos: at,
                    answer: answer.into(),
                });
            }
            let cont = &full[prompt_ids.len()..];
            match cont.first() {
                Some(&id) => Ok((id, cont.len() > 1)),
                None => Err(tok_err(
                    line,
                    field,
                    format!("the answer {answer:?} adds no token after the prompt"),
                )),
            }
        }
    }
}

/// Tokenizes prompt pairs (the i-th pair is example i, on line i + 1) and finds their answer
/// tokens.
///
/// Normal and contrast prompts of one example must tokenize to the same length: otherwise this
/// fails with an error listing every such example, or with `skip_mismatched` drops them (they
/// are listed in [`Tokenized::skipped`]; skipping all is an error). Errors made here name no
/// file; [`DataError::with_file`] adds it.
pub fn tokenize_pairs(
    tok: &Tokenizer,
    pairs: &[PromptPair],
    rule: AnswerTokenRule,
    skip_mismatched: bool,
) -> Result<Tokenized, DataError> {
    let mut encoded = Vec::with_capacity(pairs.len());
    let mut mismatched: Vec<(usize, usize, usize)> = Vec::new();
    for (i, p) in pairs.iter().enumerate() {
        let n = encode(tok, &p.normal_input, i + 1, "normal_input")?;
        let c = encode(tok, &p.contrast_input, i + 1, "contrast_input")?;
        if n.len() != c.len() {
            mismatched.push((i, n.len(), c.len()));
        }
        encoded.push((n, c));
    }
    if !mismatched.is_empty() && !skip_mismatched {
        let shown: Vec<String> = mismatched
            .iter()
            .take(3)
            .map(|(i, n, c)| format!("line {}: {n} vs {c} tokens", i + 1))
            .collect();
        let more = if mismatched.len() > 3 { ", ..." } else { "" };
        return Err(DataError::LengthMismatch {
            file: String::new(),
            lines: mismatched.iter().map(|m| m.0 + 1).collect(),
            detail: format!("{}{more}", shown.join(", ")),
        });
    }
    if !pairs.is_empty() && mismatched.len() == pairs.len() {
        return Err(DataError::AllSkipped {
            file: String::new(),
            skipped: mismatched.len(),
        });
    }
    let skipped: Vec<usize> = mismatched.iter().map(|m| m.0).collect();
    let mut out = Tokenized {
        pairs: Vec::with_capacity(pairs.len() - skipped.len()),
        skipped,
        multi_token_answers: Vec::new(),
    };
    for (i, (p, (n, c))) in pairs.iter().zip(encoded).enumerate() {
        if out.skipped.binary_search(&i).is_ok() {
            continue;
        }
        let line = i + 1;
        let (na, n_multi) = answer_token(
            tok,
            &p.normal_input,
            &n,
            &p.normal_output,
            rule,
            line,
            "normal_output",
        )?;
        let (ca, c_multi) = answer_token(
            tok,
            &p.contrast_input,
            &c,
            &p.contrast_output,
            rule,
            line,
            "contrast_output",
        )?;
        if n_multi || c_multi {
            out.multi_token_answers.push(i);
        }
        out.pairs.push(TokenizedPair {
            index: i,
            normal_ids: n,
            contrast_ids: c,
            normal_answer: na,
            contrast_answer: ca,
            normal_output: p.normal_output.clone(),
            contrast_output: p.contrast_output.clone(),
            positions: None,
        });
    }
    Ok(out)
}

/// [`super::load_pairs`] then [`tokenize_pairs`] with the spec's answer rule and skipping, errors
/// naming the file.
pub fn load_and_tokenize(spec: &DataSpec, tok: &Tokenizer) -> Result<Tokenized, DataError> {
    let pairs = super::load_pairs(spec)?;
    tokenize_pairs(tok, &pairs, spec.answer_token, spec.skip_mismatched)
        .map_err(|e| e.with_file(&spec.file))
}
