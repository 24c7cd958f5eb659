//! Mistral: Llama's block with a sliding window on every layer (when the config has one).

use super::super::config::{Fields, ModelConfig, Names, HF_NAMES};
use super::super::transformer::{Globals, Layer};
use super::super::weights::WeightLoader;
use super::super::ModelError;
use super::{family_of, llama_globals, llama_layer, FamilyDef};

pub struct Mistral;

/// `MistralConfig`'s defaults.
const MISTRAL_NAMES: Names = Names {
    max_pos_default: 4096 * 32,
    ..HF_NAMES
};

impl FamilyDef for Mistral {
    fn name(&self) -> &'static str {
        "mistral"
    }
    fn model_types(&self) -> &'static [&'static str] {
        &["mistral"]
    }
    fn config(&self, f: &Fields) -> Result<ModelConfig, ModelError> {
        let mut cfg = ModelConfig::base(f, family_of(self), &MISTRAL_NAMES)?;
        // Absent means transformers' 4096; `null` means no window.
        if let Some(w) = f.nullable_usize("sliding_window", Some(4096))? {
            cfg.sliding_window = Some(w);
            cfg.layer_sliding = vec![true; cfg.n_layers];
        }
        cfg.validate(f)
    }
    fn irrelevant_keys(&self) -> &'static [&'static str] {
        // transformers' Mistral slides on every layer whatever `layer_types` says.
        &["layer_types"]
    }
    fn globals(&self, w: &mut WeightLoader, cfg: &ModelConfig) -> Result<Globals, ModelError> {
        llama_globals(w, cfg)
    }
    fn layer(&self, w: &mut WeightLoader, cfg: &ModelConfig, l: usize) -> Result<Layer, ModelError> {
        llama_layer(w, cfg, l)
    }
}
