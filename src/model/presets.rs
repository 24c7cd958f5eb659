//! Architectures of real models, for benchmarks with random weights of the real shapes (no
//! download; speed does not depend on the values). The fields are those of each model's
//! Hugging Face `config.json`.

use serde_json::json;

use super::{ModelConfig, ModelError};

pub const PRESETS: &[&str] = &[
    "gemma-2-9b",
    "llama-3-8b",
    "mistral-7b",
    "llama-2-7b",
    "gemma-2-2b",
];

/// The config of a preset; `layers` overrides the layer count (to fit a small machine).
pub fn preset(name: &str, layers: Option<usize>) -> Result<ModelConfig, ModelError> {
    let mut v = match name {
        "gemma-2-9b" => json!({
            "model_type": "gemma2", "hidden_size": 3584, "intermediate_size": 14336,
            "num_hidden_layers": 42, "num_attention_heads": 16, "num_key_value_heads": 8,
            "head_dim": 256, "vocab_size": 256000, "query_pre_attn_scalar": 256,
            "attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0,
            "sliding_window": 4096, "rope_theta": 10000.0, "rms_norm_eps": 1e-6,
            "hidden_activation": "gelu_pytorch_tanh", "max_position_embeddings": 8192
        }),
        "gemma-2-2b" => json!({
            "model_type": "gemma2", "hidden_size": 2304, "intermediate_size": 9216,
            "num_hidden_layers": 26, "num_attention_heads": 8, "num_key_value_heads": 4,
            "head_dim": 256, "vocab_size": 256000, "query_pre_attn_scalar": 256,
            "attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0,
            "sliding_window": 4096, "rope_theta": 10000.0, "rms_norm_eps": 1e-6,
            "hidden_activation": "gelu_pytorch_tanh", "max_position_embeddings": 8192
        }),
        "llama-3-8b" => json!({
            "model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
            "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
            "vocab_size": 128256, "rope_theta": 500000.0, "rms_norm_eps": 1e-5,
            "hidden_act": "silu", "max_position_embeddings": 8192
        }),
        "mistral-7b" => json!({
            "model_type": "mistral", "hidden_size": 4096, "intermediate_size": 14336,
            "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
            "vocab_size": 32000, "rope_theta": 10000.0, "rms_norm_eps": 1e-5,
            "sliding_window": 4096, "hidden_act": "silu", "max_position_embeddings": 32768
        }),
        "llama-2-7b" => json!({
            "model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008,
            "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
            "vocab_size": 32000, "rope_theta": 10000.0, "rms_norm_eps": 1e-5,
            "hidden_act": "silu", "max_position_embeddings": 4096
        }),
        other => {
            return Err(ModelError::Invalid(format!(
                "unknown architecture {other:?} (known: {})",
                PRESETS.join(", ")
            )))
        }
    };
    if let Some(l) = layers {
        v["num_hidden_layers"] = json!(l);
    }
    ModelConfig::from_json(&v, &format!("preset {name}"))
}
