//! Llama (1, 2, 3): RMSNorm, gated SiLU MLP, full rotary, optional biases, Llama-3 rope
//! scaling. llama.cpp permutes q/k rows for interleaved rotary; we undo it.

use candle_core::Tensor;
use serde_json::{json, Map, Value};

use super::super::config::{Fields, ModelConfig, HF_NAMES};
use super::super::gguf::{unpermute_qk, GgufFile};
use super::super::transformer::{Globals, Layer};
use super::super::weights::WeightLoader;
use super::super::ModelError;
use super::{family_of, llama_globals, llama_gguf_name, llama_layer, FamilyDef};

pub struct Llama;

impl FamilyDef for Llama {
    fn name(&self) -> &'static str {
        "llama"
    }
    fn model_types(&self) -> &'static [&'static str] {
        &["llama"]
    }
    fn config(&self, f: &Fields) -> Result<ModelConfig, ModelError> {
        let mut cfg = ModelConfig::base(f, family_of(self), &HF_NAMES)?;
        let bias = f.opt_bool("attention_bias")?.unwrap_or(false);
        cfg.qkv_bias = bias;
        cfg.o_bias = bias;
        cfg.mlp_bias = f.opt_bool("mlp_bias")?.unwrap_or(false);
        cfg.validate(f)
    }
    fn globals(&self, w: &mut WeightLoader, cfg: &ModelConfig) -> Result<Globals, ModelError> {
        llama_globals(w, cfg)
    }
    fn layer(&self, w: &mut WeightLoader, cfg: &ModelConfig, l: usize) -> Result<Layer, ModelError> {
        llama_layer(w, cfg, l)
    }
    fn gguf_arch(&self) -> Option<&'static str> {
        Some("llama")
    }
    fn gguf_config(&self, f: &GgufFile, o: &mut Map<String, Value>) -> Result<(), ModelError> {
        let has = |n: &str| f.tensors.contains_key(n);
        o.insert("attention_bias".into(), json!(has("blk.0.attn_q.bias")));
        o.insert("mlp_bias".into(), json!(has("blk.0.ffn_up.bias")));
        Ok(())
    }
    fn gguf_name(&self, hf: &str) -> Option<String> {
        llama_gguf_name(hf, false)
    }
    fn gguf_tensor(&self, g: &str, t: Tensor, cfg: &ModelConfig) -> Result<Tensor, ModelError> {
        if g.contains(".attn_q.") {
            unpermute_qk(&t, cfg.n_heads)
        } else if g.contains(".attn_k.") {
            unpermute_qk(&t, cfg.n_kv_heads)
        } else {
            Ok(t)
        }
    }
}
