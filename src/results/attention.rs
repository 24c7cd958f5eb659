//! The attention file (`headhunt attention --json`, the explorer's `F` on the attention
//! screen): the patterns of some heads on one prompt or the mean of several.
//!
//! Schema (`format: "headhunt-attention"`, `format_version: 1`). It lives here, beside the
//! other kinds of file, so that the one reader ([`super::read::SavedFile`]) dispatches over
//! every kind; `plot` (above `results`) draws it.

use std::path::Path;

use super::{read, DataInfo, ModelInfo, ResultsError};

pub const FORMAT: &str = "headhunt-attention";
pub const FORMAT_VERSION: u32 = 1;

/// Which prompts a pattern averages.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptsUsed {
    /// The mean over the first `used` examples of the first one's length (`requested` asked).
    Mean { requested: usize, used: usize },
    /// Example `example` (0-based) alone.
    One { example: usize },
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HeadPattern {
    pub head: (usize, usize),
    /// Attention weights [query][key].
    pub pattern: Vec<Vec<f32>>,
}

/// The saved output of `headhunt attention --json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AttentionFile {
    pub format: String,
    pub format_version: u32,
    pub model: Option<ModelInfo>,
    pub data: Option<DataInfo>,
    /// `normal` or `contrast` prompts.
    pub run: String,
    pub prompts: PromptsUsed,
    /// Token texts (printable) of the first prompt used.
    pub tokens: Vec<String>,
    pub heads: Vec<HeadPattern>,
}

/// How far above 1 a weight may be read (a mean of f32 weights rounds).
const WEIGHT_SLACK: f32 = 1e-3;

impl AttentionFile {
    /// An attention file from JSON read from `path` (named in errors): format version, every
    /// field's type named by its path, then [`AttentionFile::checked`].
    pub fn from_value(value: serde_json::Value, path: &Path) -> Result<Self, ResultsError> {
        match read::format_of(&value, path)? {
            Some(FORMAT) => {}
            other => {
                return Err(ResultsError::Format {
                    path: path.display().to_string(),
                    msg: format!("field `format` is {other:?}, expected {FORMAT:?}"),
                })
            }
        }
        read::check_version(&value, path, FORMAT, FORMAT_VERSION)?;
        read::typed_data(&value, path, FORMAT)?;
        read::typed::<AttentionFile>(value, path, FORMAT)?.checked(path)
    }

    /// Loads an attention file through the one reader.
    pub fn load(path: &Path) -> Result<Self, ResultsError> {
        Self::from_value(read::read_json(path)?, path)
    }

    /// At least one token and one head, every pattern square with one row per token and
    /// weights from 0 to 1, heads inside the model when it is named.
    pub fn checked(self, path: &Path) -> Result<Self, ResultsError> {
        self.check().map_err(|msg| ResultsError::Format {
            path: path.display().to_string(),
            msg,
        })?;
        Ok(self)
    }

    fn check(&self) -> Result<(), String> {
        let n = self.tokens.len();
        if n == 0 {
            return Err("field `tokens` is empty: a pattern has at least one token".into());
        }
        if self.heads.is_empty() {
            return Err("field `heads` is empty: nothing to show".into());
        }
        if let Some(m) = &self.model {
            read::shape_not_empty((m.n_layers, m.n_heads), "model.")?;
            let heads: Vec<(usize, usize)> = self.heads.iter().map(|h| h.head).collect();
            read::heads_inside(&heads, (m.n_layers, m.n_heads), "heads")?;
        }
        if let PromptsUsed::Mean { requested, used } = self.prompts {
            if used == 0 || used > requested {
                return Err(format!(
                    "field `prompts.mean`: used {used} of {requested} requested prompts"
                ));
            }
        }
        for (i, hp) in self.heads.iter().enumerate() {
            if hp.pattern.len() != n || hp.pattern.iter().any(|r| r.len() != n) {
                return Err(format!(
                    "field `heads[{i}].pattern` is not {n}×{n} (one row and column per token)"
                ));
            }
            for (q, row) in hp.pattern.iter().enumerate() {
                if let Some((k, w)) = row
                    .iter()
                    .enumerate()
                    .find(|(_, w)| !(0.0..=1.0 + WEIGHT_SLACK).contains(*w))
                {
                    return Err(format!(
                        "field `heads[{i}].pattern[{q}][{k}]` is {w}: an attention weight is from 0 to 1"
                    ));
                }
            }
        }
        Ok(())
    }

    /// "mean over 4 contrast prompts" or "contrast prompt 3".
    pub fn prompts_label(&self) -> String {
        match self.prompts {
            PromptsUsed::Mean { used, .. } if used != 1 => {
                format!("mean over {used} {} prompts", self.run)
            }
            PromptsUsed::Mean { .. } => format!("first {} prompt", self.run),
            PromptsUsed::One { example } => format!("{} prompt {example}", self.run),
        }
    }

    /// The patterns of `heads` (all when empty), in that order; a head not in the file is an
    /// error naming the heads it has.
    pub fn select(&self, heads: &[(usize, usize)]) -> Result<Vec<&HeadPattern>, String> {
        if heads.is_empty() {
            return Ok(self.heads.iter().collect());
        }
        heads
            .iter()
            .map(|&(l, h)| {
                self.heads.iter().find(|p| p.head == (l, h)).ok_or_else(|| {
                    let have: Vec<String> = self
                        .heads
                        .iter()
                        .map(|p| format!("{}.{}", p.head.0, p.head.1))
                        .collect();
                    format!(
                        "head {l}.{h} is not in the file (it has {})",
                        have.join(", ")
                    )
                })
            })
            .collect()
    }

    /// What `headhunt show` prints: model, data, prompts, tokens, heads and shape.
    pub fn summary(&self) -> String {
        let model = self.model.as_ref().map_or_else(
            || "unknown model".to_string(),
            |m| format!("{} ({} layers × {} heads)", m.label, m.n_layers, m.n_heads),
        );
        let mut s = format!("attention patterns of {model}\n");
        if let Some(d) = &self.data {
            s.push_str(&format!("data        {}\n", d.spec.file.display()));
        }
        s.push_str(&format!("prompts     {}\n", self.prompts_label()));
        let n = self.tokens.len();
        s.push_str(&format!("prompt      {}\n", self.tokens.concat()));
        let tokens: Vec<String> = self.tokens.iter().map(|t| format!("{t:?}")).collect();
        s.push_str(&format!("tokens ({n})  {}\n", tokens.join(" ")));
        let heads: Vec<String> = self
            .heads
            .iter()
            .map(|p| format!("{}.{}", p.head.0, p.head.1))
            .collect();
        s.push_str(&format!("heads ({})   {}\n", heads.len(), heads.join(", ")));
        s.push_str(&format!(
            "shape       {} heads × {n} queries × {n} keys\n",
            self.heads.len()
        ));
        s
    }
}
