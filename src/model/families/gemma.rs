//! Gemma-2 and Gemma-3: RMSNorm of `1 + w`, sandwich norms around attention and MLP,
//! embeddings scaled by sqrt(d_model), `query_pre_attn_scalar`, soft-caps (Gemma-2),
//! sliding-window layers, and (Gemma-3) q/k norms with a local rope base.
//! llama.cpp stores the norm weights as `1 + w`.

use candle_core::quantized::gguf_file::Value as GgufValue;
use candle_core::Tensor;
use serde_json::{json, Map, Value};

use super::super::config::{Fields, ModelConfig, Names, HF_NAMES};
use super::super::rope::RopeKeys;
use super::super::gguf::GgufFile;
use super::super::transformer::{Globals, Layer};
use super::super::weights::WeightLoader;
use super::super::ModelError;
use super::{family_of, llama_globals, llama_gguf_name, llama_layer, FamilyDef};

pub struct Gemma2;
pub struct Gemma3;

/// `Gemma2Config`'s names and defaults: the activation is `hidden_activation` (transformers'
/// Gemma models never read `hidden_act`), heads of 256.
const GEMMA2_NAMES: Names = Names {
    act: "hidden_activation",
    act_default: "gelu_pytorch_tanh",
    max_pos_default: 8192,
    head_dim_default: Some(256),
    ..HF_NAMES
};

/// `Gemma3TextConfig`'s: a global rope base of 1e6 and a local one of 1e4 for sliding layers.
const GEMMA3_NAMES: Names = Names {
    max_pos_default: 131_072,
    rope: Some(RopeKeys {
        theta_key: "rope_theta",
        default_theta: 1_000_000.0,
        local: Some(("rope_local_base_freq", 10_000.0)),
    }),
    ..GEMMA2_NAMES
};

/// What both generations share; `gemma3` adds q/k norms, its local rope and its pattern.
/// Where a key is absent its transformers default applies (Gemma-2's soft-caps 50 and 30,
/// Gemma-3's none; a window of 4096); `null` means none.
fn gemma_config(f: &Fields, def: &dyn FamilyDef, gemma3: bool) -> Result<ModelConfig, ModelError> {
    let names = if gemma3 { GEMMA3_NAMES } else { GEMMA2_NAMES };
    let mut cfg = ModelConfig::base(f, family_of(def), &names)?;
    let n = cfg.n_layers;
    cfg.norm_plus_one = true;
    cfg.sandwich_norms = true;
    cfg.embed_scale = Some((cfg.d_model as f64).sqrt());
    cfg.tie_embeddings = f.opt_bool("tie_word_embeddings")?.unwrap_or(true);
    let scalar = f.opt_f64("query_pre_attn_scalar")?.unwrap_or(256.0);
    cfg.attn_scale = 1.0 / scalar.sqrt();
    let caps = if gemma3 { (None, None) } else { (Some(50.0), Some(30.0)) };
    cfg.attn_softcap = f.nullable_f64("attn_logit_softcapping", caps.0)?;
    cfg.final_softcap = f.nullable_f64("final_logit_softcapping", caps.1)?;
    let bias = f.opt_bool("attention_bias")?.unwrap_or(false);
    cfg.qkv_bias = bias;
    cfg.o_bias = bias;
    if f.opt_bool("use_bidirectional_attention")?.unwrap_or(false) {
        return Err(f.err("use_bidirectional_attention", "true is not supported (headhunt runs causal attention)"));
    }
    let window = f.nullable_usize("sliding_window", Some(4096))?;
    cfg.sliding_window = window;
    // transformers 4.5x and 5 also write it as `_sliding_window_pattern` beside `layer_types`.
    let pattern = match f.opt_usize("sliding_window_pattern")? {
        Some(p) => Some(p),
        None => f.opt_usize("_sliding_window_pattern")?,
    };
    let pattern = pattern.unwrap_or(6).max(1);
    cfg.layer_sliding = match ModelConfig::parse_layer_types(f, n)? {
        Some(types) => types,
        // Gemma-2: even-numbered layers slide.
        None if !gemma3 => (0..n).map(|l| l % 2 == 0).collect(),
        // Gemma-3: every `sliding_window_pattern`-th layer is global.
        None => (0..n).map(|l| (l + 1) % pattern != 0).collect(),
    };
    if window.is_none() {
        cfg.layer_sliding = vec![false; n];
    }
    if gemma3 {
        cfg.qk_norm = true;
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
    let sliding: Vec<bool> = match f.meta(&pattern_key) {
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
    fn irrelevant_keys(&self) -> &'static [&'static str] {
        &["hidden_act"]
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
    fn irrelevant_keys(&self) -> &'static [&'static str] {
        &["hidden_act"]
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
