//! Position sets: which token positions of an example's contrast prompt something applies to.
//! Path patching restricts senders and receivers to them (`--sender-positions`,
//! `--receiver 39.7.q@last`); circuit evaluation keeps a group's heads live at them. The one
//! parser and resolver for both, here below `patching` and `analysis`.
//!
//! `all | last | pos:I[,J...]` (negative counts from the end) `| tok:TEXT | role:NAME[,NAME...]`;
//! `answers` is `role:answers`. Roles come from the data (see [`super::roles`]): the paper's
//! tasks define `answers` (each demonstration's answer tokens) and `=`; prompt-pair lines may
//! carry their own (`"roles"` as token spans, `"role_chars"` as character spans).

use std::fmt;

use super::{DataError, PairPositions, TokenRoles, TokenizedPair};
use crate::model::Tokenizer;

/// A set of token positions of a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PositionSet {
    /// Every position.
    All,
    /// The last position (the one the metric reads).
    Last,
    /// Given positions; negative ones count from the end (-1 is the last).
    Pos(Vec<i64>),
    /// Every position whose token is `id` (the text `text`, one token).
    Token { text: String, id: u32 },
    /// Each demonstration's answer token(s) (the paper's `c`): `role:answers`.
    Answers,
    /// The positions of named roles of the data (their union).
    Roles(Vec<String>),
}

fn invalid(msg: String) -> DataError {
    DataError::Invalid(msg)
}

impl PositionSet {
    /// The accepted forms, for messages.
    pub const SYNTAX: &'static str =
        "all, last, pos:I[,J...], tok:TEXT, answers or role:NAME[,NAME...]";

    /// Parses a set (with or without a leading `@`); `tok:TEXT` must be one token of `tok`.
    pub fn parse(s: &str, tok: &Tokenizer) -> Result<Self, DataError> {
        let s = s.strip_prefix('@').unwrap_or(s);
        let syntax = |why: &str| {
            invalid(format!(
                "position set @{s}: {why} (expected {})",
                Self::SYNTAX
            ))
        };
        match s {
            "all" => return Ok(PositionSet::All),
            "last" => return Ok(PositionSet::Last),
            "answers" | "role:answers" => return Ok(PositionSet::Answers),
            _ => {}
        }
        if let Some(list) = s.strip_prefix("pos:") {
            let pos = list
                .split(',')
                .map(|p| p.trim().parse::<i64>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| syntax("a position is not a whole number"))?;
            return Ok(PositionSet::Pos(pos));
        }
        if let Some(list) = s.strip_prefix("role:") {
            let names: Vec<String> = list.split(',').map(|n| n.trim().to_string()).collect();
            if names.iter().any(|n| n.is_empty()) {
                return Err(syntax("empty role name"));
            }
            return Ok(PositionSet::Roles(names));
        }
        let Some(text) = s.strip_prefix("tok:") else {
            return Err(syntax("unknown set"));
        };
        let text = unescape(text);
        let ids = tok
            .encode_plain(&text)
            .map_err(|e| invalid(format!("position set @{s}: {e}")))?;
        match ids.as_slice() {
            [id] => Ok(PositionSet::Token { text, id: *id }),
            _ => Err(invalid(format!(
                "position set @tok:{}: the text is {} tokens, expected exactly one",
                escape(&text),
                ids.len()
            ))),
        }
    }

    /// Positions of this set in one example (token positions of its contrast prompt), sorted.
    pub fn resolve(
        &self,
        pair: &TokenizedPair,
        roles: Option<&TokenRoles>,
    ) -> Result<Vec<usize>, DataError> {
        let ids = &pair.contrast_ids;
        let n = ids.len();
        let mut out: Vec<usize> = match self {
            PositionSet::All => (0..n).collect(),
            PositionSet::Last => vec![n - 1],
            PositionSet::Pos(list) => list
                .iter()
                .map(|&p| {
                    let q = if p < 0 { n as i64 + p } else { p };
                    usize::try_from(q).ok().filter(|&q| q < n).ok_or_else(|| {
                        invalid(format!(
                            "position set @{self}: position {p} is outside example {}'s {n} \
                             tokens",
                            pair.index + 1
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
            PositionSet::Token { id, .. } => (0..n).filter(|&p| ids[p] == *id).collect(),
            PositionSet::Answers => answers(pair, roles)?,
            PositionSet::Roles(names) => {
                let mut all = Vec::new();
                for name in names {
                    all.extend(role(pair, roles, name)?);
                }
                all
            }
        };
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

/// Each demonstration's answer tokens of an example, or why there are none.
fn answers(pair: &TokenizedPair, roles: Option<&TokenRoles>) -> Result<Vec<usize>, DataError> {
    if let Some(v) = roles.and_then(|r| r.named.get("answers")) {
        return Ok(v.clone());
    }
    roles.and_then(|r| r.demo_answers.clone()).ok_or_else(|| {
        invalid(format!(
            "@answers: example {} has no known demonstration answers (the paper's tasks \
             define them when each answer is whole tokens; a prompt-pair line can give them \
             as \"roles\": {{\"answers\": [start, end]}})",
            pair.index + 1
        ))
    })
}

/// The positions of role `name` in an example: the data's own roles, then the paper's
/// `answers` and `=`.
fn role(
    pair: &TokenizedPair,
    roles: Option<&TokenRoles>,
    name: &str,
) -> Result<Vec<usize>, DataError> {
    if let Some(v) = roles.and_then(|r| r.named.get(name)) {
        return Ok(v.clone());
    }
    match name {
        "answers" => answers(pair, roles),
        "=" => roles.and_then(|r| r.equals.clone()).ok_or_else(|| {
            invalid(format!(
                "@role:=: example {} has no `=` role (the paper's tasks define it)",
                pair.index + 1
            ))
        }),
        _ => {
            let known: Vec<&str> = roles
                .map(|r| r.named.keys().map(|k| k.as_str()).collect())
                .unwrap_or_default();
            Err(invalid(format!(
                "@role:{name}: example {} has no role {name:?} (its roles: {})",
                pair.index + 1,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )))
        }
    }
}

/// The pairs with their position sets resolved ([`TokenizedPair::positions`]): `sender` for
/// the senders, `receiver` one (or none: everywhere) per receiver part. `roles` are aligned
/// with `pairs` (may be empty when no set needs them).
pub fn with_positions(
    pairs: &[TokenizedPair],
    roles: &[TokenRoles],
    sender: Option<&PositionSet>,
    receiver: &[Option<PositionSet>],
) -> Result<Vec<TokenizedPair>, DataError> {
    pairs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let r = roles.get(i);
            let resolve = |s: Option<&PositionSet>| s.map(|s| s.resolve(p, r)).transpose();
            let positions = PairPositions {
                sender: resolve(sender)?,
                receiver: receiver
                    .iter()
                    .map(|s| resolve(s.as_ref()))
                    .collect::<Result<_, _>>()?,
            };
            let mut p = p.clone();
            p.positions = Some(positions);
            Ok(p)
        })
        .collect()
}

/// `\n` and `\t` written as escapes on the command line.
fn unescape(s: &str) -> String {
    s.replace("\\n", "\n").replace("\\t", "\t")
}

fn escape(s: &str) -> String {
    s.replace('\n', "\\n").replace('\t', "\\t")
}

impl fmt::Display for PositionSet {
    /// The label used in result files: `all`, `last`, `pos:-2`, `tok:=`, `answers`, `role:S1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PositionSet::All => f.write_str("all"),
            PositionSet::Last => f.write_str("last"),
            PositionSet::Pos(p) => {
                let p: Vec<String> = p.iter().map(|x| x.to_string()).collect();
                write!(f, "pos:{}", p.join(","))
            }
            PositionSet::Token { text, .. } => write!(f, "tok:{}", escape(text)),
            PositionSet::Answers => f.write_str("answers"),
            PositionSet::Roles(n) => write!(f, "role:{}", n.join(",")),
        }
    }
}
