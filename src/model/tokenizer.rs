//! The model's own tokenizer (`tokenizer.json`, Hugging Face `tokenizers`).
//!
//! BOS is added the way the tokenizer's post-processor adds it (Gemma and Llama add one, Qwen
//! does not), and never twice: a text that already starts with the BOS token keeps one.

use std::path::Path;

use super::ModelError;

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    /// The token the post-processor puts in front of every text, if any.
    pub bos: Option<u32>,
    pub path: String,
}

impl Tokenizer {
    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        let file = path.display().to_string();
        if !path.is_file() {
            return Err(ModelError::NotFound(format!(
                "tokenizer file not found: {file}"
            )));
        }
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|e| ModelError::Tokenizer {
            file: file.clone(),
            msg: super::error::one_line(&e),
        })?;
        Self::from_inner(inner, file)
    }

    pub fn from_bytes(bytes: &[u8], label: &str) -> Result<Self, ModelError> {
        let inner =
            tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| ModelError::Tokenizer {
                file: label.to_string(),
                msg: super::error::one_line(&e),
            })?;
        Self::from_inner(inner, label.to_string())
    }

    fn from_inner(inner: tokenizers::Tokenizer, path: String) -> Result<Self, ModelError> {
        let mut t = Tokenizer {
            inner,
            bos: None,
            path,
        };
        // Whatever the post-processor puts before a text's own tokens is its BOS.
        let with = t.raw_encode("1", true)?;
        let without = t.raw_encode("1", false)?;
        if with.len() > without.len() && with.ends_with(&without) {
            t.bos = Some(with[0]);
        }
        Ok(t)
    }

    fn raw_encode(&self, text: &str, special: bool) -> Result<Vec<u32>, ModelError> {
        let enc = self
            .inner
            .encode(text, special)
            .map_err(|e| ModelError::Tokenizer {
                file: self.path.clone(),
                msg: format!("cannot encode {text:?}: {}", super::error::one_line(&e)),
            })?;
        Ok(enc.get_ids().to_vec())
    }

    /// Token ids of `text` as the model sees it: with the post-processor's BOS (once).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let mut ids = self.raw_encode(text, true)?;
        if let Some(bos) = self.bos {
            if ids.len() >= 2 && ids[0] == bos && ids[1] == bos {
                ids.remove(0);
            }
        }
        Ok(ids)
    }

    /// Token ids of `text` without any special tokens.
    pub fn encode_plain(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        self.raw_encode(text, false)
    }

    /// Text of one token, as it would print.
    pub fn token_text(&self, id: u32) -> String {
        match self.inner.decode(&[id], false) {
            Ok(s) if !s.is_empty() => s,
            _ => self
                .inner
                .id_to_token(id)
                .unwrap_or_else(|| format!("<{id}>")),
        }
    }

    /// Texts of several tokens.
    pub fn token_texts(&self, ids: &[u32]) -> Vec<String> {
        ids.iter().map(|&i| self.token_text(i)).collect()
    }

    pub fn decode(&self, ids: &[u32]) -> String {
        self.inner.decode(ids, false).unwrap_or_default()
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn token_to_id(&self, s: &str) -> Option<u32> {
        self.inner.token_to_id(s)
    }

    /// The largest token id the tokenizer can produce (added tokens included).
    pub fn max_id(&self) -> u32 {
        self.inner
            .get_vocab(true)
            .values()
            .copied()
            .max()
            .unwrap_or(0)
    }

    /// Ids of the tokenizer's special tokens (BOS, EOS, PAD and the like).
    pub fn special_ids(&self) -> std::collections::HashSet<u32> {
        self.inner
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, t)| t.special)
            .map(|(id, _)| id)
            .collect()
    }
}

/// A token's text made printable on one line: newlines as ↵, tabs as ⇥, spaces as ·.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\n' => '↵',
            '\t' => '⇥',
            ' ' => '·',
            c if c.is_control() => '�',
            c => c,
        })
        .collect()
}
