//! Qwen2: Llama's block with q/k/v biases; slides only when `use_sliding_window` says so,
//! and then only from `max_window_layers` on.

use super::super::config::{Fields, ModelConfig, Names, HF_NAMES};
use super::super::transformer::{Globals, Layer};
use super::super::weights::WeightLoader;
use super::super::ModelError;
use super::{family_of, llama_globals, llama_gguf_name, llama_layer, FamilyDef};

pub struct Qwen2;

/// `Qwen2Config`'s defaults.
pub(super) const QWEN_NAMES: Names = Names {
    max_pos_default: 32768,
    ..HF_NAMES
};

/// Qwen's sliding-window rule (shared with Qwen3): only with `use_sliding_window`, on the
/// layers `layer_types` marks sliding, or else from `max_window_layers` on (transformers'
/// defaults: window 4096 from layer 28). Every key is read, used or not.
pub(super) fn qwen_sliding(f: &Fields, cfg: &mut ModelConfig) -> Result<(), ModelError> {
    let on = f.opt_bool("use_sliding_window")?.unwrap_or(false);
    let window = f.nullable_usize("sliding_window", Some(4096))?;
    let from = f.opt_usize("max_window_layers")?.unwrap_or(28);
    let types = ModelConfig::parse_layer_types(f, cfg.n_layers)?;
    if let (true, Some(w)) = (on, window) {
        cfg.sliding_window = Some(w);
        cfg.layer_sliding = types.unwrap_or_else(|| (0..cfg.n_layers).map(|l| l >= from).collect());
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
        let mut cfg = ModelConfig::base(f, family_of(self), &QWEN_NAMES)?;
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
