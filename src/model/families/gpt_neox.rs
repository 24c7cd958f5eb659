//! GPT-NeoX (Pythia): LayerNorm with biases, attention and MLP in parallel
//! (`use_parallel_residual`; false gives the sequential block), rotary on the first
//! `rotary_pct` of each head's dims (rotate-half), exact gelu, an ungated MLP, and q, k, v
//! fused per head in `query_key_value` (rows [head, q|k|v, dh]).

use candle_core::Tensor;

use super::super::config::{BlockShape, Fields, ModelConfig, Names, NormKind, HF_NAMES};
use super::super::transformer::{Globals, Layer, Proj};
use super::super::weights::WeightLoader;
use super::super::ModelError;
use super::{family_of, linear, norm, FamilyDef};

pub struct GptNeox;

/// `GPTNeoXConfig`'s names and defaults.
const NEOX_NAMES: Names = Names {
    eps: "layer_norm_eps",
    eps_default: 1e-5,
    act_default: "gelu",
    partial_rotary: true,
    ..HF_NAMES
};

/// The rotated fraction of each head: `rotary_pct` and `partial_rotary_factor` (transformers
/// 4 writes both) or `rope_parameters.partial_rotary_factor` (transformers 5); where several
/// are given they must agree. transformers' default is 0.25.
fn rotary_fraction(f: &Fields) -> Result<(f64, &'static str), ModelError> {
    let nested = f
        .get("rope_parameters")
        .and_then(|r| r.get("partial_rotary_factor"))
        .and_then(|v| v.as_f64());
    let mut given: Vec<(&'static str, f64)> = Vec::new();
    for key in ["partial_rotary_factor", "rotary_pct"] {
        if let Some(p) = f.opt_f64(key)? {
            given.push((key, p));
        }
    }
    if let Some(p) = nested {
        given.push(("rope_parameters.partial_rotary_factor", p));
    }
    if let Some((k, p)) = given.iter().find(|(_, p)| *p != given[0].1) {
        return Err(f.err(k, &format!("{p} disagrees with {} = {}", given[0].0, given[0].1)));
    }
    Ok(given.first().map_or((0.25, "rotary_pct"), |(k, p)| (*p, *k)))
}

/// The rotary base: `rope_theta` / `rope_parameters` (read by `ModelConfig::base`) and the
/// older `rotary_emb_base` must agree where both are given.
fn rotary_base(f: &Fields, cfg: &mut ModelConfig) -> Result<(), ModelError> {
    let newer = f.get("rope_theta").is_some() || f.get("rope_parameters").is_some();
    if let Some(base) = f.opt_f64("rotary_emb_base")? {
        if !newer {
            cfg.rope_global.theta = base;
        } else if base != cfg.rope_global.theta {
            let what = format!("{base} disagrees with the rope base {}", cfg.rope_global.theta);
            return Err(f.err("rotary_emb_base", &what));
        }
    }
    Ok(())
}

/// Which of q, k, v (0, 1, 2) of a per-head fused tensor whose first dim is [H, 3, dh].
fn unfuse(t: &Tensor, h: usize, dh: usize, which: usize) -> Result<Tensor, ModelError> {
    let mut dims = t.dims().to_vec();
    let rest: usize = dims[1..].iter().product();
    let part = t
        .reshape((h, 3, dh, rest))?
        .narrow(1, which, 1)?
        .contiguous()?;
    dims[0] = h * dh;
    Ok(part.reshape(dims)?)
}

impl FamilyDef for GptNeox {
    fn name(&self) -> &'static str {
        "gpt_neox"
    }
    fn model_types(&self) -> &'static [&'static str] {
        &["gpt_neox"]
    }
    fn config(&self, f: &Fields) -> Result<ModelConfig, ModelError> {
        let mut cfg = ModelConfig::base(f, family_of(self), &NEOX_NAMES)?;
        if cfg.n_kv_heads != cfg.n_heads || cfg.d_head * cfg.n_heads != cfg.d_model {
            let what = "GPT-NeoX needs hidden_size = num_attention_heads × head size";
            return Err(f.err("num_attention_heads", what));
        }
        cfg.norm_kind = NormKind::Layer;
        if f.opt_bool("use_parallel_residual")?.unwrap_or(true) {
            cfg.block = BlockShape::Parallel;
        }
        let (pct, pct_field) = rotary_fraction(f)?;
        if !(0.0..=1.0).contains(&pct) {
            return Err(f.err(pct_field, &format!("expected a fraction in [0, 1], got {pct}")));
        }
        // Hugging Face: int(head_size * rotary_pct).
        cfg.rotary_dim = (cfg.d_head as f64 * pct) as usize;
        if cfg.rotary_dim % 2 != 0 {
            let what = format!(
                "{pct} of head size {} rotates {} dims; rotate-half needs an even number",
                cfg.d_head, cfg.rotary_dim
            );
            return Err(f.err(pct_field, &what));
        }
        rotary_base(f, &mut cfg)?;
        let bias = f.opt_bool("attention_bias")?.unwrap_or(true);
        cfg.qkv_bias = bias;
        cfg.o_bias = bias;
        cfg.mlp_bias = true;
        cfg.gated_mlp = false;
        cfg.validate(f)
    }
    fn globals(&self, w: &mut WeightLoader, cfg: &ModelConfig) -> Result<Globals, ModelError> {
        let (v, d) = (cfg.vocab_size, cfg.d_model);
        let embed = w.get("gpt_neox.embed_in.weight", &[v, d])?;
        let unembed = if cfg.tie_embeddings {
            embed.clone()
        } else {
            w.get("embed_out.weight", &[v, d])?
        };
        Ok(Globals {
            embed,
            pos_embed: None,
            final_norm: norm(w, cfg, "gpt_neox.final_layer_norm", d)?,
            unembed,
        })
    }
    fn layer(&self, w: &mut WeightLoader, cfg: &ModelConfig, l: usize) -> Result<Layer, ModelError> {
        let (d, h, dh, f) = (cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp);
        let p = format!("gpt_neox.layers.{l}");
        let qkv = linear(w, &format!("{p}.attention.query_key_value"), 3 * d, d, cfg.qkv_bias)?;
        let part = |which: usize| -> Result<Proj, ModelError> {
            Ok(Proj {
                w: unfuse(&qkv.w, h, dh, which)?,
                b: qkv.b.as_ref().map(|b| unfuse(b, h, dh, which)).transpose()?,
            })
        };
        Ok(Layer {
            attn_norm: norm(w, cfg, &format!("{p}.input_layernorm"), d)?,
            q: part(0)?,
            k: part(1)?,
            v: part(2)?,
            o: linear(w, &format!("{p}.attention.dense"), d, d, cfg.o_bias)?,
            q_norm: None,
            k_norm: None,
            post_attn_norm: None,
            mlp_norm: norm(w, cfg, &format!("{p}.post_attention_layernorm"), d)?,
            post_mlp_norm: None,
            gate: None,
            up: linear(w, &format!("{p}.mlp.dense_h_to_4h"), f, d, true)?,
            down: linear(w, &format!("{p}.mlp.dense_4h_to_h"), d, f, true)?,
        })
    }
}
