//! Tasks and datasets: the paper's JSONL, prompt-pair building, tokenization, answer tokens,
//! validation, and generators that rewrite the paper's files.
//!
//! Path patching compares a *normal* and a *contrast* prompt per example, built from the same
//! demonstrations (ordinary addition vs off-by-one addition).
//!
//! The pieces, in the order data flows:
//! - [`TaskKind`] and [`DataSpec`] say which file and how to read it (the CLI and the explorer
//!   build a spec from a [`DataFile`]: the user's choices, `auto` task included).
//! - [`load_pairs`] reads and validates the file and builds [`PromptPair`]s exactly like the
//!   paper's code (see [`prompts`]).
//! - [`tokenize_pairs`] tokenizes them with the model's tokenizer and picks the answer tokens
//!   ([`AnswerTokenRule`]); [`load_and_tokenize`] does both.
//! - [`generate`] writes the paper's JSONL (byte-identical to the paper's files for seed 42),
//!   using [`pyrandom`], a bit-exact port of CPython's `random`.
//!
//! What `offset` means per task:
//! - `addition`: the k of off-by-k. Contrast lines are `a+b={a+b+k}` and the contrast answer is
//!   `a+b+k`.
//! - `base`: ignored. The normal prompt reads the operands' base-k digit strings as decimal
//!   numbers and adds them in base 10, the contrast prompt adds in base k (`base`).
//! - `cipher`: ignored by prompt building: the contrast comes from the file's `[source, target]`
//!   pairs (the normal prompt copies the source). The CLI checks a given `--offset` against the
//!   file's shift and records the file's shift in the spec.
//! - `pairs`: ignored, like `shots`: the prompts are in the file.
//!
//! Example indices (`TokenizedPair::index`, `Tokenized::skipped`,
//! `Tokenized::multi_token_answers`) are 0-based; error messages name 1-based line numbers
//! (index + 1: every non-blank line of a file is one example, in order).

mod error;
pub mod generate;
mod jsonl;
mod options;
pub mod positions;
pub mod prompts;
pub mod pyrandom;
pub mod roles;
mod tokenize;

use std::path::{Path, PathBuf};

pub use error::{params_text, DataError};
pub use jsonl::{base_from_file_name, cipher_shift, count_examples};
pub use options::{DataFile, DataOptions, TaskChoice};
pub use positions::{with_positions, PositionSet};
pub use prompts::load_pairs;
pub use roles::{token_roles, TokenRoles};
pub use tokenize::{load_and_tokenize, tokenize_pairs, Tokenized};
pub mod checks;

/// One example: a normal prompt and its contrast, with their expected answers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PromptPair {
    pub normal_input: String,
    pub normal_output: String,
    pub contrast_input: String,
    pub contrast_output: String,
}

/// Which token of the answer string the metric reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnswerTokenRule {
    /// The last token of the tokenized answer string, BOS included (the paper's choice).
    #[default]
    Last,
    /// The first token of the answer as a continuation of the prompt.
    First,
}

impl AnswerTokenRule {
    pub const ALL: [AnswerTokenRule; 2] = [AnswerTokenRule::Last, AnswerTokenRule::First];

    /// The name used on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            AnswerTokenRule::Last => "last",
            AnswerTokenRule::First => "first",
        }
    }
}

/// One example, tokenized for the model. `normal_ids` and `contrast_ids` have the same length.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenizedPair {
    /// Index of the example in the dataset (0-based line of the file).
    pub index: usize,
    pub normal_ids: Vec<u32>,
    pub contrast_ids: Vec<u32>,
    /// The answer token read on the normal prompt's answer (logit[normal] - logit[contrast]).
    pub normal_answer: u32,
    pub contrast_answer: u32,
    /// The answer strings the tokens were read from (to say what is scored: `"isa"` of
    /// `"Lisa"`).
    #[serde(default)]
    pub normal_output: String,
    #[serde(default)]
    pub contrast_output: String,
    /// Where path patching patches this example (`None`: everywhere, the paper's), resolved
    /// from position sets on its contrast prompt. Carried on the pair so that every schedule
    /// and device that batches pairs patches the same positions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positions: Option<PairPositions>,
}

/// Token positions (of the contrast prompt) of one example where path patching patches.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct PairPositions {
    /// Where the senders take the normal run's value (`None`: every position); elsewhere a
    /// sender stays the contrast run's, frozen like every other head.
    pub sender: Option<Vec<usize>>,
    /// Per receiver part (`Receiver::parts`: each layer of a residual receiver, each head,
    /// the one MLP input), where pass 2 writes pass 1's value (`None`: every position).
    pub receiver: Vec<Option<Vec<usize>>>,
}

impl TokenizedPair {
    pub fn len(&self) -> usize {
        self.contrast_ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.contrast_ids.is_empty()
    }
    /// First position where the normal and contrast prompts differ (their length if never).
    pub fn first_difference(&self) -> usize {
        self.normal_ids
            .iter()
            .zip(&self.contrast_ids)
            .position(|(a, b)| a != b)
            .unwrap_or(self.len())
    }
}

/// The tasks: how a file's lines become prompt pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    /// The paper's addition files: `a+b=c` lines; the contrast adds `offset` to every answer.
    Addition,
    /// The paper's base-k addition files: decimal reading (normal) vs base-k addition
    /// (contrast) of the same digit strings.
    Base,
    /// The paper's Caesar-cipher files: ` a -> a` (normal, identity) vs ` a -> c` (contrast,
    /// the file's targets).
    Cipher,
    /// Generic prompt pairs: `normal_input`, `normal_output`, `contrast_input`,
    /// `contrast_output` per line.
    Pairs,
}

impl TaskKind {
    /// The name used on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Addition => "addition",
            TaskKind::Base => "base",
            TaskKind::Cipher => "cipher",
            TaskKind::Pairs => "pairs",
        }
    }

    /// Guesses the task from a file's first example: an object with `normal_input` is
    /// [`TaskKind::Pairs`]; demonstrations of strings are [`TaskKind::Cipher`]; a file named
    /// `..._base<B>.jsonl` is [`TaskKind::Base`]; anything else is [`TaskKind::Addition`].
    pub fn detect(path: &Path) -> Result<TaskKind, DataError> {
        jsonl::detect_task(path)
    }
}

impl std::fmt::Display for TaskKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which dataset to use and how to turn it into prompt pairs. Stored in result files.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DataSpec {
    /// The JSONL file.
    pub file: PathBuf,
    /// The task (always concrete; see [`TaskKind::detect`]).
    pub task: TaskKind,
    /// Demonstrations per prompt: the first `shots` of each example's list (paper tasks only).
    pub shots: usize,
    /// The k of off-by-k for `addition`; ignored by the other tasks (see the module docs).
    pub offset: i64,
    /// Base-k addition: the base k (2..=10). `None`: taken from a file name like
    /// `..._base7.jsonl`.
    pub base: Option<u32>,
    /// Use the first N examples (`None`: all). More than the file holds is an error.
    pub examples: Option<usize>,
    /// Which token of the answer the metric reads.
    pub answer_token: AnswerTokenRule,
    /// Skip examples whose normal and contrast prompts tokenize to different lengths instead
    /// of failing.
    pub skip_mismatched: bool,
}

impl DataSpec {
    /// A spec with the paper's defaults: 4 shots, offset +1, all examples, last answer token,
    /// no skipping.
    pub fn new(file: impl Into<PathBuf>, task: TaskKind) -> Self {
        DataSpec {
            file: file.into(),
            task,
            shots: 4,
            offset: 1,
            base: None,
            examples: None,
            answer_token: AnswerTokenRule::Last,
            skip_mismatched: false,
        }
    }

    /// The base of a base-k spec: `base`, else the one in the file name.
    pub fn resolved_base(&self) -> Result<u32, DataError> {
        let base = match self.base.or_else(|| base_from_file_name(&self.file)) {
            Some(b) => b,
            None => {
                return Err(DataError::BaseMissing {
                    file: self.file.display().to_string(),
                })
            }
        };
        if !(2..=10).contains(&base) {
            return Err(DataError::BaseRange { base });
        }
        Ok(base)
    }

    /// One line on what the contrast prompt changes, for summaries.
    pub fn contrast_note(&self) -> String {
        match self.task {
            TaskKind::Addition => format!(
                "offset {:+}: contrast answers are a+b{:+}",
                self.offset, self.offset
            ),
            TaskKind::Base => match self.resolved_base() {
                Ok(b) => format!(
                    "base {b}: normal reads the digits as decimal and adds in base 10, contrast \
                     adds in base {b}; offset not used"
                ),
                Err(_) => "base-k addition (base unknown); offset not used".into(),
            },
            TaskKind::Cipher => format!(
                "shift {:+}: normal copies the letters, contrast gives the file's targets \
                 (offset comes from the file)",
                self.offset
            ),
            TaskKind::Pairs => {
                "prompts and answers come from the file; shots and offset not used".into()
            }
        }
    }
}
