//! Model families: one file each, registered in one place ([`REGISTRY`], via `registry!`).
//!
//! A family says everything that differs between architectures: how its `config.json` reads
//! into a [`ModelConfig`] (norm kind, block shape, rotary layout, attention scale, caps,
//! biases), where its checkpoint keeps each tensor (Hugging Face names, and llama.cpp's GGUF
//! names and metadata where GGUF files are read), and how fused tensors split. The engine
//! (`transformer.rs`) never matches on a family; the fast algorithm asks the model for its
//! block shape.
//!
//! To add a family: write `families/NAME.rs` with a unit struct implementing [`FamilyDef`]
//! and add `NAME::{Struct},` to the `registry!` list below (README: "Adding a model family").

use candle_core::{DType, Tensor};
use serde_json::{Map, Value};

use super::config::{Fields, ModelConfig, NormKind};
use super::gguf::GgufFile;
use super::transformer::{Globals, Layer, Norm, Proj};
use super::weights::WeightLoader;
use super::ModelError;

type Result<T> = std::result::Result<T, ModelError>;

/// One model family.
pub(in crate::model) trait FamilyDef: Sync {
    /// The name result files record (`ModelInfo.family`): never change it.
    fn name(&self) -> &'static str;
    /// The `model_type` values of `config.json` this family reads (the first is canonical).
    fn model_types(&self) -> &'static [&'static str];
    /// The config, from `config.json`'s fields (start from [`ModelConfig::base`]). Read every
    /// key the family knows, even where its value is the default, or list it in
    /// [`FamilyDef::irrelevant_keys`]: an unread key stops loading.
    fn config(&self, f: &Fields) -> Result<ModelConfig>;
    /// Keys of this family's configs that do not change its numbers (beside
    /// `config_keys::COMMON`).
    fn irrelevant_keys(&self) -> &'static [&'static str] {
        &[]
    }
    /// The `config.json` key of the layer count (for the error of a checkpoint with more
    /// layers than the config says).
    fn layers_key(&self) -> &'static str {
        "num_hidden_layers"
    }
    /// Embeddings, final norm and unembedding.
    fn globals(&self, w: &mut WeightLoader, cfg: &ModelConfig) -> Result<Globals>;
    /// The weights of block `l`.
    fn layer(&self, w: &mut WeightLoader, cfg: &ModelConfig, l: usize) -> Result<Layer>;
    /// llama.cpp's `general.architecture` for this family, if GGUF files are read.
    fn gguf_arch(&self) -> Option<&'static str> {
        None
    }
    /// Family-specific `config.json` fields from a GGUF file's metadata (`o` already holds the
    /// common ones).
    fn gguf_config(&self, _f: &GgufFile, _o: &mut Map<String, Value>) -> Result<()> {
        Ok(())
    }
    /// The GGUF name of a tensor this family loads under the Hugging Face name `hf`.
    fn gguf_name(&self, _hf: &str) -> Option<String> {
        None
    }
    /// Undoes what llama.cpp's converter did to tensor `gguf` (permuted rows, shifted norms).
    fn gguf_tensor(&self, _gguf: &str, t: Tensor, _cfg: &ModelConfig) -> Result<Tensor> {
        Ok(t)
    }
}

/// Declares the family modules and the registry in one list: one line per family file.
macro_rules! registry {
    ($($module:ident :: { $($def:ident),+ }),* $(,)?) => {
        $(mod $module;)*
        /// Every family headhunt runs, in the order error messages list them.
        static REGISTRY: &[&dyn FamilyDef] = &[$($(&$module::$def),+),*];
    };
}

registry! {
    gemma::{Gemma2, Gemma3},
    gpt2::{Gpt2},
    gpt_neox::{GptNeox},
    llama::{Llama},
    mistral::{Mistral},
    qwen2::{Qwen2},
    qwen3::{Qwen3},
}

/// The family recorded under `name`.
pub(in crate::model) fn by_name(name: &str) -> Option<&'static dyn FamilyDef> {
    REGISTRY.iter().copied().find(|d| d.name() == name)
}

/// The family of a `config.json` `model_type`.
pub(in crate::model) fn by_model_type(t: &str) -> Option<&'static dyn FamilyDef> {
    REGISTRY
        .iter()
        .copied()
        .find(|d| d.model_types().contains(&t))
}

/// The family of a GGUF `general.architecture`.
pub(in crate::model) fn by_gguf_arch(arch: &str) -> Option<&'static dyn FamilyDef> {
    REGISTRY
        .iter()
        .copied()
        .find(|d| d.gguf_arch() == Some(arch))
}

/// Every family's name.
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|d| d.name()).collect()
}

/// Every accepted `model_type` (for error messages).
pub fn model_types() -> Vec<&'static str> {
    REGISTRY
        .iter()
        .flat_map(|d| d.model_types().iter().copied())
        .collect()
}

/// Every GGUF architecture read (for error messages).
pub fn gguf_archs() -> Vec<&'static str> {
    REGISTRY.iter().filter_map(|d| d.gguf_arch()).collect()
}

/// The family handle for a definition (families build their configs with it).
fn family_of(def: &dyn FamilyDef) -> super::Family {
    super::Family::new(def.name())
}

// ---- Loading helpers the family files share ----

/// A norm `{prefix}.weight` (+ `{prefix}.bias` for LayerNorm) of `size`, kept in f32.
fn norm(w: &mut WeightLoader, cfg: &ModelConfig, prefix: &str, size: usize) -> Result<Norm> {
    let t = w.get_as(&format!("{prefix}.weight"), &[size], DType::F32)?;
    let weight = if cfg.norm_plus_one { (t + 1.0)? } else { t };
    let bias = match cfg.norm_kind {
        NormKind::Rms => None,
        NormKind::Layer => Some(w.get_as(&format!("{prefix}.bias"), &[size], DType::F32)?),
    };
    Ok(Norm {
        weight,
        bias,
        eps: cfg.norm_eps as f32,
    })
}

/// A linear map `{name}.weight` [out, in] (PyTorch's `nn.Linear`), with `{name}.bias` if `bias`.
fn linear(w: &mut WeightLoader, name: &str, out: usize, inp: usize, bias: bool) -> Result<Proj> {
    let wt = w.get(&format!("{name}.weight"), &[out, inp])?;
    let b = if bias {
        Some(w.get(&format!("{name}.bias"), &[out])?)
    } else {
        None
    };
    Ok(Proj { w: wt, b })
}

/// The block of a Llama-style checkpoint (`model.layers.{l}.self_attn.q_proj` ...), with
/// Gemma's sandwich norms and Qwen3/Gemma-3's q/k norms where the config has them.
fn llama_layer(w: &mut WeightLoader, cfg: &ModelConfig, l: usize) -> Result<Layer> {
    let (d, h, kv, dh, f) = (
        cfg.d_model,
        cfg.n_heads,
        cfg.n_kv_heads,
        cfg.d_head,
        cfg.d_mlp,
    );
    let p = format!("model.layers.{l}");
    let a = format!("{p}.self_attn");
    let sandwich = cfg.sandwich_norms;
    let opt_norm = |w: &mut WeightLoader, on: bool, name: String, size: usize| {
        on.then(|| norm(w, cfg, &name, size)).transpose()
    };
    let mlp_norm = if sandwich {
        "pre_feedforward_layernorm"
    } else {
        "post_attention_layernorm"
    };
    Ok(Layer {
        attn_norm: norm(w, cfg, &format!("{p}.input_layernorm"), d)?,
        q: linear(w, &format!("{a}.q_proj"), h * dh, d, cfg.qkv_bias)?,
        k: linear(w, &format!("{a}.k_proj"), kv * dh, d, cfg.qkv_bias)?,
        v: linear(w, &format!("{a}.v_proj"), kv * dh, d, cfg.qkv_bias)?,
        o: linear(w, &format!("{a}.o_proj"), d, h * dh, cfg.o_bias)?,
        q_norm: opt_norm(w, cfg.qk_norm, format!("{a}.q_norm"), dh)?,
        k_norm: opt_norm(w, cfg.qk_norm, format!("{a}.k_norm"), dh)?,
        post_attn_norm: opt_norm(w, sandwich, format!("{p}.post_attention_layernorm"), d)?,
        mlp_norm: norm(w, cfg, &format!("{p}.{mlp_norm}"), d)?,
        post_mlp_norm: opt_norm(w, sandwich, format!("{p}.post_feedforward_layernorm"), d)?,
        gate: Some(linear(
            w,
            &format!("{p}.mlp.gate_proj"),
            f,
            d,
            cfg.mlp_bias,
        )?),
        up: linear(w, &format!("{p}.mlp.up_proj"), f, d, cfg.mlp_bias)?,
        down: linear(w, &format!("{p}.mlp.down_proj"), d, f, cfg.mlp_bias)?,
    })
}

/// Embeddings, final norm and unembedding of a Llama-style checkpoint.
fn llama_globals(w: &mut WeightLoader, cfg: &ModelConfig) -> Result<Globals> {
    let (v, d) = (cfg.vocab_size, cfg.d_model);
    let embed = w.get("model.embed_tokens.weight", &[v, d])?;
    let final_norm = norm(w, cfg, "model.norm", d)?;
    let unembed = if cfg.tie_embeddings {
        embed.clone()
    } else {
        w.get("lm_head.weight", &[v, d])?
    };
    Ok(Globals {
        embed,
        pos_embed: None,
        final_norm,
        unembed,
    })
}

/// llama.cpp's name for a Llama-style tensor (`gemma`: Gemma's post-attention norm is its
/// own tensor, not the MLP's pre-norm).
fn llama_gguf_name(hf: &str, gemma: bool) -> Option<String> {
    match hf {
        "model.embed_tokens.weight" => return Some("token_embd.weight".into()),
        "model.norm.weight" => return Some("output_norm.weight".into()),
        "lm_head.weight" => return Some("output.weight".into()),
        _ => {}
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, suffix) = match rest.rsplit_once('.') {
        Some((m, s @ ("weight" | "bias"))) => (m, s),
        _ => return None,
    };
    let g = match module {
        "input_layernorm" => "attn_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "self_attn.q_norm" => "attn_q_norm",
        "self_attn.k_norm" => "attn_k_norm",
        "post_attention_layernorm" if gemma => "post_attention_norm",
        "post_attention_layernorm" => "ffn_norm",
        "pre_feedforward_layernorm" => "ffn_norm",
        "post_feedforward_layernorm" => "post_ffw_norm",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        _ => return None,
    };
    Some(format!("blk.{layer}.{g}.{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_model_types_are_unique_and_the_old_constants_registered() {
        let names = names();
        let types = model_types();
        let mut n = names.clone();
        n.sort();
        n.dedup();
        assert_eq!(n.len(), names.len());
        let mut t = types.clone();
        t.sort();
        t.dedup();
        assert_eq!(t.len(), types.len());
        use super::super::Family;
        for f in [
            Family::Gemma2,
            Family::Gemma3,
            Family::Llama,
            Family::Mistral,
            Family::Qwen2,
        ] {
            assert!(by_name(f.name()).is_some(), "{f}");
        }
    }

    #[test]
    fn llama_names_map_to_gguf() {
        assert_eq!(
            llama_gguf_name("model.layers.3.self_attn.q_proj.bias", false).unwrap(),
            "blk.3.attn_q.bias"
        );
        assert_eq!(
            llama_gguf_name("model.layers.0.post_attention_layernorm.weight", false).unwrap(),
            "blk.0.ffn_norm.weight"
        );
        assert_eq!(
            llama_gguf_name("model.layers.0.post_attention_layernorm.weight", true).unwrap(),
            "blk.0.post_attention_norm.weight"
        );
        assert_eq!(
            llama_gguf_name("model.layers.17.self_attn.k_norm.weight", true).unwrap(),
            "blk.17.attn_k_norm.weight"
        );
        assert_eq!(
            llama_gguf_name("model.layers.x.mlp.up_proj.weight", false),
            None
        );
    }
}
