//! One `ModelConfig` for every supported family, read from a Hugging Face `config.json`
//! (or, for GGUF files, from the file's metadata; see `gguf.rs`).
//!
//! Everything family-specific that the forward pass needs is resolved here into plain fields
//! (norm style, soft-caps, sliding-window layers, rotary parameters), so `forward.rs` never
//! matches on the family name.

use serde_json::Value;
use std::path::Path;

use super::ModelError;

/// The model families headhunt can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Gemma2,
    Gemma3,
    Llama,
    Mistral,
    Qwen2,
}

/// `model_type` values accepted in `config.json`, for error messages.
pub const SUPPORTED_MODEL_TYPES: &[&str] = &["gemma2", "gemma3_text", "llama", "mistral", "qwen2"];

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Gemma2 => "gemma2",
            Family::Gemma3 => "gemma3",
            Family::Llama => "llama",
            Family::Mistral => "mistral",
            Family::Qwen2 => "qwen2",
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The MLP's gate activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Silu,
    /// GELU, tanh approximation (`gelu_pytorch_tanh`, Gemma's choice).
    GeluTanh,
    /// GELU with the exact erf.
    GeluErf,
}

impl Activation {
    fn parse(name: &str) -> Result<Self, String> {
        match name {
            "silu" | "swish" => Ok(Activation::Silu),
            "gelu_pytorch_tanh" | "gelu_new" | "gelu_fast" => Ok(Activation::GeluTanh),
            "gelu" => Ok(Activation::GeluErf),
            other => Err(format!(
                "unsupported activation {other:?} (expected silu, gelu_pytorch_tanh or gelu)"
            )),
        }
    }
}

/// How rotary frequencies are rescaled for long contexts.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum RopeScaling {
    None,
    /// Position interpolation: every frequency divided by `factor`.
    Linear {
        factor: f64,
    },
    /// Llama 3's frequency-band rescaling.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: f64,
    },
}

/// Rotary embedding parameters for one kind of layer.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RopeConfig {
    pub theta: f64,
    pub scaling: RopeScaling,
}

impl RopeConfig {
    /// Inverse frequencies, computed in f32 the way Hugging Face does (`1 / base^(2i/d)`),
    /// then rescaled.
    pub fn inv_freq(&self, d_head: usize) -> Vec<f32> {
        let base = self.theta as f32;
        let mut inv: Vec<f32> = (0..d_head / 2)
            .map(|i| 1.0f32 / base.powf((2 * i) as f32 / d_head as f32))
            .collect();
        match &self.scaling {
            RopeScaling::None => {}
            RopeScaling::Linear { factor } => {
                for f in inv.iter_mut() {
                    *f /= *factor as f32;
                }
            }
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            } => {
                let (factor, low, high, old_ctx) = (
                    *factor as f32,
                    *low_freq_factor as f32,
                    *high_freq_factor as f32,
                    *original_max_position_embeddings as f32,
                );
                let low_wavelen = old_ctx / low;
                let high_wavelen = old_ctx / high;
                for f in inv.iter_mut() {
                    let wavelen = 2.0 * std::f32::consts::PI / *f;
                    if wavelen > low_wavelen {
                        *f /= factor;
                    } else if wavelen >= high_wavelen {
                        let smooth = (old_ctx / wavelen - low) / (high - low);
                        *f = (1.0 - smooth) * *f / factor + smooth * *f;
                    }
                }
            }
        }
        inv
    }
}

/// Everything the forward pass needs to know about a model's architecture.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelConfig {
    pub family: Family,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub d_model: usize,
    pub d_head: usize,
    pub d_mlp: usize,
    pub vocab_size: usize,
    pub norm_eps: f64,
    /// Gemma's RMSNorm multiplies by `1 + weight`.
    pub norm_plus_one: bool,
    /// Gemma-2/3: extra norms after the attention output and after the MLP.
    pub sandwich_norms: bool,
    /// Gemma-3: RMSNorm on each head's q and k.
    pub qk_norm: bool,
    /// Gemma: embeddings multiplied by sqrt(d_model), rounded to the run dtype.
    pub embed_scale: Option<f64>,
    pub activation: Activation,
    /// Multiplies q·k (1/sqrt(d_head), or 1/sqrt(query_pre_attn_scalar) for Gemma).
    pub attn_scale: f64,
    pub attn_softcap: Option<f64>,
    pub final_softcap: Option<f64>,
    /// Rotary parameters of full-attention layers.
    pub rope_global: RopeConfig,
    /// Rotary parameters of sliding-window layers where they differ (Gemma-3).
    pub rope_local: Option<RopeConfig>,
    pub sliding_window: Option<usize>,
    /// Per layer: does it use the sliding window?
    pub layer_sliding: Vec<bool>,
    pub qkv_bias: bool,
    pub o_bias: bool,
    pub mlp_bias: bool,
    pub tie_embeddings: bool,
    pub bos_token_id: Option<u32>,
    pub max_position_embeddings: usize,
    /// The dtype the checkpoint was saved in (`torch_dtype`), informational.
    pub checkpoint_dtype: Option<String>,
}

/// Reads typed fields from a JSON object with errors that name the file and field.
struct Fields<'a> {
    obj: &'a serde_json::Map<String, Value>,
    file: &'a str,
}

impl<'a> Fields<'a> {
    fn err(&self, field: &str, what: &str) -> ModelError {
        ModelError::Config {
            file: self.file.to_string(),
            msg: format!("field `{field}`: {what}"),
        }
    }
    fn get(&self, field: &str) -> Option<&'a Value> {
        self.obj.get(field).filter(|v| !v.is_null())
    }
    fn usize(&self, field: &str) -> Result<usize, ModelError> {
        self.opt_usize(field)?
            .ok_or_else(|| self.err(field, "missing (expected a positive integer)"))
    }
    fn opt_usize(&self, field: &str) -> Result<Option<usize>, ModelError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v.as_u64().map(|x| Some(x as usize)).ok_or_else(|| {
                self.err(field, &format!("expected a non-negative integer, got {v}"))
            }),
        }
    }
    fn f64(&self, field: &str) -> Result<f64, ModelError> {
        self.opt_f64(field)?
            .ok_or_else(|| self.err(field, "missing (expected a number)"))
    }
    fn opt_f64(&self, field: &str) -> Result<Option<f64>, ModelError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.err(field, &format!("expected a number, got {v}"))),
        }
    }
    fn opt_bool(&self, field: &str) -> Result<Option<bool>, ModelError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.err(field, &format!("expected true or false, got {v}"))),
        }
    }
    fn opt_str(&self, field: &str) -> Result<Option<&'a str>, ModelError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| self.err(field, &format!("expected a string, got {v}"))),
        }
    }
}

impl ModelConfig {
    /// Reads a Hugging Face `config.json`.
    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::Io {
            path: file.clone(),
            msg: e.to_string(),
        })?;
        let value: Value = serde_json::from_str(&text).map_err(|e| ModelError::Config {
            file: file.clone(),
            msg: format!("invalid JSON: {e}"),
        })?;
        Self::from_json(&value, &file)
    }

    /// Builds the config from parsed `config.json` contents; `file` is used in errors.
    pub fn from_json(value: &Value, file: &str) -> Result<Self, ModelError> {
        let obj = value.as_object().ok_or_else(|| ModelError::Config {
            file: file.to_string(),
            msg: "expected a JSON object".into(),
        })?;
        let top = Fields { obj, file };
        let model_type = top
            .opt_str("model_type")?
            .ok_or_else(|| top.err("model_type", "missing"))?;
        // Multimodal Gemma-3 checkpoints nest the language model's config.
        if model_type == "gemma3" {
            if let Some(text) = obj.get("text_config") {
                let mut inner = text.clone();
                if let Some(o) = inner.as_object_mut() {
                    o.entry("model_type").or_insert(Value::from("gemma3_text"));
                }
                return Self::from_json(&inner, file);
            }
        }
        let family = match model_type {
            "gemma2" => Family::Gemma2,
            "gemma3_text" | "gemma3" => Family::Gemma3,
            "llama" => Family::Llama,
            "mistral" => Family::Mistral,
            "qwen2" => Family::Qwen2,
            other => {
                return Err(ModelError::UnsupportedModelType {
                    model_type: other.to_string(),
                    file: file.to_string(),
                })
            }
        };
        let f = &top;
        let d_model = f.usize("hidden_size")?;
        let n_heads = f.usize("num_attention_heads")?;
        let n_layers = f.usize("num_hidden_layers")?;
        let n_kv_heads = f.opt_usize("num_key_value_heads")?.unwrap_or(n_heads);
        let d_mlp = f.usize("intermediate_size")?;
        let vocab_size = f.usize("vocab_size")?;
        if n_heads == 0 || n_layers == 0 || d_model == 0 || vocab_size == 0 {
            return Err(f.err(
                "num_attention_heads",
                "hidden_size, num_attention_heads, num_hidden_layers and vocab_size must be positive",
            ));
        }
        if n_kv_heads == 0 || n_heads % n_kv_heads != 0 {
            return Err(f.err(
                "num_key_value_heads",
                &format!("{n_kv_heads} does not divide num_attention_heads = {n_heads}"),
            ));
        }
        let d_head = match f.opt_usize("head_dim")? {
            Some(d) => d,
            None => {
                if d_model % n_heads != 0 {
                    return Err(f.err(
                        "head_dim",
                        "missing and hidden_size is not a multiple of num_attention_heads",
                    ));
                }
                d_model / n_heads
            }
        };
        if d_head % 2 != 0 {
            return Err(f.err(
                "head_dim",
                &format!("{d_head} is odd; rotary embeddings need an even head size"),
            ));
        }
        let gemma = matches!(family, Family::Gemma2 | Family::Gemma3);
        let act_field = if gemma {
            "hidden_activation"
        } else {
            "hidden_act"
        };
        let act_name = match f.opt_str(act_field)? {
            Some(a) => a,
            None => match f.opt_str("hidden_act")? {
                Some(a) => a,
                None if gemma => "gelu_pytorch_tanh",
                None => "silu",
            },
        };
        let activation = Activation::parse(act_name).map_err(|m| f.err(act_field, &m))?;
        let rope_theta = f.opt_f64("rope_theta")?.unwrap_or(10000.0);
        let rope_scaling = Self::parse_rope_scaling(f, family)?;
        let max_position_embeddings = f.opt_usize("max_position_embeddings")?.unwrap_or(8192);
        let norm_eps = f.opt_f64("rms_norm_eps")?.unwrap_or(1e-6);
        let sliding_window = f.opt_usize("sliding_window")?;
        let layer_types = Self::parse_layer_types(f, n_layers)?;
        let bos_token_id = f.opt_usize("bos_token_id")?.map(|x| x as u32);
        let checkpoint_dtype = f
            .opt_str("torch_dtype")?
            .or(f.opt_str("dtype")?)
            .map(|s| s.to_string());

        let mut cfg = ModelConfig {
            family,
            n_layers,
            n_heads,
            n_kv_heads,
            d_model,
            d_head,
            d_mlp,
            vocab_size,
            norm_eps,
            norm_plus_one: false,
            sandwich_norms: false,
            qk_norm: false,
            embed_scale: None,
            activation,
            attn_scale: 1.0 / (d_head as f64).sqrt(),
            attn_softcap: None,
            final_softcap: None,
            rope_global: RopeConfig {
                theta: rope_theta,
                scaling: rope_scaling,
            },
            rope_local: None,
            sliding_window: None,
            layer_sliding: vec![false; n_layers],
            qkv_bias: false,
            o_bias: false,
            mlp_bias: false,
            tie_embeddings: false,
            bos_token_id,
            max_position_embeddings,
            checkpoint_dtype,
        };
        match family {
            Family::Llama => {
                let bias = f.opt_bool("attention_bias")?.unwrap_or(false);
                cfg.qkv_bias = bias;
                cfg.o_bias = bias;
                cfg.mlp_bias = f.opt_bool("mlp_bias")?.unwrap_or(false);
                cfg.tie_embeddings = f.opt_bool("tie_word_embeddings")?.unwrap_or(false);
            }
            Family::Mistral => {
                cfg.tie_embeddings = f.opt_bool("tie_word_embeddings")?.unwrap_or(false);
                if let Some(w) = sliding_window {
                    cfg.sliding_window = Some(w);
                    cfg.layer_sliding = vec![true; n_layers];
                }
            }
            Family::Qwen2 => {
                cfg.qkv_bias = true;
                cfg.tie_embeddings = f.opt_bool("tie_word_embeddings")?.unwrap_or(false);
                // Qwen2 slides only when asked to, and then only from max_window_layers on.
                if f.opt_bool("use_sliding_window")?.unwrap_or(false) {
                    if let Some(w) = sliding_window {
                        let from = f.opt_usize("max_window_layers")?.unwrap_or(n_layers);
                        cfg.sliding_window = Some(w);
                        cfg.layer_sliding = (0..n_layers).map(|l| l >= from).collect();
                    }
                }
            }
            Family::Gemma2 | Family::Gemma3 => {
                cfg.norm_plus_one = true;
                cfg.sandwich_norms = true;
                cfg.embed_scale = Some((d_model as f64).sqrt());
                cfg.tie_embeddings = f.opt_bool("tie_word_embeddings")?.unwrap_or(true);
                let scalar = f.opt_f64("query_pre_attn_scalar")?.unwrap_or(d_head as f64);
                cfg.attn_scale = 1.0 / scalar.sqrt();
                cfg.attn_softcap = f.opt_f64("attn_logit_softcapping")?;
                cfg.final_softcap = f.opt_f64("final_logit_softcapping")?;
                cfg.sliding_window = sliding_window;
                cfg.layer_sliding = match (&layer_types, family) {
                    (Some(types), _) => types.clone(),
                    // Gemma-2: even-numbered layers slide.
                    (None, Family::Gemma2) => (0..n_layers).map(|l| l % 2 == 0).collect(),
                    // Gemma-3: every `sliding_window_pattern`-th layer is global.
                    (None, _) => {
                        let pattern = f.opt_usize("sliding_window_pattern")?.unwrap_or(6).max(1);
                        (0..n_layers).map(|l| (l + 1) % pattern != 0).collect()
                    }
                };
                if sliding_window.is_none() {
                    cfg.layer_sliding = vec![false; n_layers];
                }
                if family == Family::Gemma3 {
                    cfg.qk_norm = true;
                    let local = f.opt_f64("rope_local_base_freq")?.unwrap_or(10000.0);
                    cfg.rope_local = Some(RopeConfig {
                        theta: local,
                        scaling: RopeScaling::None,
                    });
                }
            }
        }
        Ok(cfg)
    }

    fn parse_rope_scaling(f: &Fields, family: Family) -> Result<RopeScaling, ModelError> {
        let Some(v) = f.get("rope_scaling") else {
            return Ok(RopeScaling::None);
        };
        let obj = v.as_object().ok_or_else(|| {
            f.err(
                "rope_scaling",
                &format!("expected an object or null, got {v}"),
            )
        })?;
        let sub = Fields { obj, file: f.file };
        let kind = sub
            .opt_str("rope_type")?
            .or(sub.opt_str("type")?)
            .unwrap_or("default");
        match kind {
            "default" => Ok(RopeScaling::None),
            "linear" => Ok(RopeScaling::Linear {
                factor: sub
                    .f64("factor")
                    .map_err(|_| f.err("rope_scaling.factor", "missing"))?,
            }),
            "llama3" => {
                let get = |k: &str| {
                    sub.f64(k).map_err(|_| {
                        f.err(&format!("rope_scaling.{k}"), "missing (expected a number)")
                    })
                };
                Ok(RopeScaling::Llama3 {
                    factor: get("factor")?,
                    low_freq_factor: get("low_freq_factor")?,
                    high_freq_factor: get("high_freq_factor")?,
                    original_max_position_embeddings: get("original_max_position_embeddings")?,
                })
            }
            // Dynamic NTK scaling changes nothing below the original context length.
            "dynamic" if family == Family::Llama => Ok(RopeScaling::None),
            other => Err(f.err(
                "rope_scaling.rope_type",
                &format!("unsupported rope scaling {other:?} (supported: default, linear, llama3)"),
            )),
        }
    }

    fn parse_layer_types(f: &Fields, n_layers: usize) -> Result<Option<Vec<bool>>, ModelError> {
        let Some(v) = f.get("layer_types") else {
            return Ok(None);
        };
        let arr = v
            .as_array()
            .ok_or_else(|| f.err("layer_types", "expected a list of strings"))?;
        if arr.len() != n_layers {
            return Err(f.err(
                "layer_types",
                &format!(
                    "has {} entries, expected num_hidden_layers = {n_layers}",
                    arr.len()
                ),
            ));
        }
        arr.iter()
            .enumerate()
            .map(|(i, t)| match t.as_str() {
                Some("sliding_attention") => Ok(true),
                Some("full_attention") => Ok(false),
                _ => Err(f.err(
                    &format!("layer_types[{i}]"),
                    &format!("expected \"sliding_attention\" or \"full_attention\", got {t}"),
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Rotary parameters used by layer `l`.
    pub fn rope_for_layer(&self, l: usize) -> &RopeConfig {
        match (&self.rope_local, self.layer_sliding[l]) {
            (Some(local), true) => local,
            _ => &self.rope_global,
        }
    }

    /// Sliding window of layer `l`, if it slides.
    pub fn window_for_layer(&self, l: usize) -> Option<usize> {
        if self.layer_sliding[l] {
            self.sliding_window
        } else {
            None
        }
    }

    /// Number of query heads sharing one key/value head.
    pub fn group_size(&self) -> usize {
        self.n_heads / self.n_kv_heads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(model_type: &str) -> Value {
        serde_json::json!({
            "model_type": model_type, "hidden_size": 64, "num_attention_heads": 4,
            "num_hidden_layers": 4, "num_key_value_heads": 2, "intermediate_size": 128,
            "vocab_size": 50, "sliding_window": 8
        })
    }

    #[test]
    fn gemma2_even_layers_slide() {
        let c = ModelConfig::from_json(&base("gemma2"), "c").unwrap();
        assert_eq!(c.layer_sliding, vec![true, false, true, false]);
        assert!(c.norm_plus_one && c.tie_embeddings && c.sandwich_norms);
    }

    #[test]
    fn layer_types_override() {
        let mut v = base("gemma2");
        v["layer_types"] = serde_json::json!([
            "full_attention",
            "sliding_attention",
            "full_attention",
            "full_attention"
        ]);
        let c = ModelConfig::from_json(&v, "c").unwrap();
        assert_eq!(c.layer_sliding, vec![false, true, false, false]);
    }

    #[test]
    fn mistral_slides_everywhere() {
        let c = ModelConfig::from_json(&base("mistral"), "c").unwrap();
        assert_eq!(c.layer_sliding, vec![true; 4]);
    }

    #[test]
    fn unsupported_type_is_named() {
        let e = ModelConfig::from_json(&base("gpt2"), "x/config.json").unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("gpt2") && m.contains("llama") && m.contains("x/config.json"),
            "{m}"
        );
    }

    #[test]
    fn llama3_scaling_matches_reference_values() {
        // Frequencies of Llama-3.1-8B (theta 500000, factor 8, 1/4, 128 dims), spot-checked
        // against the formula: the highest frequency is unchanged, the lowest divided by 8.
        let rope = RopeConfig {
            theta: 500000.0,
            scaling: RopeScaling::Llama3 {
                factor: 8.0,
                low_freq_factor: 1.0,
                high_freq_factor: 4.0,
                original_max_position_embeddings: 8192.0,
            },
        };
        let plain = RopeConfig {
            theta: 500000.0,
            scaling: RopeScaling::None,
        };
        let a = rope.inv_freq(128);
        let b = plain.inv_freq(128);
        assert_eq!(a[0], b[0]);
        assert!((a[63] - b[63] / 8.0).abs() < 1e-12);
        assert!(a[40] < b[40] && a[40] > b[40] / 8.0 || a[40] == b[40] || a[40] == b[40] / 8.0);
    }

    #[test]
    fn missing_field_is_named() {
        let mut v = base("llama");
        v.as_object_mut().unwrap().remove("hidden_size");
        let m = ModelConfig::from_json(&v, "cfg.json")
            .unwrap_err()
            .to_string();
        assert!(m.contains("hidden_size") && m.contains("cfg.json"), "{m}");
    }
}
