//! Position sets of circuit groups: which token positions of a prompt keep a group's heads
//! live. The paper keeps its function-induction and consolidation heads at every `=` and its
//! previous-token heads at each demonstration's answer (`ALGORITHMS.md` §4.1).

use std::fmt;

use super::{invalid, AnalysisError};
use crate::data::{TokenRoles, TokenizedPair};
use crate::model::Tokenizer;

/// Where a group's heads stay live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PositionSet {
    /// Every position.
    All,
    /// The last position (the one the metric reads).
    Last,
    /// Every position whose token is `id` (the text `text`, one token).
    Token { text: String, id: u32 },
    /// Each demonstration's answer token(s) (the paper's `c`).
    Answers,
}

impl PositionSet {
    /// Parses `all`, `last`, `tok:TEXT` or `answers` (with or without the leading `@`);
    /// `tok:TEXT` must be one token of `tok`.
    pub fn parse(s: &str, tok: &Tokenizer) -> Result<Self, AnalysisError> {
        let s = s.strip_prefix('@').unwrap_or(s);
        match s {
            "all" => return Ok(PositionSet::All),
            "last" => return Ok(PositionSet::Last),
            "answers" => return Ok(PositionSet::Answers),
            _ => {}
        }
        let Some(text) = s.strip_prefix("tok:") else {
            return Err(invalid(format!(
                "position set @{s}: expected @all, @last, @tok:TEXT or @answers"
            )));
        };
        let text = unescape(text);
        let ids = tok.encode_plain(&text)?;
        match ids.as_slice() {
            [id] => Ok(PositionSet::Token { text, id: *id }),
            _ => Err(invalid(format!(
                "position set @tok:{}: the text is {} tokens, expected exactly one",
                escape(&text),
                ids.len()
            ))),
        }
    }

    /// Positions of this set in one example (token positions of its contrast prompt).
    pub fn resolve(
        &self,
        pair: &TokenizedPair,
        roles: Option<&TokenRoles>,
    ) -> Result<Vec<usize>, AnalysisError> {
        let ids = &pair.contrast_ids;
        Ok(match self {
            PositionSet::All => (0..ids.len()).collect(),
            PositionSet::Last => vec![ids.len() - 1],
            PositionSet::Token { id, .. } => (0..ids.len()).filter(|&p| ids[p] == *id).collect(),
            PositionSet::Answers => {
                roles.and_then(|r| r.demo_answers.clone()).ok_or_else(|| {
                    invalid(format!(
                        "@answers: example {} has no known demonstration answers (only the \
                         paper's tasks built by headhunt have them, and the answers must be \
                         whole tokens)",
                        pair.index + 1
                    ))
                })?
            }
        })
    }
}

/// `\n` and `\t` written as escapes on the command line.
fn unescape(s: &str) -> String {
    s.replace("\\n", "\n").replace("\\t", "\t")
}

fn escape(s: &str) -> String {
    s.replace('\n', "\\n").replace('\t', "\\t")
}

impl fmt::Display for PositionSet {
    /// The label used in result files: `all`, `last`, `tok:=`, `answers`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PositionSet::All => f.write_str("all"),
            PositionSet::Last => f.write_str("last"),
            PositionSet::Token { text, .. } => write!(f, "tok:{}", escape(text)),
            PositionSet::Answers => f.write_str("answers"),
        }
    }
}
