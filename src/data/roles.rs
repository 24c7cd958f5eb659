//! Token roles of tokenized examples: which positions hold each demonstration's answer (the
//! paper's `c`, for circuit position sets such as `@answers`) and which tokens continue each
//! prompt with its answer (for teacher-forced accuracy of multi-token answers).
//!
//! Positions come from the prompt text the builder made ([`super::prompts::demo_answer_spans`])
//! mapped to tokens by tokenizing prefixes: a prefix ending where a demonstration's answer starts
//! or ends must tokenize to a prefix of the whole prompt's tokens, else that role is unknown
//! (`None`) rather than guessed.

use super::prompts::demo_answer_spans;
use super::{DataError, DataSpec, PromptPair, Tokenized, TokenizedPair};
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
    /// Token positions of every `=` of the contrast prompt (the paper's tasks; `None` for
    /// other data).
    pub equals: Option<Vec<usize>>,
    /// The roles a prompt-pair line names itself (`"roles"`, `"role_chars"`): token positions
    /// of the contrast prompt by name.
    pub named: std::collections::BTreeMap<String, Vec<usize>>,
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

/// The tokens `start..end` of `ids` (the tokens of `prompt`) that the characters
/// `prompt[s..e]` make up: the prefixes ending at `s` and at `e` must tokenize to prefixes of
/// `ids`, else the span does not fall on token boundaries (`None`).
fn char_span_tokens(
    tok: &Tokenizer,
    prompt: &str,
    ids: &[u32],
    (s, e): (usize, usize),
    line: usize,
) -> Result<Option<std::ops::Range<usize>>, DataError> {
    if s >= e || e > prompt.len() || !prompt.is_char_boundary(s) || !prompt.is_char_boundary(e) {
        return Ok(None);
    }
    let before = encode(tok, &prompt[..s], line)?;
    let through = encode(tok, &prompt[..e], line)?;
    let ok = ids.starts_with(&before) && ids.starts_with(&through) && through.len() > before.len();
    Ok(ok.then_some(before.len()..through.len()))
}

/// Token positions of every `=` of a paper task's `prompt` (tokens `ids`), if each is whole
/// tokens.
fn equals_positions(
    tok: &Tokenizer,
    spec: &DataSpec,
    prompt: &str,
    ids: &[u32],
    line: usize,
) -> Result<Option<Vec<usize>>, DataError> {
    if demo_answer_spans(spec.task, prompt).is_none() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for (i, _) in prompt.match_indices('=') {
        match char_span_tokens(tok, prompt, ids, (i, i + 1), line)? {
            Some(r) => out.extend(r),
            None => return Ok(None),
        }
    }
    Ok(Some(out))
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
    // Prompt-pair lines may name roles of their own.
    let lines = match spec.task {
        super::TaskKind::Pairs => Some(super::jsonl::read_lines(&spec.file)?),
        _ => None,
    };
    tokenized
        .pairs
        .iter()
        .map(|tp| {
            let p = &pairs[tp.index];
            let line = tp.index + 1;
            Ok(TokenRoles {
                equals: equals_positions(tok, spec, &p.contrast_input, &tp.contrast_ids, line)
                    .map_err(file)?,
                named: match &lines {
                    Some(l) => named_roles(tok, &l.file, &l.lines[tp.index], p, tp, line)?,
                    None => Default::default(),
                },
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

/// The roles a prompt-pair line names: `"roles": {"IO": [start, end], ...}` as token spans of
/// the contrast prompt (end exclusive), or `"role_chars"` as character spans of its text
/// converted to tokens. A role may give both prompts' spans, `{"normal": [s, e], "contrast":
/// [s, e]}`: they must cover as many tokens (positions are the contrast prompt's).
fn named_roles(
    tok: &Tokenizer,
    file: &str,
    text: &str,
    p: &PromptPair,
    tp: &TokenizedPair,
    line: usize,
) -> Result<std::collections::BTreeMap<String, Vec<usize>>, DataError> {
    let obj = super::jsonl::parse_object(file, line, text)?;
    let mut out = std::collections::BTreeMap::new();
    for (field, chars) in [("roles", false), ("role_chars", true)] {
        let Some(v) = obj.get(field) else { continue };
        let bad = |name: &str, msg: String| DataError::BadField {
            file: file.into(),
            line,
            field: if name.is_empty() {
                field.into()
            } else {
                format!("{field}.{name}")
            },
            msg,
        };
        let roles = v
            .as_object()
            .ok_or_else(|| bad("", "expected an object of role name → [start, end]".into()))?;
        for (name, span) in roles {
            let one = |prompt: &str, ids: &[u32], v: &serde_json::Value, which: &str| {
                role_span(tok, prompt, ids, v, chars, line)?
                    .ok_or_else(|| bad(name, format!("{which} span {v} is not [start, end] with start < end on token boundaries of the {which} prompt ({} tokens, {} characters)", ids.len(), prompt.len())))
            };
            let range = match span.get("contrast") {
                Some(c) => {
                    let n = span.get("normal").ok_or_else(|| {
                        bad(
                            name,
                            "a span per prompt needs \"normal\" and \"contrast\"".into(),
                        )
                    })?;
                    let (rn, rc) = (
                        one(&p.normal_input, &tp.normal_ids, n, "normal")?,
                        one(&p.contrast_input, &tp.contrast_ids, c, "contrast")?,
                    );
                    if rn.len() != rc.len() {
                        return Err(bad(name, format!("the span covers {} token(s) in the normal prompt and {} in the contrast prompt (positions must align)", rn.len(), rc.len())));
                    }
                    rc
                }
                None => one(&p.contrast_input, &tp.contrast_ids, span, "contrast")?,
            };
            out.insert(name.clone(), range.collect());
        }
    }
    Ok(out)
}

/// One `[start, end]` span as token positions (`chars`: a character span of `prompt`).
fn role_span(
    tok: &Tokenizer,
    prompt: &str,
    ids: &[u32],
    v: &serde_json::Value,
    chars: bool,
    line: usize,
) -> Result<Option<std::ops::Range<usize>>, DataError> {
    let pair = v.as_array().and_then(|a| match a.as_slice() {
        [s, e] => Some((s.as_u64()? as usize, e.as_u64()? as usize)),
        _ => None,
    });
    let Some((s, e)) = pair else { return Ok(None) };
    if chars {
        return char_span_tokens(tok, prompt, ids, (s, e), line);
    }
    Ok((s < e && e <= ids.len()).then_some(s..e))
}
