//! GPT-2: LayerNorm with biases, learned position embeddings, no rotary, an ungated gelu_new
//! MLP, tied embeddings, and `Conv1D` weights stored [in, out] with q, k and v fused in
//! `c_attn` (split and transposed here to the engine's [out, in] maps).

use super::super::config::{Fields, ModelConfig, Names, NormKind};
use super::super::transformer::{Globals, Layer, Proj};
use super::super::weights::WeightLoader;
use super::super::ModelError;
use super::{family_of, norm, FamilyDef};

pub struct Gpt2;

const GPT2_NAMES: Names = Names {
    hidden: "n_embd",
    heads: "n_head",
    layers: "n_layer",
    mlp: "n_inner",
    mlp_default_factor: Some(4),
    eps: "layer_norm_epsilon",
    eps_default: 1e-5,
    max_pos: "n_positions",
    max_pos_default: 1024,
    act: "activation_function",
    act_default: "gelu_new",
    head_dim_default: None,
    rope: None,
    partial_rotary: false,
};

/// Checkpoints saved from `GPT2LMHeadModel` prefix every tensor with `transformer.`; those
/// saved from `GPT2Model` (like the original `gpt2` on the Hub) do not.
fn prefix(w: &WeightLoader) -> &'static str {
    if w.has("wte.weight") && !w.has("transformer.wte.weight") {
        ""
    } else {
        "transformer."
    }
}

/// A `Conv1D` `{name}` ([in, out] weight and its bias) as a linear map, or its output columns
/// `part * out .. (part + 1) * out` of a fused one.
fn conv1d(w: &mut WeightLoader, name: &str, inp: usize, out: usize, parts: usize) -> Result<Vec<Proj>, ModelError> {
    let wt = w.get(&format!("{name}.weight"), &[inp, out * parts])?.t()?;
    let b = w.get(&format!("{name}.bias"), &[out * parts])?;
    (0..parts)
        .map(|i| {
            Ok(Proj {
                w: wt.narrow(0, i * out, out)?.contiguous()?,
                b: Some(b.narrow(0, i * out, out)?.contiguous()?),
            })
        })
        .collect()
}

impl FamilyDef for Gpt2 {
    fn name(&self) -> &'static str {
        "gpt2"
    }
    fn model_types(&self) -> &'static [&'static str] {
        &["gpt2"]
    }
    fn layers_key(&self) -> &'static str {
        GPT2_NAMES.layers
    }
    fn config(&self, f: &Fields) -> Result<ModelConfig, ModelError> {
        let mut cfg = ModelConfig::base(f, family_of(self), &GPT2_NAMES)?;
        if f.opt_bool("scale_attn_by_inverse_layer_idx")?.unwrap_or(false) {
            return Err(f.err("scale_attn_by_inverse_layer_idx", "true is not supported"));
        }
        if !f.opt_bool("scale_attn_weights")?.unwrap_or(true) {
            cfg.attn_scale = 1.0;
        }
        if cfg.n_kv_heads != cfg.n_heads || cfg.d_head * cfg.n_heads != cfg.d_model {
            return Err(f.err("n_head", "GPT-2 needs n_embd = n_head × head size, no grouping"));
        }
        if !f.opt_bool("tie_word_embeddings")?.unwrap_or(true) {
            return Err(f.err("tie_word_embeddings", "false is not supported (GPT-2 ties its unembedding to its embedding)"));
        }
        cfg.norm_kind = NormKind::Layer;
        cfg.rotary_dim = 0;
        cfg.pos_embed = true;
        cfg.gated_mlp = false;
        cfg.qkv_bias = true;
        cfg.o_bias = true;
        cfg.mlp_bias = true;
        cfg.tie_embeddings = true;
        cfg.validate(f)
    }
    fn irrelevant_keys(&self) -> &'static [&'static str] {
        &[
            // The legacy context size (n_positions is the one used), and the settings of
            // GPT2DoubleHeadsModel's classification head.
            "n_ctx",
            "summary_type",
            "summary_use_proj",
            "summary_activation",
            "summary_proj_to_labels",
            "summary_first_dropout",
            // Upcasts attention to f32 in half precision; the same numbers in f32.
            "reorder_and_upcast_attn",
        ]
    }
    fn globals(&self, w: &mut WeightLoader, cfg: &ModelConfig) -> Result<Globals, ModelError> {
        let p = prefix(w);
        let (v, d) = (cfg.vocab_size, cfg.d_model);
        let embed = w.get(&format!("{p}wte.weight"), &[v, d])?;
        let pos = w.get(&format!("{p}wpe.weight"), &[cfg.max_position_embeddings, d])?;
        Ok(Globals {
            unembed: embed.clone(),
            embed,
            pos_embed: Some(pos),
            final_norm: norm(w, cfg, &format!("{p}ln_f"), d)?,
        })
    }
    fn layer(&self, w: &mut WeightLoader, cfg: &ModelConfig, l: usize) -> Result<Layer, ModelError> {
        let (d, f) = (cfg.d_model, cfg.d_mlp);
        let p = format!("{}h.{l}", prefix(w));
        let mut qkv = conv1d(w, &format!("{p}.attn.c_attn"), d, d, 3)?.into_iter();
        let mut next = || qkv.next().expect("three parts");
        let (q, k, v) = (next(), next(), next());
        let one = |w: &mut WeightLoader, name: &str, inp, out| -> Result<Proj, ModelError> {
            Ok(conv1d(w, &format!("{p}.{name}"), inp, out, 1)?.remove(0))
        };
        Ok(Layer {
            attn_norm: norm(w, cfg, &format!("{p}.ln_1"), d)?,
            q,
            k,
            v,
            o: one(w, "attn.c_proj", d, d)?,
            q_norm: None,
            k_norm: None,
            post_attn_norm: None,
            mlp_norm: norm(w, cfg, &format!("{p}.ln_2"), d)?,
            post_mlp_norm: None,
            gate: None,
            up: one(w, "mlp.c_fc", d, f)?,
            down: one(w, "mlp.c_proj", f, d)?,
        })
    }
}
