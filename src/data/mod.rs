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
