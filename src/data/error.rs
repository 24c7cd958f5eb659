//! Errors of the data layer. Every message is one line and says where the problem is: the file,
//! the line (1-based, as an editor shows it) and the field, as `FILE:LINE: field `F`: ...`.

use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    /// An example the loaded model cannot run: more tokens than its positions, token ids past
    /// its vocabulary.
    #[error("{}: {why}", at(.file, *.line))]
    Misfit {
        file: String,
        line: usize,
        why: String,
    },

    /// The file cannot be read (missing, unreadable, not UTF-8 ...).
    #[error("{file}: {msg}")]
    Io { file: String, msg: String },

    /// The file holds no example (empty or only blank lines).
    #[error("{file}: the file is empty (expected one JSON example per line)")]
    Empty { file: String },

    /// A line is not valid JSON, or not a JSON object.
    #[error("{}: invalid JSON: {msg}", at(.file, *.line))]
    Json {
        file: String,
        line: usize,
        msg: String,
    },

    /// A required field is absent.
    #[error("{}: field `{field}` is missing{hint}", at(.file, *.line))]
    MissingField {
        file: String,
        line: usize,
        field: String,
        /// Extra words, such as what the task expects (may be empty).
        hint: String,
    },

    /// A field has the wrong type or value (a non-integer operand, a number where a string is
    /// expected ...). `field` is a path such as `demonstration[3][1]`.
    #[error("{}: field `{field}`: {msg}", at(.file, *.line))]
    BadField {
        file: String,
        line: usize,
        field: String,
        msg: String,
    },

    /// An example has fewer demonstrations than the shots asked for.
    #[error(
        "{}: field `demonstration` has {have} demonstration(s), fewer than shots {shots}",
        at(.file, *.line)
    )]
    TooFewDemos {
        file: String,
        line: usize,
        have: usize,
        shots: usize,
    },

    /// The examples asked for are more than the file holds.
    #[error("{file}: examples {requested} is more than the {available} example(s) in the file")]
    TooManyExamples {
        file: String,
        requested: usize,
        available: usize,
    },

    /// Normal and contrast prompts of some examples tokenize to different lengths.
    /// `lines` are the examples' 1-based line numbers; `detail` shows the first few lengths.
    #[error(
        "{}normal and contrast prompts tokenize to different lengths in {} example(s), line(s) {}; \
         {detail}; path patching needs equal lengths (skip mismatched examples to go on without them)",
        prefix(.file),
        .lines.len(),
        list(.lines)
    )]
    LengthMismatch {
        file: String,
        lines: Vec<usize>,
        detail: String,
    },

    /// Skipping mismatched examples left nothing.
    #[error(
        "{}every example's normal and contrast prompts tokenize to different lengths \
         ({skipped} skipped); nothing is left to patch",
        prefix(.file)
    )]
    AllSkipped { file: String, skipped: usize },

    /// Tokenizing an example failed, or its answer token cannot be found.
    #[error("{}: field `{field}`: {msg}", at(.file, *.line))]
    Tokenize {
        file: String,
        line: usize,
        field: String,
        msg: String,
    },

    /// Zero examples asked for.
    #[error("examples 0: use at least one example")]
    NoExamples,

    /// A base given for a task other than base-k addition.
    #[error("base applies to base-k addition only (the task is {task})")]
    BaseNotApplicable { task: String },

    /// A base-k file whose base is neither given nor in its name.
    #[error(
        "{file}: base-k addition needs a base B (the file name does not end in `_base<B>.jsonl`)"
    )]
    BaseMissing { file: String },

    /// A base outside 2..=10.
    #[error("base {base}: the base must be between 2 and 10")]
    BaseRange { base: u32 },

    /// A cipher offset that contradicts the file's shift.
    #[error(
        "{file}: offset {offset} does not match the file's Caesar shift {shift:+} (cipher \
         prompts take the contrast from the file's targets)"
    )]
    OffsetMismatch {
        file: String,
        offset: i64,
        shift: i64,
    },

    /// The answer-token-first rule, where the answer merges with the end of the prompt.
    #[error(
        "{}: field `{field}`: answer token first: the prompt's {n} tokens are not a prefix of \
         prompt+answer's tokens (they differ at position {pos}: the answer {answer:?} merges with \
         the end of the prompt); use answer token last",
        at(.file, *.line)
    )]
    AnswerNotPrefix {
        file: String,
        line: usize,
        field: String,
        n: usize,
        pos: usize,
        answer: String,
    },

    /// A bad parameter (task, base, shots, generator settings ...).
    #[error("{0}")]
    Invalid(String),

    /// Generator parameters that cannot work together, named as `GenSpec`'s fields (`nmax`,
    /// `offset`, ...) so that the CLI can word them as its flags.
    #[error("{}: {why}", params_text(.params, ""))]
    GenParams {
        params: Vec<(&'static str, String)>,
        why: String,
    },
}

/// `name value` pairs joined by spaces, each name after `prefix` (`""` or `"--"`).
pub fn params_text(params: &[(&'static str, String)], prefix: &str) -> String {
    params
        .iter()
        .map(|(n, v)| format!("{prefix}{n} {v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `FILE:LINE`, or `line LINE` when the examples do not come from a file.
fn at(file: &str, line: usize) -> String {
    if file.is_empty() {
        format!("line {line}")
    } else {
        format!("{file}:{line}")
    }
}

fn prefix(file: &str) -> String {
    if file.is_empty() {
        String::new()
    } else {
        format!("{file}: ")
    }
}

/// `4, 7, 9`.
fn list(lines: &[usize]) -> String {
    lines
        .iter()
        .map(|l| l.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl DataError {
    pub(crate) fn io(path: &Path, e: impl std::fmt::Display) -> Self {
        DataError::Io {
            file: path.display().to_string(),
            msg: crate::model::error::one_line(&e),
        }
    }

    /// Names the file in errors made without one (tokenizing bare pairs).
    pub fn with_file(mut self, path: &Path) -> Self {
        let name = path.display().to_string();
        match &mut self {
            DataError::LengthMismatch { file, .. }
            | DataError::AllSkipped { file, .. }
            | DataError::Tokenize { file, .. }
            | DataError::AnswerNotPrefix { file, .. }
                if file.is_empty() =>
            {
                *file = name;
            }
            _ => {}
        }
        self
    }

    /// The 1-based line the error is about, if it is about one line.
    pub fn line(&self) -> Option<usize> {
        match self {
            DataError::Json { line, .. }
            | DataError::MissingField { line, .. }
            | DataError::BadField { line, .. }
            | DataError::TooFewDemos { line, .. }
            | DataError::Tokenize { line, .. }
            | DataError::AnswerNotPrefix { line, .. } => Some(*line),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_and_locate_the_problem() {
        let e = DataError::BadField {
            file: "a.jsonl".into(),
            line: 3,
            field: "demonstration[0][1]".into(),
            msg: "expected an integer, found 2.5".into(),
        };
        assert_eq!(
            e.to_string(),
            "a.jsonl:3: field `demonstration[0][1]`: expected an integer, found 2.5"
        );
        let e = DataError::LengthMismatch {
            file: String::new(),
            lines: vec![2, 5],
            detail: "line 2: 10 vs 11 tokens".into(),
        }
        .with_file(Path::new("x.jsonl"));
        let s = e.to_string();
        assert!(s.starts_with("x.jsonl: normal and contrast"), "{s}");
        assert!(s.contains("line(s) 2, 5"), "{s}");
        assert!(!s.contains('\n'));
        let e = DataError::Tokenize {
            file: String::new(),
            line: 4,
            field: "normal_output".into(),
            msg: "empty".into(),
        };
        assert_eq!(e.to_string(), "line 4: field `normal_output`: empty");
    }
}
