//! How to read a dataset, as the user chose it: the file, the task (or `auto`), shots, offset,
//! base, examples and the answer-token rule. The command line and the explorer's setup form both
//! fill these in (the CLI from its flags); [`DataOptions::spec`] resolves them into a
//! [`DataSpec`].

use std::path::{Path, PathBuf};

use super::{cipher_shift, AnswerTokenRule, DataError, DataSpec, TaskKind};

/// Which task to read a file as: one of the tasks, or `auto` to detect it from the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskChoice {
    /// Prompt pairs if lines have `normal_input`; cipher if the operands are strings; base-k
    /// addition if the file name ends in `_base<B>.jsonl` (or a base is given); else addition.
    #[default]
    Auto,
    Addition,
    Base,
    Cipher,
    Pairs,
}

impl TaskChoice {
    pub const ALL: [TaskChoice; 5] = [
        TaskChoice::Auto,
        TaskChoice::Addition,
        TaskChoice::Base,
        TaskChoice::Cipher,
        TaskChoice::Pairs,
    ];

    /// The name used on the command line and in the setup form.
    pub fn name(self) -> &'static str {
        match self {
            TaskChoice::Auto => "auto",
            TaskChoice::Addition => "addition",
            TaskChoice::Base => "base",
            TaskChoice::Cipher => "cipher",
            TaskChoice::Pairs => "pairs",
        }
    }
}

/// A dataset file and how to read it.
#[derive(Debug, Clone)]
pub struct DataFile {
    pub data: PathBuf,
    pub options: DataOptions,
}

impl DataFile {
    /// The concrete spec (see [`DataOptions::spec`]).
    pub fn spec(&self) -> Result<DataSpec, DataError> {
        self.options.spec(&self.data)
    }
}

/// How to read a dataset file (everything but the file, so that users whose file is optional,
/// like the explorer, share it).
#[derive(Debug, Clone)]
pub struct DataOptions {
    pub task: TaskChoice,
    /// Demonstrations per prompt (the first N of each example; not used by pairs).
    pub shots: usize,
    /// addition: the k of off-by-k (default 1). cipher: checked against the file's shift.
    pub offset: Option<i64>,
    /// base-k addition: the base (default: from the file name).
    pub base: Option<u32>,
    /// Use the first N examples (default: all).
    pub examples: Option<usize>,
    pub answer_token: AnswerTokenRule,
    /// Skip examples whose prompts tokenize to different lengths (default: an error).
    pub skip_mismatched: bool,
}

impl Default for DataOptions {
    /// The command-line defaults.
    fn default() -> Self {
        DataOptions {
            task: TaskChoice::Auto,
            shots: 4,
            offset: None,
            base: None,
            examples: None,
            answer_token: AnswerTokenRule::Last,
            skip_mismatched: false,
        }
    }
}

impl DataOptions {
    /// The concrete spec of `file`: the task detected if `auto`, the base resolved, and the
    /// offset set as the task uses it (addition: `--offset` or 1; cipher: the file's shift,
    /// which a given `--offset` must match mod 26; base and pairs: 0).
    pub fn spec(&self, file: &Path) -> Result<DataSpec, DataError> {
        let task = match self.task {
            TaskChoice::Auto => match TaskKind::detect(file)? {
                TaskKind::Addition if self.base.is_some() => TaskKind::Base,
                t => t,
            },
            TaskChoice::Addition => TaskKind::Addition,
            TaskChoice::Base => TaskKind::Base,
            TaskChoice::Cipher => TaskKind::Cipher,
            TaskChoice::Pairs => TaskKind::Pairs,
        };
        if self.base.is_some() && task != TaskKind::Base {
            return Err(DataError::BaseNotApplicable {
                task: task.to_string(),
            });
        }
        let mut spec = DataSpec::new(file, task);
        spec.shots = self.shots;
        spec.examples = self.examples;
        spec.answer_token = self.answer_token;
        spec.skip_mismatched = self.skip_mismatched;
        spec.base = self.base;
        spec.offset = match task {
            TaskKind::Addition => self.offset.unwrap_or(1),
            TaskKind::Base => {
                spec.base = Some(spec.resolved_base()?);
                0
            }
            TaskKind::Pairs => 0,
            TaskKind::Cipher => match (cipher_shift(file)?, self.offset) {
                (Some(k), Some(o)) if (o - k).rem_euclid(26) != 0 => {
                    return Err(DataError::OffsetMismatch {
                        file: file.display().to_string(),
                        offset: o,
                        shift: k,
                    })
                }
                (Some(k), _) => k,
                (None, o) => o.unwrap_or(0),
            },
        };
        Ok(spec)
    }
}
