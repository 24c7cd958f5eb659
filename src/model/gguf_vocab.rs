//! A Hugging Face tokenizer built from a GGUF file's `tokenizer.ggml.*` metadata, so that
//! `--tokenizer` is optional for GGUF models.
//!
//! Two kinds of vocabularies are handled, as llama.cpp reads them:
//! - `gpt2` (byte-level BPE: Qwen2, SmolLM2, Llama-3): the file's tokens and merges, with the
//!   pre-tokenizer that `tokenizer.ggml.pre` names (`qwen2`, `smollm`, `llama-bpe`,
//!   `default`/`gpt-2`; others are refused rather than guessed).
//! - `llama` (SentencePiece, Gemma): llama.cpp merges the adjacent pair whose joined piece has
//!   the highest score. That is a BPE whose merges are every (left, right) split of a piece,
//!   ranked by the joined piece's score; spaces become `▁`, unknown bytes fall back to
//!   `<0xNN>` tokens.
//!
//! Control tokens (type 3) are special added tokens; user-defined ones (type 4, e.g. Gemma's
//! runs of newlines or spaces) are added tokens matched in the raw text, as llama.cpp does.
//! BOS is added by the post-processor when `tokenizer.ggml.add_bos_token` is true (default:
//! true for `llama` vocabularies, false for `gpt2`).

use std::collections::HashMap;

use candle_core::quantized::gguf_file::Value;
use serde_json::{json, Value as Json};

use super::gguf::GgufFile;
use super::tokenizer::Tokenizer;
use super::ModelError;

const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

fn err(f: &GgufFile, msg: impl Into<String>) -> ModelError {
    ModelError::GgufTokenizer {
        file: format!("{} (GGUF metadata)", f.describe()),
        msg: msg.into(),
    }
}

fn strings(f: &GgufFile, key: &str) -> Result<Vec<String>, ModelError> {
    let arr = f
        .get_array(key)?
        .ok_or_else(|| err(f, format!("`{key}` is missing")))?;
    arr.iter()
        .map(|v| match v {
            Value::String(s) => Ok(s.clone()),
            _ => Err(err(f, format!("`{key}` holds a non-string"))),
        })
        .collect()
}

fn token_types(f: &GgufFile, n: usize) -> Result<Vec<i64>, ModelError> {
    let Some(arr) = f.get_array("tokenizer.ggml.token_type")? else {
        return Ok(vec![1; n]);
    };
    if arr.len() != n {
        return Err(err(
            f,
            format!(
                "`tokenizer.ggml.token_type` has {} entries for {n} tokens",
                arr.len()
            ),
        ));
    }
    Ok(arr
        .iter()
        .map(|v| match v {
            Value::I32(x) => *x as i64,
            Value::U32(x) => *x as i64,
            Value::I8(x) => *x as i64,
            Value::U8(x) => *x as i64,
            Value::I64(x) => *x,
            _ => 1,
        })
        .collect())
}

fn added_tokens(tokens: &[String], types: &[i64]) -> Vec<Json> {
    tokens
        .iter()
        .zip(types)
        .enumerate()
        .filter(|(_, (_, &t))| t == 3 || t == 4)
        .map(|(id, (content, &t))| {
            json!({
                "id": id, "content": content, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": t == 3
            })
        })
        .collect()
}

fn post_processor(bos: Option<(u32, &str)>) -> Json {
    match bos {
        Some((id, text)) => json!({
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": text, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": text, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": text, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {text: {"id": text, "ids": [id], "tokens": [text]}}
        }),
        None => Json::Null,
    }
}

/// The tokenizer.json (as a JSON value) of a GGUF file's vocabulary.
pub fn tokenizer_json(f: &GgufFile) -> Result<Json, ModelError> {
    let kind = f
        .get_str("tokenizer.ggml.model")?
        .ok_or_else(|| {
            err(
                f,
                "the file has no tokenizer (`tokenizer.ggml.model` is missing)",
            )
        })?
        .to_string();
    let tokens = strings(f, "tokenizer.ggml.tokens")?;
    let types = token_types(f, tokens.len())?;
    let add_bos_default = kind == "llama";
    let add_bos = f
        .get_bool("tokenizer.ggml.add_bos_token")?
        .unwrap_or(add_bos_default);
    let bos = match (add_bos, f.get_u64("tokenizer.ggml.bos_token_id")?) {
        (true, Some(id)) => {
            let text = tokens
                .get(id as usize)
                .ok_or_else(|| err(f, format!("bos_token_id {id} is outside the vocabulary")))?;
            Some((id as u32, text.as_str()))
        }
        _ => None,
    };
    let added = added_tokens(&tokens, &types);
    match kind.as_str() {
        "gpt2" => {
            let merges = strings(f, "tokenizer.ggml.merges")?;
            let pre = f.get_str("tokenizer.ggml.pre")?.unwrap_or("default");
            let byte_level = |use_regex: bool| {
                json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex})
            };
            let split = |re: &str| {
                json!({"type": "Split", "pattern": {"Regex": re}, "behavior": "Isolated", "invert": false})
            };
            let (normalizer, pre_tokenizer) = match pre {
                "qwen2" => (
                    json!({"type": "NFC"}),
                    json!({"type": "Sequence", "pretokenizers": [split(QWEN2_SPLIT), byte_level(false)]}),
                ),
                "llama-bpe" | "llama3" => (
                    Json::Null,
                    json!({"type": "Sequence", "pretokenizers": [split(LLAMA3_SPLIT), byte_level(false)]}),
                ),
                "smollm" => (
                    Json::Null,
                    json!({"type": "Sequence", "pretokenizers": [
                        {"type": "Digits", "individual_digits": true}, byte_level(true)]}),
                ),
                "default" | "gpt-2" | "gpt2" => (Json::Null, byte_level(true)),
                other => {
                    return Err(err(
                        f,
                        format!(
                            "pre-tokenizer {other:?} (tokenizer.ggml.pre) is not supported \
                             (supported: qwen2, llama-bpe, smollm, default)"
                        ),
                    ))
                }
            };
            let vocab: serde_json::Map<String, Json> = tokens
                .iter()
                .enumerate()
                .map(|(i, t)| (t.clone(), json!(i)))
                .collect();
            let merges: Vec<Json> = merges
                .iter()
                .map(|m| match m.split_once(' ') {
                    Some((a, b)) => Ok(json!([a, b])),
                    None => Err(err(f, format!("merge {m:?} is not two pieces"))),
                })
                .collect::<Result<_, _>>()?;
            Ok(json!({
                "version": "1.0", "truncation": null, "padding": null,
                "added_tokens": added,
                "normalizer": normalizer,
                "pre_tokenizer": pre_tokenizer,
                "post_processor": post_processor(bos),
                "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
                "model": {"type": "BPE", "dropout": null, "unk_token": null,
                          "continuing_subword_prefix": "", "end_of_word_suffix": "",
                          "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                          "vocab": vocab, "merges": merges}
            }))
        }
        "llama" => {
            let scores: Vec<f32> = match f.get_array("tokenizer.ggml.scores")? {
                Some(a) if a.len() == tokens.len() => a
                    .iter()
                    .map(|v| match v {
                        Value::F32(x) => *x,
                        Value::F64(x) => *x as f32,
                        _ => 0.0,
                    })
                    .collect(),
                _ => return Err(err(f, "`tokenizer.ggml.scores` is missing or has the wrong length")),
            };
            let add_space_prefix = f
                .get_bool("tokenizer.ggml.add_space_prefix")?
                .unwrap_or(true);
            let unk = f.get_u64("tokenizer.ggml.unknown_token_id")?;
            // Merges join two normal (type 1) or byte (type 6) pieces into a normal piece.
            let index: HashMap<&str, usize> = tokens
                .iter()
                .enumerate()
                .map(|(i, t)| (t.as_str(), i))
                .collect();
            let mut merges: Vec<(f32, usize, usize, usize)> = Vec::new();
            for (id, piece) in tokens.iter().enumerate() {
                if types[id] != 1 {
                    continue;
                }
                for (cut, _) in piece.char_indices().skip(1) {
                    let (l, r) = piece.split_at(cut);
                    if let (Some(&li), Some(&ri)) = (index.get(l), index.get(r)) {
                        let part = |t: i64| t == 1 || t == 6;
                        if part(types[li]) && part(types[ri]) {
                            merges.push((scores[id], id, li, ri));
                        }
                    }
                }
            }
            // Highest joined score first; ties by the joined piece's id, then the split.
            merges.sort_by(|a, b| {
                b.0.total_cmp(&a.0)
                    .then(a.1.cmp(&b.1))
                    .then(a.2.cmp(&b.2))
            });
            let merges: Vec<Json> = merges
                .iter()
                .map(|&(_, _, l, r)| json!([tokens[l], tokens[r]]))
                .collect();
            let vocab: serde_json::Map<String, Json> = tokens
                .iter()
                .enumerate()
                .map(|(i, t)| (t.clone(), json!(i)))
                .collect();
            let mut norm = vec![];
            if add_space_prefix {
                norm.push(json!({"type": "Prepend", "prepend": "▁"}));
            }
            norm.push(json!({"type": "Replace", "pattern": {"String": " "}, "content": "▁"}));
            let mut dec = vec![
                json!({"type": "Replace", "pattern": {"String": "▁"}, "content": " "}),
                json!({"type": "ByteFallback"}),
                json!({"type": "Fuse"}),
            ];
            if add_space_prefix {
                dec.push(json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
            }
            Ok(json!({
                "version": "1.0", "truncation": null, "padding": null,
                "added_tokens": added,
                "normalizer": {"type": "Sequence", "normalizers": norm},
                "pre_tokenizer": null,
                "post_processor": post_processor(bos),
                "decoder": {"type": "Sequence", "decoders": dec},
                "model": {"type": "BPE", "dropout": null,
                          "unk_token": unk.and_then(|u| tokens.get(u as usize)).cloned(),
                          "continuing_subword_prefix": null, "end_of_word_suffix": null,
                          "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
                          "vocab": vocab, "merges": merges}
            }))
        }
        other => Err(err(
            f,
            format!("vocabulary type {other:?} (tokenizer.ggml.model) is not supported (supported: gpt2, llama)"),
        )),
    }
}

/// The tokenizer of a GGUF file, from its metadata.
pub fn tokenizer_from_gguf(f: &GgufFile) -> Result<Tokenizer, ModelError> {
    let json = tokenizer_json(f)?;
    let bytes = serde_json::to_vec(&json).map_err(|e| err(f, e.to_string()))?;
    Tokenizer::from_bytes(&bytes, &format!("{} (GGUF metadata)", f.describe()))
}
