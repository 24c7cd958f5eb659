//! One `ModelConfig` for every supported family, read from a Hugging Face `config.json`
//! (or, for GGUF files, from the file's metadata; see `gguf.rs`).
//!
//! Everything family-specific that the forward pass needs is resolved here into plain fields
//! (norm style, soft-caps, sliding-window layers, rotary parameters), so `forward.rs` never
//! matches on the family name.

use serde_json::Value;
use std::path::Path;

use super::ModelError;

/// A model family, by the name result files record (`ModelInfo.family`): a handle on its
/// definition in [`super::families`]. The names of the families headhunt had before the
/// registry are constants here so that code and old result files keep reading them.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Family(&'static str);

#[allow(non_upper_case_globals)]
impl Family {
    pub const Gemma2: Family = Family("gemma2");
    pub const Gemma3: Family = Family("gemma3");
    pub const Llama: Family = Family("llama");
    pub const Mistral: Family = Family("mistral");
    pub const Qwen2: Family = Family("qwen2");

    /// Only the registry makes families, so every `Family` has a definition.
    pub(super) const fn new(name: &'static str) -> Self {
        Family(name)
    }

    pub fn name(self) -> &'static str {
        self.0
    }

    /// The registered family of this name.
    pub fn named(name: &str) -> Option<Family> {
        super::families::by_name(name).map(|d| Family(d.name()))
    }

    /// The family's definition (config rules, tensor names, block shape).
    pub(in crate::model) fn def(self) -> &'static dyn super::families::FamilyDef {
        super::families::by_name(self.0).expect("families are made from the registry")
    }
}

impl std::fmt::Debug for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Family({})", self.0)
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Family {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Family {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Family::named(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown model family {name:?} (known: {})",
                super::families::names().join(", ")
            ))
        })
    }
}

/// How a block combines attention and MLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockShape {
    /// resid_mid = x + attn(x); resid_post = resid_mid + mlp(resid_mid) (Llama, Gemma, GPT-2).
    Sequential,
    /// Both read the block's input: resid_post = x + attn(x) + mlp(x) (GPT-NeoX's
    /// `use_parallel_residual`). resid_mid = x + attn(x) is kept as a hook point; the MLP does
    /// not read it, so a change there reaches an MLP only in the next layer.
    Parallel,
}

/// The normalisation every norm of the model uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NormKind {
    /// RMSNorm (weight only).
    Rms,
    /// LayerNorm with weight and bias (GPT-2, GPT-NeoX).
    Layer,
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
    /// RMSNorm or LayerNorm, for every norm of the model.
    pub norm_kind: NormKind,
    /// Sequential or parallel attention and MLP.
    pub block: BlockShape,
    /// How many of each head's dims are rotated (from the first; `d_head` for all, 0 for a
    /// model without rotary embeddings).
    pub rotary_dim: usize,
    /// GPT-2: learned position embeddings added to the token embeddings.
    pub pos_embed: bool,
    /// The MLP is `down(act(gate(x)) * up(x))`; else `down(act(up(x)))` (GPT-2, GPT-NeoX).
    pub gated_mlp: bool,
    /// Gemma's RMSNorm multiplies by `1 + weight`.
    pub norm_plus_one: bool,
    /// Gemma-2/3: extra norms after the attention output and after the MLP.
    pub sandwich_norms: bool,
    /// Gemma-3, Qwen3: RMSNorm on each head's q and k (after the hooks, before rotary).
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
pub struct Fields<'a> {
    obj: &'a serde_json::Map<String, Value>,
    file: &'a str,
}

impl<'a> Fields<'a> {
    pub fn err(&self, field: &str, what: &str) -> ModelError {
        ModelError::Config {
            file: self.file.to_string(),
            msg: format!("field `{field}`: {what}"),
        }
    }
    pub fn get(&self, field: &str) -> Option<&'a Value> {
        self.obj.get(field).filter(|v| !v.is_null())
    }
    pub fn usize(&self, field: &str) -> Result<usize, ModelError> {
        self.opt_usize(field)?
            .ok_or_else(|| self.err(field, "missing (expected a positive integer)"))
    }
    pub fn opt_usize(&self, field: &str) -> Result<Option<usize>, ModelError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v.as_u64().map(|x| Some(x as usize)).ok_or_else(|| {
                self.err(field, &format!("expected a non-negative integer, got {v}"))
            }),
        }
    }
    pub fn f64(&self, field: &str) -> Result<f64, ModelError> {
        self.opt_f64(field)?
            .ok_or_else(|| self.err(field, "missing (expected a number)"))
    }
    pub fn opt_f64(&self, field: &str) -> Result<Option<f64>, ModelError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.err(field, &format!("expected a number, got {v}"))),
        }
    }
    pub fn opt_bool(&self, field: &str) -> Result<Option<bool>, ModelError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.err(field, &format!("expected true or false, got {v}"))),
        }
    }
    pub fn opt_str(&self, field: &str) -> Result<Option<&'a str>, ModelError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| self.err(field, &format!("expected a string, got {v}"))),
        }
    }
}

/// Where a family's `config.json` keeps the fields every family has.
pub struct Names {
    pub hidden: &'static str,
    pub heads: &'static str,
    pub layers: &'static str,
    pub mlp: &'static str,
    /// When set, a missing MLP width is this multiple of the hidden size (GPT-2's `n_inner`).
    pub mlp_default_factor: Option<usize>,
    pub eps: &'static str,
    pub max_pos: &'static str,
    pub act: &'static str,
    pub act_default: &'static str,
}

/// The names of Llama-style configs (most of Hugging Face's decoders).
pub const HF_NAMES: Names = Names {
    hidden: "hidden_size",
    heads: "num_attention_heads",
    layers: "num_hidden_layers",
    mlp: "intermediate_size",
    mlp_default_factor: None,
    eps: "rms_norm_eps",
    max_pos: "max_position_embeddings",
    act: "hidden_act",
    act_default: "silu",
};

/// A required size that must be positive; the error names `field`.
fn positive(f: &Fields, field: &str) -> Result<usize, ModelError> {
    match f.usize(field)? {
        0 => Err(f.err(field, "must be positive, got 0")),
        n => Ok(n),
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

    /// Builds the config from parsed `config.json` contents; `file` is used in errors. The
    /// family named by `model_type` reads the rest (see [`super::families`]).
    pub fn from_json(value: &Value, file: &str) -> Result<Self, ModelError> {
        let obj = value.as_object().ok_or_else(|| ModelError::Config {
            file: file.to_string(),
            msg: "expected a JSON object".into(),
        })?;
        let f = Fields { obj, file };
        let model_type = f
            .opt_str("model_type")?
            .ok_or_else(|| f.err("model_type", "missing"))?;
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
        let def = super::families::by_model_type(model_type).ok_or_else(|| {
            ModelError::UnsupportedModelType {
                model_type: model_type.to_string(),
                file: file.to_string(),
            }
        })?;
        def.config(&f)
    }

    /// The fields every family has, read under the names `names` gives, with the defaults of
    /// a Llama-style decoder (RMSNorm, sequential block, gated MLP, full rotary, no biases,
    /// untied embeddings); each family then changes what differs.
    pub fn base(f: &Fields, family: Family, names: &Names) -> Result<Self, ModelError> {
        let d_model = positive(f, names.hidden)?;
        let n_heads = positive(f, names.heads)?;
        let n_layers = positive(f, names.layers)?;
        let vocab_size = positive(f, "vocab_size")?;
        let n_kv_heads = f.opt_usize("num_key_value_heads")?.unwrap_or(n_heads);
        if n_kv_heads == 0 || n_heads % n_kv_heads != 0 {
            return Err(f.err(
                "num_key_value_heads",
                &format!("{n_kv_heads} does not divide {} = {n_heads}", names.heads),
            ));
        }
        let d_mlp = match names.mlp_default_factor {
            Some(k) => f.opt_usize(names.mlp)?.unwrap_or(k * d_model),
            None => f.usize(names.mlp)?,
        };
        let d_head = match f.opt_usize("head_dim")? {
            Some(d) => d,
            None if d_model % n_heads == 0 => d_model / n_heads,
            None => {
                return Err(f.err(
                    "head_dim",
                    &format!(
                        "missing and {} is not a multiple of {}",
                        names.hidden, names.heads
                    ),
                ))
            }
        };
        let act_name = f.opt_str(names.act)?.unwrap_or(names.act_default);
        let activation = Activation::parse(act_name).map_err(|m| f.err(names.act, &m))?;
        let checkpoint_dtype = f
            .opt_str("torch_dtype")?
            .or(f.opt_str("dtype")?)
            .map(|s| s.to_string());
        Ok(ModelConfig {
            family,
            n_layers,
            n_heads,
            n_kv_heads,
            d_model,
            d_head,
            d_mlp,
            vocab_size,
            norm_eps: f.opt_f64(names.eps)?.unwrap_or(1e-6),
            norm_kind: NormKind::Rms,
            block: BlockShape::Sequential,
            rotary_dim: d_head,
            pos_embed: false,
            gated_mlp: true,
            norm_plus_one: false,
            sandwich_norms: false,
            qk_norm: false,
            embed_scale: None,
            activation,
            attn_scale: 1.0 / (d_head as f64).sqrt(),
            attn_softcap: None,
            final_softcap: None,
            rope_global: RopeConfig {
                theta: f.opt_f64("rope_theta")?.unwrap_or(10000.0),
                scaling: Self::parse_rope_scaling(f, family == Family::Llama)?,
            },
            rope_local: None,
            sliding_window: None,
            layer_sliding: vec![false; n_layers],
            qkv_bias: false,
            o_bias: false,
            mlp_bias: false,
            tie_embeddings: f.opt_bool("tie_word_embeddings")?.unwrap_or(false),
            bos_token_id: f.opt_usize("bos_token_id")?.map(|x| x as u32),
            max_position_embeddings: f.opt_usize(names.max_pos)?.unwrap_or(8192),
            checkpoint_dtype,
        })
    }

    /// Checks what the forward pass relies on after the family has set its fields.
    pub fn validate(self, f: &Fields) -> Result<Self, ModelError> {
        if !self.rotary_dim.is_multiple_of(2) || self.rotary_dim > self.d_head {
            let what = if self.rotary_dim == self.d_head {
                format!(
                    "{} is odd; rotary embeddings need an even head size",
                    self.d_head
                )
            } else {
                format!(
                    "rotates {} of {} head dims; rotary embeddings need an even number, at most the head size",
                    self.rotary_dim, self.d_head
                )
            };
            return Err(f.err("head_dim", &what));
        }
        Ok(self)
    }

    fn parse_rope_scaling(f: &Fields, dynamic_ok: bool) -> Result<RopeScaling, ModelError> {
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
            "dynamic" if dynamic_ok => Ok(RopeScaling::None),
            other => Err(f.err(
                "rope_scaling.rope_type",
                &format!("unsupported rope scaling {other:?} (supported: default, linear, llama3)"),
            )),
        }
    }

    pub fn parse_layer_types(f: &Fields, n_layers: usize) -> Result<Option<Vec<bool>>, ModelError> {
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
        let e = ModelConfig::from_json(&base("bloom"), "x/config.json").unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("bloom") && m.contains("llama") && m.contains("x/config.json"),
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

    #[test]
    fn a_zero_size_names_its_own_field() {
        for field in [
            "num_hidden_layers",
            "num_attention_heads",
            "hidden_size",
            "vocab_size",
        ] {
            let mut v = base("llama");
            v[field] = serde_json::json!(0);
            let m = ModelConfig::from_json(&v, "c.json")
                .unwrap_err()
                .to_string();
            assert!(
                m.contains(&format!("`{field}`")) && m.contains("positive"),
                "{m}"
            );
            let others = ["num_hidden_layers", "num_attention_heads", "hidden_size"];
            for other in others.iter().filter(|o| **o != field) {
                assert!(!m.contains(other), "{field}: {m}");
            }
        }
    }
}
