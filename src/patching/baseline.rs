//! Does the unpatched model predict what is scored? Every command that scores answers (patch,
//! circuit, ablate, fv, eval, the explorer) records the baseline accuracy, the fraction of
//! examples whose normal (contrast) run's top next token is the scored normal (contrast)
//! answer token, and warns when it is low: a metric read off tokens the model never predicts
//! (`"isa"` of an answer `"Lisa"` written without its leading space, `"Ann"` of `" Mary Ann"`)
//! gives a convincing heatmap of nothing.

use std::collections::HashMap;

use crate::data::{Tokenized, TokenizedPair};
use crate::model::tokenizer::printable;
use crate::model::Tokenizer;

/// Below this on either side, the warning is given.
pub const LOW: f64 = 0.5;

/// The fraction of examples whose unpatched normal (contrast) run predicts the scored normal
/// (contrast) answer token as its most likely next token.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BaselineAccuracy {
    pub normal: f64,
    pub contrast: f64,
}

impl BaselineAccuracy {
    /// From each example's top tokens (normal run, contrast run), `None` for examples not run.
    pub fn of(pairs: &[TokenizedPair], top: &[Option<(u32, u32)>]) -> Option<Self> {
        let seen: Vec<(&TokenizedPair, (u32, u32))> = pairs
            .iter()
            .zip(top)
            .filter_map(|(p, t)| t.map(|t| (p, t)))
            .collect();
        if seen.is_empty() {
            return None;
        }
        let n = seen.len() as f64;
        let hits = |f: &dyn Fn(&TokenizedPair, (u32, u32)) -> bool| {
            seen.iter().filter(|(p, t)| f(p, *t)).count() as f64 / n
        };
        Some(BaselineAccuracy {
            normal: hits(&|p, t| t.0 == p.normal_answer),
            contrast: hits(&|p, t| t.1 == p.contrast_answer),
        })
    }

    /// From counts of `n` examples (the explorer's and `eval`'s evaluation).
    pub fn from_counts(n: usize, normal_ok: usize, contrast_ok: usize) -> Self {
        let n = n.max(1) as f64;
        BaselineAccuracy {
            normal: normal_ok as f64 / n,
            contrast: contrast_ok as f64 / n,
        }
    }

    pub fn is_low(&self) -> bool {
        self.normal < LOW || self.contrast < LOW
    }
}

/// What the warning says: the scored token of the weaker side as text, the answer it was read
/// from, and what the model predicts there most often instead.
#[derive(Debug, Clone, PartialEq)]
pub struct LowAccuracy {
    pub accuracy: BaselineAccuracy,
    /// "normal" or "contrast": the side with the lower accuracy.
    pub side: &'static str,
    pub scored: String,
    pub answer: String,
    pub predicted: String,
    /// The answers span several tokens and one of them is scored.
    pub multi_token: bool,
}

impl LowAccuracy {
    /// The warning on one line; `answer_token_fix` says how to score the answer's first token
    /// instead (the command line: `--answer-token first`; the explorer: its setup field).
    pub fn message(&self, answer_token_fix: &str) -> String {
        let mut fixes = Vec::new();
        if !self.answer.starts_with([' ', '\n', '\t']) && self.predicted.starts_with(' ') {
            fixes.push(format!(
                "a leading space in the answers (\" {}\")",
                self.answer
            ));
        }
        if self.multi_token {
            fixes.push(answer_token_fix.to_string());
        }
        if fixes.is_empty() {
            fixes.push(format!(
                "answers the model predicts, or {answer_token_fix} for answers of several tokens"
            ));
        }
        format!(
            "the model rarely predicts the scored answers (baseline accuracy: normal {:.2}, contrast {:.2}): on {} prompts it scores {:?} (from the answer {:?}) and predicts {:?} most often instead; likely fix: {}",
            self.accuracy.normal,
            self.accuracy.contrast,
            self.side,
            self.scored,
            self.answer,
            self.predicted,
            fixes.join(", or ")
        )
    }
}

/// The baseline check every command that scores answers makes, and what it found.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub accuracy: BaselineAccuracy,
    /// The low-accuracy warning (`None` when the model predicts the answers).
    pub warning: Option<String>,
}

/// The accuracy of the unpatched runs' `top` tokens on `tok`, and when it is low the warning,
/// worded with `answer_token_fix` (see [`LowAccuracy::message`]). `None` when no example ran.
pub fn check(
    tokenizer: &Tokenizer,
    tok: &Tokenized,
    top: &[Option<(u32, u32)>],
    answer_token_fix: &str,
) -> Option<Check> {
    let accuracy = BaselineAccuracy::of(&tok.pairs, top)?;
    let multi = !tok.multi_token_answers.is_empty();
    let warning =
        low_accuracy(tokenizer, &tok.pairs, top, multi).map(|l| l.message(answer_token_fix));
    Some(Check { accuracy, warning })
}

/// The warning's facts when the accuracy is low (see [`BaselineAccuracy::is_low`]).
/// `multi_token`: some answers span several tokens (`Tokenized::multi_token_answers`).
pub fn low_accuracy(
    tokenizer: &Tokenizer,
    pairs: &[TokenizedPair],
    top: &[Option<(u32, u32)>],
    multi_token: bool,
) -> Option<LowAccuracy> {
    let accuracy = BaselineAccuracy::of(pairs, top)?;
    if !accuracy.is_low() {
        return None;
    }
    let normal_side = accuracy.normal <= accuracy.contrast;
    // The examples of that side the model gets wrong: their most common scored token and
    // answer, and their most common prediction.
    let misses: Vec<(u32, &str, u32)> = pairs
        .iter()
        .zip(top)
        .filter_map(|(p, t)| {
            let t = (*t)?;
            let (want, answer, got) = if normal_side {
                (p.normal_answer, p.normal_output.as_str(), t.0)
            } else {
                (p.contrast_answer, p.contrast_output.as_str(), t.1)
            };
            (got != want).then_some((want, answer, got))
        })
        .collect();
    let (scored, answer) = most_common(misses.iter().map(|m| (m.0, m.1)))?;
    let predicted = most_common(misses.iter().map(|m| m.2))?;
    Some(LowAccuracy {
        accuracy,
        side: if normal_side { "normal" } else { "contrast" },
        scored: printable_token(tokenizer, scored),
        answer: answer.to_string(),
        predicted: printable_token(tokenizer, predicted),
        multi_token,
    })
}

/// A token's text with control characters shown (a newline as `\n` in the quoted form).
fn printable_token(tokenizer: &Tokenizer, id: u32) -> String {
    let t = tokenizer.token_text(id);
    if t.chars().any(char::is_control) {
        printable(&t)
    } else {
        t
    }
}

/// The most frequent item (the first seen among equals).
fn most_common<T: Eq + std::hash::Hash + Copy>(items: impl Iterator<Item = T>) -> Option<T> {
    let mut counts: HashMap<T, (usize, usize)> = HashMap::new();
    for (i, x) in items.enumerate() {
        counts.entry(x).or_insert((0, i)).0 += 1;
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1 .0.cmp(&b.1 .0).then(b.1 .1.cmp(&a.1 .1)))
        .map(|(x, _)| x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(n: u32, c: u32) -> TokenizedPair {
        TokenizedPair {
            index: 0,
            normal_ids: vec![1],
            contrast_ids: vec![1],
            normal_answer: n,
            contrast_answer: c,
            normal_output: "Lisa".into(),
            contrast_output: "Mary".into(),
            positions: None,
        }
    }

    #[test]
    fn accuracy_counts_each_side_and_skips_examples_not_run() {
        let pairs = vec![pair(5, 6), pair(5, 6), pair(5, 6), pair(5, 6)];
        let top = vec![Some((5, 6)), Some((5, 5)), Some((7, 6)), None];
        let a = BaselineAccuracy::of(&pairs, &top).unwrap();
        assert_eq!((a.normal, a.contrast), (2.0 / 3.0, 2.0 / 3.0));
        assert!(!a.is_low());
        assert!(BaselineAccuracy::of(&pairs, &[None; 4]).is_none());
    }

    #[test]
    fn most_common_prefers_the_first_seen_of_equals() {
        assert_eq!(most_common([3, 1, 1, 3, 2].into_iter()), Some(3));
        assert_eq!(most_common([2, 1, 1].into_iter()), Some(1));
        assert_eq!(most_common(std::iter::empty::<u8>()), None);
    }
}
