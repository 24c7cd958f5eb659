//! Token roles of tokenized examples: which positions hold each demonstration's answer (the
//! paper's `c`, for circuit position sets such as `@answers`) and which tokens continue each
//! prompt with its answer (for teacher-forced accuracy of multi-token answers).
//!
//! Positions come from the prompt text the builder made ([`super::prompts::demo_answer_spans`])
//! mapped to tokens by tokenizing prefixes: a prefix ending where a demonstration's answer starts
//! or ends must tokenize to a prefix of the whole prompt's tokens, else that role is unknown
//! (`None`) rather than guessed.

use super::prompts::demo_answer_spans;
use super::{DataError, DataSpec, PromptPair, Tokenized};
use crate::model::Tokenizer;

/// The roles of one tokenized example (aligned with [`Tokenized::pairs`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct TokenRoles {
    /// Token positions of every demonstration's answer in the contrast prompt, in order (all
    /// tokens of an answer that spans several). `None`: unknown for this task or tokenizer.
    pub demo_answers: Option<Vec<usize>>,
    /// The tokens that follow the normal (contrast) prompt when its answer is appended:
    /// `encode(prompt + answer)` after the prompt's own tokens. `None` when the answer merges
    /// with the end of the prompt.
    pub normal_continuation: Option<Vec<u32>>,
    pub contrast_continuation: Option<Vec<u32>>,
}

fn encode(tok: &Tokenizer, text: &str, line: usize) -> Result<Vec<u32>, DataError> {
    tok.encode(text).map_err(|e| DataError::Tokenize {
        file: String::new(),
        line,
        field: "contrast_input".into(),
        msg: crate::model::error::one_line(&e),
    })
}

/// Tokens of `prompt + answer` after `prompt_ids`, if those are a prefix.
fn continuation(
    tok: &Tokenizer,
    prompt: &str,
    prompt_ids: &[u32],
    answer: &str,
    line: usize,
) -> Result<Option<Vec<u32>>, DataError> {
    let full = encode(tok, &format!("{prompt}{answer}"), line)?;
    Ok(
        (full.starts_with(prompt_ids) && full.len() > prompt_ids.len())
            .then(|| full[prompt_ids.len()..].to_vec()),
    )
}

/// Token positions of the demonstrations' answers in `prompt` (tokens `ids`).
fn answer_positions(
    tok: &Tokenizer,
    spec: &DataSpec,
    prompt: &str,
    ids: &[u32],
    line: usize,
) -> Result<Option<Vec<usize>>, DataError> {
    let Some(spans) = demo_answer_spans(spec.task, prompt) else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for span in spans {
        let before = encode(tok, &prompt[..span.start], line)?;
        let through = encode(tok, &prompt[..span.end], line)?;
        if !ids.starts_with(&before) || !ids.starts_with(&through) || through.len() <= before.len()
        {
            return Ok(None);
        }
        out.extend(before.len()..through.len());
    }
    Ok(Some(out))
}

/// The roles of every kept example of `tokenized` (built from `spec` with `tok`).
pub fn token_roles(
    spec: &DataSpec,
    tok: &Tokenizer,
    tokenized: &Tokenized,
) -> Result<Vec<TokenRoles>, DataError> {
    let pairs: Vec<PromptPair> = super::load_pairs(spec)?;
    let file = |e: DataError| e.with_file(&spec.file);
    tokenized
        .pairs
        .iter()
        .map(|tp| {
            let p = &pairs[tp.index];
            let line = tp.index + 1;
            Ok(TokenRoles {
                demo_answers: answer_positions(
                    tok,
                    spec,
                    &p.contrast_input,
                    &tp.contrast_ids,
                    line,
                )
                .map_err(file)?,
                normal_continuation: continuation(
                    tok,
                    &p.normal_input,
                    &tp.normal_ids,
                    &p.normal_output,
                    line,
                )
                .map_err(file)?,
                contrast_continuation: continuation(
                    tok,
                    &p.contrast_input,
                    &tp.contrast_ids,
                    &p.contrast_output,
                    line,
                )
                .map_err(file)?,
            })
        })
        .collect()
}
