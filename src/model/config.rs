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

pub use super::rope::{RopeConfig, RopeScaling};

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
    /// `eos_token_id` (one id or a list), for the tokenizer check.
    #[serde(default)]
    pub eos_token_ids: Vec<u32>,
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    pub max_position_embeddings: usize,
    /// The dtype the checkpoint was saved in (`torch_dtype`), informational.
    pub checkpoint_dtype: Option<String>,
    /// Config keys headhunt does not read, kept only when the user allowed them
    /// (`key = value`, recorded in results as a warning).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored_keys: Vec<String>,
}

/// Reads typed fields from a JSON object with errors that name the file and field, and
/// remembers which fields were read: a key that no reader asked for is a setting headhunt does
/// not implement (see [`ModelConfig::from_json`]).
pub struct Fields<'a> {
    obj: &'a serde_json::Map<String, Value>,
    file: &'a str,
    read: std::cell::RefCell<std::collections::BTreeSet<String>>,
}

impl<'a> Fields<'a> {
    pub fn new(obj: &'a serde_json::Map<String, Value>, file: &'a str) -> Self {
        Fields {
            obj,
            file,
            read: Default::default(),
        }
    }
    pub fn err(&self, field: &str, what: &str) -> ModelError {
        ModelError::Config {
            file: self.file.to_string(),
            msg: format!("field `{field}`: {what}"),
        }
    }
    /// The field's value; absent and `null` are both `None`.
    pub fn get(&self, field: &str) -> Option<&'a Value> {
        self.present(field).filter(|v| !v.is_null())
    }
    /// The field's value as written, `null` included (where `null` means "none" and absence
    /// means the family's default, as for Gemma-2's soft-caps or Mistral's window).
    pub fn present(&self, field: &str) -> Option<&'a Value> {
        self.read.borrow_mut().insert(field.to_string());
        self.obj.get(field)
    }
    /// A number that may be `null` (none); absent gives `default`.
    pub fn nullable_f64(
        &self,
        field: &str,
        default: Option<f64>,
    ) -> Result<Option<f64>, ModelError> {
        self.nullable(field, default, Self::opt_f64)
    }
    /// A size that may be `null` (none); absent gives `default`.
    pub fn nullable_usize(
        &self,
        field: &str,
        default: Option<usize>,
    ) -> Result<Option<usize>, ModelError> {
        self.nullable(field, default, Self::opt_usize)
    }
    /// A value that may be `null` (none), read by `read`; absent gives `default`.
    fn nullable<T>(
        &self,
        field: &str,
        default: Option<T>,
        read: fn(&Self, &str) -> Result<Option<T>, ModelError>,
    ) -> Result<Option<T>, ModelError> {
        match self.present(field) {
            None => Ok(default),
            Some(Value::Null) => Ok(None),
            Some(_) => read(self, field),
        }
    }
    /// Fields with a value that nothing read, in file order.
    pub fn unread(&self) -> Vec<(&'a str, &'a Value)> {
        let read = self.read.borrow();
        self.obj
            .iter()
            .filter(|(k, v)| !v.is_null() && !read.contains(k.as_str()))
            .map(|(k, v)| (k.as_str(), v))
            .collect()
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

/// Where a family's `config.json` keeps the fields every family has, and transformers'
/// defaults for those it may leave out (a field left out must mean what it means to
/// transformers, never a default of headhunt's own).
pub struct Names {
    pub hidden: &'static str,
    pub heads: &'static str,
    pub layers: &'static str,
    pub mlp: &'static str,
    /// When set, a missing MLP width is this multiple of the hidden size (GPT-2's `n_inner`).
    pub mlp_default_factor: Option<usize>,
    pub eps: &'static str,
    pub eps_default: f64,
    pub max_pos: &'static str,
    pub max_pos_default: usize,
    pub act: &'static str,
    pub act_default: &'static str,
    /// `head_dim` when absent; `None`: hidden size / heads.
    pub head_dim_default: Option<usize>,
    /// Where the rope settings live (`None`: no rotary embeddings, GPT-2).
    pub rope: Option<super::rope::RopeKeys>,
    /// Whether a `partial_rotary_factor` below 1 is implemented (GPT-NeoX's partial rotary).
    pub partial_rotary: bool,
}

/// The names and defaults of Llama-style configs (most of Hugging Face's decoders), with
/// `LlamaConfig`'s defaults.
pub const HF_NAMES: Names = Names {
    hidden: "hidden_size",
    heads: "num_attention_heads",
    layers: "num_hidden_layers",
    mlp: "intermediate_size",
    mlp_default_factor: None,
    eps: "rms_norm_eps",
    eps_default: 1e-6,
    max_pos: "max_position_embeddings",
    max_pos_default: 2048,
    act: "hidden_act",
    act_default: "silu",
    head_dim_default: None,
    rope: Some(super::rope::RopeKeys {
        theta_key: "rope_theta",
        default_theta: 10000.0,
        local: None,
    }),
    partial_rotary: false,
};

/// `int(head_dim * partial_rotary_factor)`, as transformers rounds it.
fn rotary_dims(f: &Fields, d_head: usize, p: f64) -> Result<usize, ModelError> {
    if !(0.0..=1.0).contains(&p) {
        return Err(f.err(
            "partial_rotary_factor",
            &format!("expected a fraction in [0, 1], got {p}"),
        ));
    }
    Ok((d_head as f64 * p) as usize)
}

/// A token id field that may hold one id or a list of them (`eos_token_id`); a negative id
/// (`-1`, some old configs' way to say none) is left out.
fn token_ids(f: &Fields, field: &str) -> Result<Vec<u32>, ModelError> {
    let bad = || f.err(field, "expected a token id or a list of token ids");
    let one = |v: &Value| -> Result<Option<u32>, ModelError> {
        match v.as_i64() {
            Some(x) if x < 0 => Ok(None),
            Some(x) => u32::try_from(x).map(Some).map_err(|_| bad()),
            None => Err(bad()),
        }
    };
    match f.get(field) {
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => Ok(a
            .iter()
            .map(one)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect()),
        Some(v) => Ok(one(v)?.into_iter().collect()),
    }
}

/// A required size that must be positive; the error names `field`.
fn positive(f: &Fields, field: &str) -> Result<usize, ModelError> {
    match f.usize(field)? {
        0 => Err(f.err(field, "must be positive, got 0")),
        n => Ok(n),
    }
}

impl ModelConfig {
    /// Reads a Hugging Face `config.json` (unknown keys are an error).
    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        Self::from_file_with(path, false)
    }

    /// [`ModelConfig::from_file`]; with `allow_unknown`, see [`ModelConfig::from_json_with`].
    pub fn from_file_with(path: &Path, allow_unknown: bool) -> Result<Self, ModelError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::Io {
            path: file.clone(),
            msg: e.to_string(),
        })?;
        let value: Value = serde_json::from_str(&text).map_err(|e| ModelError::Config {
            file: file.clone(),
            msg: format!("invalid JSON: {e}"),
        })?;
        Self::from_json_with(&value, &file, allow_unknown)
    }

    /// Builds the config from parsed `config.json` contents; `file` is used in errors. The
    /// family named by `model_type` reads the rest (see [`super::families`]). A key that neither
    /// the family reads nor is known to leave the numbers alone is an error
    /// ([`ModelError::UnknownConfigKey`]): a setting headhunt does not implement must never
    /// fall back to a default in silence.
    pub fn from_json(value: &Value, file: &str) -> Result<Self, ModelError> {
        Self::from_json_with(value, file, false)
    }

    /// [`ModelConfig::from_json`]; with `allow_unknown`, unknown keys are kept in
    /// `ignored_keys` instead (the caller records them as a warning).
    pub fn from_json_with(
        value: &Value,
        file: &str,
        allow_unknown: bool,
    ) -> Result<Self, ModelError> {
        let obj = value.as_object().ok_or_else(|| ModelError::Config {
            file: file.to_string(),
            msg: "expected a JSON object".into(),
        })?;
        let f = Fields::new(obj, file);
        let model_type = f
            .opt_str("model_type")?
            .ok_or_else(|| f.err("model_type", "missing"))?;
        // Multimodal Gemma-3 checkpoints nest the language model's config; the vision tower's
        // keys are not the language model's.
        if model_type == "gemma3" {
            if let Some(text) = obj.get("text_config") {
                let mut inner = text.clone();
                if let Some(o) = inner.as_object_mut() {
                    o.entry("model_type").or_insert(Value::from("gemma3_text"));
                }
                return Self::from_json_with(&inner, file, allow_unknown);
            }
        }
        let def = super::families::by_model_type(model_type).ok_or_else(|| {
            ModelError::UnsupportedModelType {
                model_type: model_type.to_string(),
                file: file.to_string(),
            }
        })?;
        let mut cfg = def.config(&f)?;
        let unknown: Vec<(&str, &Value)> = f
            .unread()
            .into_iter()
            .filter(|(k, _)| !super::config_keys::irrelevant(k, def.irrelevant_keys()))
            .collect();
        match unknown.first() {
            Some((key, value)) if !allow_unknown => Err(ModelError::UnknownConfigKey {
                file: file.to_string(),
                key: key.to_string(),
                value: super::rope::short(value),
                more: unknown.len() - 1,
            }),
            _ => {
                cfg.ignored_keys = unknown
                    .iter()
                    .map(|(k, v)| format!("{k} = {}", super::rope::short(v)))
                    .collect();
                Ok(cfg)
            }
        }
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
        let d_head = match f.opt_usize("head_dim")?.or(names.head_dim_default) {
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
        let max_pos = f.opt_usize(names.max_pos)?.unwrap_or(names.max_pos_default);
        let rope = match &names.rope {
            Some(keys) => super::rope::read(f, keys, max_pos)?,
            None => super::rope::RopeSet {
                global: RopeConfig::plain(10000.0),
                local: None,
                partial_rotary_factor: None,
            },
        };
        let rotary_dim = match (names.rope.is_some(), rope.partial_rotary_factor) {
            (false, _) => 0,
            (true, None) => d_head,
            (true, Some(p)) if names.partial_rotary || p == 1.0 => rotary_dims(f, d_head, p)?,
            (true, Some(p)) => {
                return Err(f.err(
                    "rope_parameters.partial_rotary_factor",
                    &format!("{p}: a partial rotary is not implemented for this family"),
                ))
            }
        };
        Ok(ModelConfig {
            family,
            n_layers,
            n_heads,
            n_kv_heads,
            d_model,
            d_head,
            d_mlp,
            vocab_size,
            norm_eps: f.opt_f64(names.eps)?.unwrap_or(names.eps_default),
            norm_kind: NormKind::Rms,
            block: BlockShape::Sequential,
            rotary_dim,
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
            rope_global: rope.global,
            rope_local: rope.local,
            sliding_window: None,
            layer_sliding: vec![false; n_layers],
            qkv_bias: false,
            o_bias: false,
            mlp_bias: false,
            tie_embeddings: f.opt_bool("tie_word_embeddings")?.unwrap_or(false),
            bos_token_id: token_ids(f, "bos_token_id")?.first().copied(),
            eos_token_ids: token_ids(f, "eos_token_id")?,
            pad_token_id: token_ids(f, "pad_token_id")?.first().copied(),
            max_position_embeddings: max_pos,
            checkpoint_dtype,
            ignored_keys: Vec::new(),
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
        for rope in std::iter::once(&self.rope_global).chain(&self.rope_local) {
            if let RopeScaling::LongRope {
                short_factor,
                long_factor,
                ..
            } = &rope.scaling
            {
                for (name, list) in [("short_factor", short_factor), ("long_factor", long_factor)] {
                    if list.len() != self.rotary_dim / 2 {
                        return Err(f.err(
                            &format!("rope_scaling.{name}"),
                            &format!(
                                "has {} factors, expected one per rotated frequency ({})",
                                list.len(),
                                self.rotary_dim / 2
                            ),
                        ));
                    }
                }
            }
        }
        Ok(self)
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

    /// Parameters of one decoder block and of everything outside the blocks (embedding,
    /// unembedding unless tied, learned positions, final norm), counted from the config's
    /// matrices: the memory estimate and the layer placement both weigh the weights by them.
    pub fn param_counts(&self) -> (usize, usize) {
        let (d, h, kv, dh) = (self.d_model, self.n_heads, self.n_kv_heads, self.d_head);
        let layer_norm = matches!(self.norm_kind, NormKind::Layer);
        // A norm's weight (and a LayerNorm's bias).
        let norm = |width: usize| width * if layer_norm { 2 } else { 1 };
        let attn = d * (h + 2 * kv) * dh
            + h * dh * d
            + if self.qkv_bias { (h + 2 * kv) * dh } else { 0 }
            + if self.o_bias { d } else { 0 }
            + if self.qk_norm { 2 * norm(dh) } else { 0 };
        let mlp = d * self.d_mlp * if self.gated_mlp { 3 } else { 2 }
            + if self.mlp_bias { self.d_mlp + d } else { 0 };
        let norms = norm(d) * if self.sandwich_norms { 4 } else { 2 };
        let embed = self.vocab_size * d;
        let globals = embed
            + if self.tie_embeddings { 0 } else { embed }
            + if self.pos_embed {
                self.max_position_embeddings * d
            } else {
                0
            }
            + norm(d);
        (attn + mlp + norms, globals)
    }

    /// The most tokens a prompt may have: `max_position_embeddings`, or for dynamic NTK rope
    /// (whose point is to run past it) `factor` times it.
    pub fn max_positions(&self) -> usize {
        match self.rope_global.scaling {
            RopeScaling::Dynamic { factor, .. } if self.rotary_dim > 0 => {
                (self.max_position_embeddings as f64 * factor.max(1.0)) as usize
            }
            _ => self.max_position_embeddings,
        }
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
        let a = rope.inv_freq(128, 1);
        let b = plain.inv_freq(128, 1);
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
