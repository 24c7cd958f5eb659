//! A differentiable Llama-shaped decoder for training the demo model.
//!
//! The engine's forward (`model::transformer`) uses fused candle ops without a backward pass
//! (RMSNorm, rotary embeddings, softmax); this one writes the same maths with plain tensor ops so
//! that candle's autograd can train it. Parameters live in a [`VarMap`] under the names of Hugging
//! Face Llama checkpoints, so the saved safetensors load in the engine unchanged (a test checks
//! that both forwards give the same logits).

use candle_core::{DType, Device, Result, Tensor, D};
use candle_nn::{Init, VarBuilder, VarMap};
use rand::Rng;

use crate::model::config::{RopeConfig, RopeScaling};

/// The shape of the demo model (a Llama config).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NetConfig {
    pub n_layers: usize,
    pub n_heads: usize,
    pub d_model: usize,
    pub d_mlp: usize,
    pub vocab_size: usize,
    pub rope_theta: f64,
    pub norm_eps: f64,
    pub max_positions: usize,
}

impl NetConfig {
    pub fn d_head(&self) -> usize {
        self.d_model / self.n_heads
    }

    /// The shape of a loaded Llama model (None for other families or shapes this training
    /// model does not cover: grouped KV heads, biases, tied embeddings, rope scaling).
    pub fn from_model_config(c: &crate::model::ModelConfig) -> Option<Self> {
        let plain = c.family == crate::model::Family::Llama
            && c.n_kv_heads == c.n_heads
            && c.d_head * c.n_heads == c.d_model
            && !c.qkv_bias
            && !c.o_bias
            && !c.mlp_bias
            && !c.tie_embeddings
            && c.rope_global.scaling == RopeScaling::None
            && c.activation == crate::model::config::Activation::Silu;
        plain.then_some(NetConfig {
            n_layers: c.n_layers,
            n_heads: c.n_heads,
            d_model: c.d_model,
            d_mlp: c.d_mlp,
            vocab_size: c.vocab_size,
            rope_theta: c.rope_global.theta,
            norm_eps: c.norm_eps,
            max_positions: c.max_position_embeddings,
        })
    }

    /// The Hugging Face `config.json` of this shape (model_type llama, untied embeddings).
    pub fn hf_config(&self) -> serde_json::Value {
        serde_json::json!({
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "attention_bias": false,
            "attention_dropout": 0.0,
            "bos_token_id": super::task::BOS,
            "eos_token_id": super::task::EOS,
            "pad_token_id": super::task::PAD,
            "head_dim": self.d_head(),
            "hidden_act": "silu",
            "hidden_size": self.d_model,
            "initializer_range": 0.02,
            "intermediate_size": self.d_mlp,
            "max_position_embeddings": self.max_positions,
            "mlp_bias": false,
            "num_attention_heads": self.n_heads,
            "num_hidden_layers": self.n_layers,
            "num_key_value_heads": self.n_heads,
            "pretraining_tp": 1,
            "rms_norm_eps": self.norm_eps,
            "rope_scaling": null,
            "rope_theta": self.rope_theta,
            "tie_word_embeddings": false,
            "torch_dtype": "float32",
            "vocab_size": self.vocab_size
        })
    }
}

struct Block {
    attn_norm: Tensor,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    o: Tensor,
    mlp_norm: Tensor,
    gate: Tensor,
    up: Tensor,
    down: Tensor,
}

/// The trainable model. Its tensors are the [`VarMap`]'s variables.
pub struct Net {
    pub cfg: NetConfig,
    embed: Tensor,
    blocks: Vec<Block>,
    final_norm: Tensor,
    lm_head: Tensor,
    device: Device,
}

/// `x W^T` for x [.., in] and W [out, in].
fn linear(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let last = *dims.last().unwrap();
    let rows: usize = dims[..dims.len() - 1].iter().product();
    let y = x.reshape((rows, last))?.matmul(&w.t()?)?;
    let mut out = dims;
    *out.last_mut().unwrap() = w.dim(0)?;
    y.reshape(out)
}

/// RMSNorm over the last dimension, as Llama computes it (in f32).
fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    let d = x.dim(D::Minus1)? as f64;
    let ms = (x.sqr()?.sum_keepdim(D::Minus1)? / d)?;
    x.broadcast_div(&(ms + eps)?.sqrt()?)?.broadcast_mul(w)
}

/// Rotary embedding (the "rotate half" layout of Hugging Face and candle's `rope`) of x
/// [B, H, T, dh] with cos, sin [T, dh].
fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let dh = x.dim(D::Minus1)?;
    let x1 = x.narrow(D::Minus1, 0, dh / 2)?;
    let x2 = x.narrow(D::Minus1, dh / 2, dh / 2)?;
    let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
    x.broadcast_mul(cos)? + rotated.broadcast_mul(sin)?
}

/// A standard normal number (Box-Muller).
fn gaussian(rng: &mut impl Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

impl Net {
    /// A fresh model with random weights in `vars`, drawn from `rng` (candle's own CPU random
    /// numbers cannot be seeded).
    pub fn new(
        cfg: &NetConfig,
        vars: &VarMap,
        rng: &mut impl Rng,
        device: &Device,
    ) -> Result<Self> {
        let vb = VarBuilder::from_varmap(vars, DType::F32, device);
        let (d, f, v) = (cfg.d_model, cfg.d_mlp, cfg.vocab_size);
        // Residual-writing projections start smaller so that the stream's scale does not grow
        // with depth.
        let out_scale = 1.0 / (2.0 * cfg.n_layers as f64).sqrt();
        // A variable of `shape` named `name`: ones for norms (std None), else normal with
        // standard deviation `scale / sqrt(fan_in)` (fan_in = the last dimension).
        let mut var = |name: String, shape: &[usize], scale: Option<f64>| -> Result<Tensor> {
            let t = vb.get_with_hints(shape, &name, Init::Const(1.0))?;
            if let Some(scale) = scale {
                let std = scale / (*shape.last().unwrap() as f64).sqrt();
                let n: usize = shape.iter().product();
                let values: Vec<f32> = (0..n).map(|_| (gaussian(rng) * std) as f32).collect();
                let init = Tensor::from_vec(values, shape, device)?;
                let data = vars.data().lock().unwrap();
                data.get(&name).expect("just created").set(&init)?;
            }
            Ok(t)
        };
        let embed = var(
            "model.embed_tokens.weight".into(),
            &[v, d],
            Some((d as f64).sqrt()),
        )?;
        let mut blocks = Vec::new();
        for l in 0..cfg.n_layers {
            let p = |s: &str| format!("model.layers.{l}.{s}");
            blocks.push(Block {
                attn_norm: var(p("input_layernorm.weight"), &[d], None)?,
                q: var(p("self_attn.q_proj.weight"), &[d, d], Some(1.0))?,
                k: var(p("self_attn.k_proj.weight"), &[d, d], Some(1.0))?,
                v: var(p("self_attn.v_proj.weight"), &[d, d], Some(1.0))?,
                o: var(p("self_attn.o_proj.weight"), &[d, d], Some(out_scale))?,
                mlp_norm: var(p("post_attention_layernorm.weight"), &[d], None)?,
                gate: var(p("mlp.gate_proj.weight"), &[f, d], Some(1.0))?,
                up: var(p("mlp.up_proj.weight"), &[f, d], Some(1.0))?,
                down: var(p("mlp.down_proj.weight"), &[d, f], Some(out_scale))?,
            });
        }
        let final_norm = var("model.norm.weight".into(), &[d], None)?;
        let lm_head = var("lm_head.weight".into(), &[v, d], Some(1.0))?;
        Ok(Net {
            cfg: cfg.clone(),
            embed,
            blocks,
            final_norm,
            lm_head,
            device: device.clone(),
        })
    }

    /// The model saved in `weights` (a model.safetensors written by training).
    pub fn load(
        cfg: &NetConfig,
        weights: &std::path::Path,
        device: &Device,
    ) -> Result<(VarMap, Net)> {
        use rand::SeedableRng;
        let mut vars = VarMap::new();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let net = Net::new(cfg, &vars, &mut rng, device)?;
        vars.load(weights)?;
        Ok((vars, net))
    }

    /// cos and sin [T, d_head] for positions 0..T, computed exactly like the engine.
    fn rope_tables(&self, t: usize) -> Result<(Tensor, Tensor)> {
        let rope = RopeConfig {
            theta: self.cfg.rope_theta,
            scaling: RopeScaling::None,
        };
        let inv = rope.inv_freq(self.cfg.d_head(), t);
        let (mut cos, mut sin) = (Vec::new(), Vec::new());
        for p in 0..t {
            for _ in 0..2 {
                for &f in &inv {
                    let a = p as f32 * f;
                    cos.push(a.cos());
                    sin.push(a.sin());
                }
            }
        }
        let shape = (t, self.cfg.d_head());
        Ok((
            Tensor::from_vec(cos, shape, &self.device)?,
            Tensor::from_vec(sin, shape, &self.device)?,
        ))
    }

    /// The final normed residual stream [B, T, D] of token ids [B, T].
    pub fn hidden(&self, tokens: &Tensor) -> Result<Tensor> {
        let (b, t) = tokens.dims2()?;
        let (h, d) = (self.cfg.n_heads, self.cfg.d_model);
        let dh = self.cfg.d_head();
        let eps = self.cfg.norm_eps;
        let (cos, sin) = self.rope_tables(t)?;
        let mask: Vec<f32> = (0..t)
            .flat_map(|i| (0..t).map(move |j| if j <= i { 0.0 } else { f32::NEG_INFINITY }))
            .collect();
        let mask = Tensor::from_vec(mask, (t, t), &self.device)?;
        let scale = 1.0 / (dh as f64).sqrt();
        let mut x = self
            .embed
            .index_select(&tokens.flatten_all()?, 0)?
            .reshape((b, t, d))?;
        for blk in &self.blocks {
            let n = rms_norm(&x, &blk.attn_norm, eps)?;
            let heads = |w: &Tensor| -> Result<Tensor> {
                linear(&n, w)?
                    .reshape((b, t, h, dh))?
                    .transpose(1, 2)?
                    .contiguous()
            };
            let q = rope(&heads(&blk.q)?, &cos, &sin)?;
            let k = rope(&heads(&blk.k)?, &cos, &sin)?;
            let v = heads(&blk.v)?;
            let scores = (q.matmul(&k.t()?.contiguous()?)? * scale)?.broadcast_add(&mask)?;
            let p = candle_nn::ops::softmax(&scores, D::Minus1)?;
            let z = p
                .matmul(&v)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((b, t, d))?;
            x = (x + linear(&z, &blk.o)?)?;
            let n = rms_norm(&x, &blk.mlp_norm, eps)?;
            let a = (linear(&n, &blk.gate)?.silu()? * linear(&n, &blk.up)?)?;
            x = (&x + linear(&a, &blk.down)?)?;
        }
        rms_norm(&x, &self.final_norm, eps)
    }

    /// Logits [B, T, vocab].
    pub fn forward(&self, tokens: &Tensor) -> Result<Tensor> {
        linear(&self.hidden(tokens)?, &self.lm_head)
    }

    /// Logits [N, vocab] at selected flat positions `row * T + position` only.
    pub fn logits_at(&self, tokens: &Tensor, flat_index: &Tensor) -> Result<Tensor> {
        let h = self.hidden(tokens)?;
        let (b, t, d) = h.dims3()?;
        let rows = h.reshape((b * t, d))?.index_select(flat_index, 0)?;
        linear(&rows, &self.lm_head)
    }
}
