//! Gemma-2 and Gemma-3: RMSNorm of `1 + w`, sandwich norms around attention and MLP,
//! embeddings scaled by sqrt(d_model), `query_pre_attn_scalar`, soft-caps (Gemma-2),
//! sliding-window layers, and (Gemma-3) q/k norms with a local rope base.
//! llama.cpp stores the norm weights as `1 + w`.

use candle_core::quantized::gguf_file::Value as GgufValue;
use candle_core::Tensor;
use serde_json::{json, Map, Value};

use super::super::config::{Fields, ModelConfig, Names, RopeConfig, RopeScaling, HF_NAMES};
use super::super::gguf::GgufFile;
use super::super::transformer::{Globals, Layer};
use super::super::weights::WeightLoader;
use super::super::ModelError;
use super::{family_of, llama_globals, llama_gguf_name, llama_layer, FamilyDef};

pub struct Gemma2;
pub struct Gemma3;

/// Gemma's config names its activation `hidden_activation` (older files: `hidden_act`).
const GEMMA_NAMES: Names = Names {
    act: "hidden_activation",
    act_default: "gelu_pytorch_tanh",
    ..HF_NAMES
};

/// What both generations share; `gemma3` adds q/k norms, its local rope and its pattern.
fn gemma_config(f: &Fields, def: &dyn FamilyDef, gemma3: bool) -> Result<ModelConfig, ModelError> {
    let names = match f.opt_str("hidden_activation")? {
        Some(_) => GEMMA_NAMES,
        None => Names {
            act: "hidden_act",
            ..GEMMA_NAMES
        },
    };
    let mut cfg = ModelConfig::base(f, family_of(def), &names)?;
    let (n, d_head) = (cfg.n_layers, cfg.d_head);
    cfg.norm_plus_one = true;
    cfg.sandwich_norms = true;
    cfg.embed_scale = Some((cfg.d_model as f64).sqrt());
    cfg.tie_embeddings = f.opt_bool("tie_word_embeddings")?.unwrap_or(true);
    let scalar = f.opt_f64("query_pre_attn_scalar")?.unwrap_or(d_head as f64);
    cfg.attn_scale = 1.0 / scalar.sqrt();
    cfg.attn_softcap = f.opt_f64("attn_logit_softcapping")?;
    cfg.final_softcap = f.opt_f64("final_logit_softcapping")?;
    let window = f.opt_usize("sliding_window")?;
    cfg.sliding_window = window;
    cfg.layer_sliding = match ModelConfig::parse_layer_types(f, n)? {
        Some(types) => types,
        // Gemma-2: even-numbered layers slide.
        None if !gemma3 => (0..n).map(|l| l % 2 == 0).collect(),
        // Gemma-3: every `sliding_window_pattern`-th layer is global.
        None => {
            let pattern = f.opt_usize("sliding_window_pattern")?.unwrap_or(6).max(1);
            (0..n).map(|l| (l + 1) % pattern != 0).collect()
        }
    };
    if window.is_none() {
        cfg.layer_sliding = vec![false; n];
    }
    if gemma3 {
        cfg.qk_norm = true;
        cfg.rope_local = Some(RopeConfig {
            theta: f.opt_f64("rope_local_base_freq")?.unwrap_or(10000.0),
            scaling: RopeScaling::None,
        });
    }
    cfg.validate(f)
}

/// GGUF metadata both generations share: window, attention scale, soft-caps.
fn gemma_gguf_config(f: &GgufFile, o: &mut Map<String, Value>, arch: &str) -> Result<(), ModelError> {
    let key = |k: &str| format!("{arch}.{k}");
    if let Some(w) = f.get_u64(&key("attention.sliding_window"))? {
        o.insert("sliding_window".into(), json!(w));
    }
    let num = |k: &str| o.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
    let (d_model, n_heads, n_layers) = (
        num("hidden_size"),
        num("num_attention_heads").max(1),
        num("num_hidden_layers"),
    );
    // llama.cpp: 1/sqrt(head_dim), except the 27B models' 1/sqrt(d_model / n_heads)
    // (their query_pre_attn_scalar); an explicit attention.scale wins.
    let head_dim = o
        .get("head_dim")
        .and_then(|v| v.as_u64())
        .unwrap_or(d_model / n_heads);
    let is_27b = (arch == "gemma2" && n_layers == 46) || (arch == "gemma3" && n_layers == 62);
    let scalar = match f.get_f64(&key("attention.scale"))? {
        Some(s) if s > 0.0 => 1.0 / (s * s),
        _ if is_27b => (d_model / n_heads) as f64,
        _ => head_dim as f64,
    };
    o.insert("query_pre_attn_scalar".into(), json!(scalar));
    for cap in ["attn_logit_softcapping", "final_logit_softcapping"] {
        if let Some(v) = f.get_f64(&key(cap))? {
            o.insert(cap.into(), json!(v));
        }
    }
    Ok(())
}

/// Gemma-3's sliding pattern and local rope base from GGUF metadata: llama.cpp hard-codes the
/// base (10000) and the pattern (every 6th layer global) unless the file says otherwise.
fn gemma3_gguf_layers(f: &GgufFile, o: &mut Map<String, Value>) -> Result<(), ModelError> {
    let key = |k: &str| format!("gemma3.{k}");
    let n = o.get("num_hidden_layers").and_then(|v| v.as_u64()).unwrap_or(0) as usize;
    let pattern_key = key("attention.sliding_window_pattern");
    let sliding: Vec<bool> = match f.metadata.get(&pattern_key) {
        Some(GgufValue::Array(a)) => {
            if a.len() != n {
                return Err(f.meta_err(
                    &pattern_key,
                    &format!("has {} entries, expected block_count = {n}", a.len()),
                ));
            }
            a.iter().map(|v| matches!(v, GgufValue::Bool(true))).collect()
        }
        Some(_) => {
            let p = f.req_u64(&pattern_key)?.max(1) as usize;
            (0..n).map(|l| l % p < p - 1).collect()
        }
        None => (0..n).map(|l| l % 6 < 5).collect(),
    };
    let types: Vec<&str> = sliding
        .iter()
        .map(|s| if *s { "sliding_attention" } else { "full_attention" })
        .collect();
    o.insert("layer_types".into(), json!(types));
    let local = f
        .get_f64(&key("rope.local.freq_base"))?
        .or(f.get_f64(&key("rope.freq_base_swa"))?)
        .unwrap_or(10000.0);
    o.insert("rope_local_base_freq".into(), json!(local));
    Ok(())
}

/// convert_hf_to_gguf.py stores Gemma's norm weights as 1 + w.
fn gemma_gguf_tensor(g: &str, t: Tensor) -> Result<Tensor, ModelError> {
    if g.ends_with("norm.weight") {
        Ok((t - 1.0)?)
    } else {
        Ok(t)
    }
}

impl FamilyDef for Gemma2 {
    fn name(&self) -> &'static str {
        "gemma2"
    }
    fn model_types(&self) -> &'static [&'static str] {
        &["gemma2"]
    }
    fn config(&self, f: &Fields) -> Result<ModelConfig, ModelError> {
        gemma_config(f, self, false)
    }
    fn globals(&self, w: &mut WeightLoader, cfg: &ModelConfig) -> Result<Globals, ModelError> {
        llama_globals(w, cfg)
    }
    fn layer(&self, w: &mut WeightLoader, cfg: &ModelConfig, l: usize) -> Result<Layer, ModelError> {
        llama_layer(w, cfg, l)
    }
    fn gguf_arch(&self) -> Option<&'static str> {
        Some("gemma2")
    }
    fn gguf_config(&self, f: &GgufFile, o: &mut Map<String, Value>) -> Result<(), ModelError> {
        gemma_gguf_config(f, o, "gemma2")
    }
    fn gguf_name(&self, hf: &str) -> Option<String> {
        llama_gguf_name(hf, true)
    }
    fn gguf_tensor(&self, g: &str, t: Tensor, _cfg: &ModelConfig) -> Result<Tensor, ModelError> {
        gemma_gguf_tensor(g, t)
    }
}

impl FamilyDef for Gemma3 {
    fn name(&self) -> &'static str {
        "gemma3"
    }
    fn model_types(&self) -> &'static [&'static str] {
        &["gemma3_text", "gemma3"]
    }
    fn config(&self, f: &Fields) -> Result<ModelConfig, ModelError> {
        gemma_config(f, self, true)
    }
    fn globals(&self, w: &mut WeightLoader, cfg: &ModelConfig) -> Result<Globals, ModelError> {
        llama_globals(w, cfg)
    }
    fn layer(&self, w: &mut WeightLoader, cfg: &ModelConfig, l: usize) -> Result<Layer, ModelError> {
        llama_layer(w, cfg, l)
    }
    fn gguf_arch(&self) -> Option<&'static str> {
        Some("gemma3")
    }
    fn gguf_config(&self, f: &GgufFile, o: &mut Map<String, Value>) -> Result<(), ModelError> {
        gemma_gguf_config(f, o, "gemma3")?;
        gemma3_gguf_layers(f, o)
    }
    fn gguf_name(&self, hf: &str) -> Option<String> {
        llama_gguf_name(hf, true)
    }
    fn gguf_tensor(&self, g: &str, t: Tensor, _cfg: &ModelConfig) -> Result<Tensor, ModelError> {
        gemma_gguf_tensor(g, t)
    }
}
