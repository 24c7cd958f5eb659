//! Qwen2: Llama's block with q/k/v biases; slides only when `use_sliding_window` says so,
//! and then only from `max_window_layers` on.

use super::super::config::{Fields, ModelConfig, HF_NAMES};
use super::super::transformer::{Globals, Layer};
use super::super::weights::WeightLoader;
use super::super::ModelError;
use super::{family_of, llama_globals, llama_gguf_name, llama_layer, FamilyDef};

pub struct Qwen2;

/// Qwen's sliding-window rule (shared with Qwen3).
pub(super) fn qwen_sliding(f: &Fields, cfg: &mut ModelConfig) -> Result<(), ModelError> {
    if f.opt_bool("use_sliding_window")?.unwrap_or(false) {
        if let Some(w) = f.opt_usize("sliding_window")? {
            let from = f.opt_usize("max_window_layers")?.unwrap_or(cfg.n_layers);
            cfg.sliding_window = Some(w);
            cfg.layer_sliding = (0..cfg.n_layers).map(|l| l >= from).collect();
        }
    }
    Ok(())
}

impl FamilyDef for Qwen2 {
    fn name(&self) -> &'static str {
        "qwen2"
    }
    fn model_types(&self) -> &'static [&'static str] {
        &["qwen2"]
    }
    fn config(&self, f: &Fields) -> Result<ModelConfig, ModelError> {
        let mut cfg = ModelConfig::base(f, family_of(self), &HF_NAMES)?;
        cfg.qkv_bias = true;
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
        Some("qwen2")
    }
    fn gguf_name(&self, hf: &str) -> Option<String> {
        llama_gguf_name(hf, false)
    }
}
