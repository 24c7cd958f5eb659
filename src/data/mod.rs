//! Tasks and datasets: the paper's JSONL, prompt-pair building, tokenization, answer tokens,
//! validation.
//!
//! Path patching compares a *normal* and a *contrast* prompt per example, built from the same
//! demonstrations (ordinary addition vs off-by-one addition).

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

// Placeholder until the data layer lands: the same shape as its `DataSpec`.
/// Which task a dataset file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    Addition,
    Base,
    Cipher,
    Pairs,
}

/// Everything that determines the prompt pairs of a run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DataSpec {
    pub file: std::path::PathBuf,
    pub task: TaskKind,
    pub shots: usize,
    pub offset: i64,
    pub base: Option<u32>,
    pub examples: Option<usize>,
    pub answer_token: AnswerTokenRule,
    pub skip_mismatched: bool,
}

/// Placeholder error until the data layer lands.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DataError(pub String);

/// Tokenized examples of a dataset.
#[derive(Debug, Clone, Default)]
pub struct Tokenized {
    pub pairs: Vec<TokenizedPair>,
    pub skipped: Vec<usize>,
    pub multi_token_answers: Vec<usize>,
}

/// Placeholder: paper-format addition only.
pub fn load_and_tokenize(
    spec: &DataSpec,
    tok: &crate::model::Tokenizer,
) -> Result<Tokenized, DataError> {
    let text = std::fs::read_to_string(&spec.file)
        .map_err(|e| DataError(format!("{}: {e}", spec.file.display())))?;
    let mut pairs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if spec.examples.is_some_and(|n| i >= n) {
            break;
        }
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| DataError(format!("line {}: {e}", i + 1)))?;
        let demos: Vec<(i64, i64)> = v["demonstration"]
            .as_array()
            .unwrap()
            .iter()
            .take(spec.shots)
            .map(|d| (d[0].as_i64().unwrap(), d[1].as_i64().unwrap()))
            .collect();
        let (a, b) = (
            v["inference"][0].as_i64().unwrap(),
            v["inference"][1].as_i64().unwrap(),
        );
        let prompt = |k: i64| {
            let mut lines: Vec<String> = demos
                .iter()
                .map(|(x, y)| format!("{x}+{y}={}", x + y + k))
                .collect();
            lines.push(format!("{a}+{b}="));
            lines.join("\n")
        };
        let ans = |k: i64| -> Result<u32, DataError> {
            Ok(*tok
                .encode(&(a + b + k).to_string())
                .map_err(|e| DataError(e.to_string()))?
                .last()
                .unwrap())
        };
        pairs.push(TokenizedPair {
            index: i,
            normal_ids: tok
                .encode(&prompt(0))
                .map_err(|e| DataError(e.to_string()))?,
            contrast_ids: tok
                .encode(&prompt(spec.offset))
                .map_err(|e| DataError(e.to_string()))?,
            normal_answer: ans(0)?,
            contrast_answer: ans(spec.offset)?,
        });
    }
    Ok(Tokenized {
        pairs,
        ..Default::default()
    })
}
