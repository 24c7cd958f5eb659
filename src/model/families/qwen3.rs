//! Qwen3: Qwen2's block without q/k/v biases (unless `attention_bias`), with an RMSNorm on
//! each head's q and k before rotary (`q_norm`, `k_norm`; TransformerLens hooks q and k before
//! them), and `head_dim` independent of d_model / heads. GGUF: llama.cpp's `qwen3`
//! architecture (`attn_q_norm`, `attn_k_norm`; q/k rows not permuted).

use super::super::config::{Fields, ModelConfig, Names};
use super::super::transformer::{Globals, Layer};
use super::super::weights::WeightLoader;
use super::super::ModelError;
use super::qwen2::{qwen_sliding, QWEN_NAMES};
use super::{family_of, llama_globals, llama_gguf_name, llama_layer, FamilyDef};

pub struct Qwen3;

/// `Qwen3Config`'s defaults: Qwen2's, with a head size of 128.
const QWEN3_NAMES: Names = Names {
    head_dim_default: Some(128),
    ..QWEN_NAMES
};

impl FamilyDef for Qwen3 {
    fn name(&self) -> &'static str {
        "qwen3"
    }
    fn model_types(&self) -> &'static [&'static str] {
        &["qwen3"]
    }
    fn config(&self, f: &Fields) -> Result<ModelConfig, ModelError> {
        let mut cfg = ModelConfig::base(f, family_of(self), &QWEN3_NAMES)?;
        let bias = f.opt_bool("attention_bias")?.unwrap_or(false);
        cfg.qkv_bias = bias;
        cfg.o_bias = bias;
        cfg.qk_norm = true;
        qwen_sliding(f, &mut cfg)?;
        cfg.validate(f)
    }
    fn globals(&self, w: &mut WeightLoader, cfg: &ModelConfig) -> Result<Globals, ModelError> {
        llama_globals(w, cfg)
    }
    fn layer(&self, w: &mut WeightLoader, cfg: &ModelConfig, l: usize) -> Result<Layer, ModelError> {
        llama_layer(w, cfg, l)
    }
    fn gguf_arch(&self) -> Option<&'static str> {
        Some("qwen3")
    }
    fn gguf_name(&self, hf: &str) -> Option<String> {
        llama_gguf_name(hf, false)
    }
}
