//! The hookable decoder: one implementation for Gemma-2/3, Llama, Mistral and Qwen2, written on
//! candle tensors so that every intermediate TransformerLens exposes can be read or replaced.
//!
//! Besides the full forward (`run`), the block's pieces are public (`attn_norm_input`,
//! `attention`, `attn_out_pre_norm`, `attn_post`, `mlp`, `answer_logits` ...) because the fast
//! path-patching algorithm recombines them: it never recomputes attention in its first pass.

use candle_core::{DType, Device, Tensor, D};

use super::config::{Activation, ModelConfig};
use super::hooks::{HookName, HookPoint, Hooks};
use super::weights::{TensorSource, WeightLoader};
use super::ModelError;

type Result<T> = std::result::Result<T, ModelError>;

/// RMSNorm with its effective weight (`1 + w` for Gemma) kept in f32: the norm is computed in
/// f32 whatever the run dtype, as Hugging Face does.
#[derive(Debug, Clone)]
pub struct Norm {
    pub weight: Tensor,
    pub eps: f32,
}

impl Norm {
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dtype = x.dtype();
        let x32 = x.to_dtype(DType::F32)?.contiguous()?;
        let y = candle_nn::ops::rms_norm(&x32, &self.weight, self.eps)?;
        Ok(y.to_dtype(dtype)?)
    }
}

/// A linear map `y = x W^T + b` with W stored as [out, in] like PyTorch.
#[derive(Debug, Clone)]
pub struct Proj {
    pub w: Tensor,
    pub b: Option<Tensor>,
}

impl Proj {
    pub fn out_dim(&self) -> usize {
        self.w.dims()[0]
    }

    /// Applies the map to the last dimension of `x` (any number of leading dims).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let last = *dims.last().expect("non-scalar input");
        let rows: usize = dims[..dims.len() - 1].iter().product();
        let x2 = x.reshape((rows, last))?;
        let mut y = x2.matmul(&self.w.t()?)?;
        if let Some(b) = &self.b {
            y = y.broadcast_add(b)?;
        }
        let mut out = dims;
        *out.last_mut().unwrap() = self.out_dim();
        Ok(y.reshape(out)?)
    }

    /// The map restricted to output rows `[start, start + len)` (one head's slice).
    pub fn rows(&self, start: usize, len: usize) -> Result<Proj> {
        Ok(Proj {
            w: self.w.narrow(0, start, len)?,
            b: self
                .b
                .as_ref()
                .map(|b| b.narrow(0, start, len))
                .transpose()?,
        })
    }
}

/// Weights of one decoder block.
#[derive(Debug, Clone)]
pub struct Layer {
    pub attn_norm: Norm,
    pub q: Proj,
    pub k: Proj,
    pub v: Proj,
    pub o: Proj,
    pub q_norm: Option<Norm>,
    pub k_norm: Option<Norm>,
    pub post_attn_norm: Option<Norm>,
    pub mlp_norm: Norm,
    pub post_mlp_norm: Option<Norm>,
    pub gate: Proj,
    pub up: Proj,
    pub down: Proj,
}

/// Which of a head's inputs: query, key or value.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum HeadInput {
    Q,
    K,
    V,
}

impl HeadInput {
    pub fn hook_point(self) -> HookPoint {
        match self {
            HeadInput::Q => HookPoint::Q,
            HeadInput::K => HookPoint::K,
            HeadInput::V => HookPoint::V,
        }
    }
    pub fn letter(self) -> &'static str {
        match self {
            HeadInput::Q => "q",
            HeadInput::K => "k",
            HeadInput::V => "v",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "q" => Some(HeadInput::Q),
            "k" => Some(HeadInput::K),
            "v" => Some(HeadInput::V),
            _ => None,
        }
    }
}

/// Where a forward pass starts.
pub enum Start<'a> {
    /// Token ids [B, T] (u32): embed them and run from layer 0.
    Tokens(&'a Tensor),
    /// A residual stream [B, T, d_model] entering layer `layer` (its resid_pre).
    Resid { layer: usize, resid: Tensor },
}

/// How far a forward pass goes.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Stop after this layer and return its resid_post (no logits).
    pub stop_after: Option<usize>,
    /// In the last layer run, compute only the last position (and only its logits).
    pub last_position_only: bool,
}

pub struct ForwardOutput {
    /// [B, T, vocab] (T = 1 with `last_position_only`); `None` when stopped early.
    pub logits: Option<Tensor>,
    /// The residual stream after the last layer run.
    pub resid: Tensor,
}

/// Called with (layers loaded, layers) while a model loads.
type LoadProgress = Box<dyn FnMut(usize, usize)>;

thread_local! {
    static LOAD_PROGRESS: std::cell::RefCell<Option<LoadProgress>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` with `progress(layers_loaded, n_layers)` called as models load on this thread
/// (the worker reports it; big checkpoints take a while).
pub fn with_load_progress<T>(
    progress: impl FnMut(usize, usize) + 'static,
    f: impl FnOnce() -> T,
) -> T {
    LOAD_PROGRESS.with(|p| *p.borrow_mut() = Some(Box::new(progress)));
    let out = f();
    LOAD_PROGRESS.with(|p| *p.borrow_mut() = None);
    out
}

fn report_load_progress(done: usize, total: usize) {
    LOAD_PROGRESS.with(|p| {
        if let Some(f) = p.borrow_mut().as_mut() {
            f(done, total)
        }
    });
}

/// A loaded model: config, weights and the forward pass.
pub struct Model {
    pub cfg: ModelConfig,
    pub device: Device,
    pub dtype: DType,
    pub embed: Tensor,
    pub unembed: Tensor,
    pub final_norm: Norm,
    pub layers: Vec<Layer>,
    pub n_params: usize,
    /// Quantization of the source weights (GGUF), if any.
    pub quantization: Option<String>,
    /// Rotary tables and attention masks already built, by their parameters: they would
    /// otherwise be rebuilt on the host and copied to the device in every layer of every pass.
    aux: std::sync::Mutex<std::collections::HashMap<String, Tensor>>,
}

impl Model {
    /// A tensor built once per distinct `key` and kept.
    fn aux(&self, key: String, make: impl FnOnce() -> Result<Tensor>) -> Result<Tensor> {
        let mut map = self.aux.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = map.get(&key) {
            return Ok(t.clone());
        }
        let t = make()?;
        if map.len() > 512 {
            map.clear();
        }
        map.insert(key, t.clone());
        Ok(t)
    }

    /// Loads the weights named as in Hugging Face checkpoints from `source`.
    pub fn load(
        cfg: ModelConfig,
        source: &dyn TensorSource,
        device: &Device,
        dtype: DType,
    ) -> Result<Self> {
        Self::build(cfg, WeightLoader::new(source, device, dtype))
    }

    /// A model of `cfg`'s shape with random weights (for benchmarks).
    pub fn random(cfg: ModelConfig, device: &Device, dtype: DType) -> Result<Self> {
        Self::build(cfg, WeightLoader::random(device, dtype))
    }

    fn build(cfg: ModelConfig, mut w: WeightLoader) -> Result<Self> {
        let device = &w.device.clone();
        let dtype = w.dtype;
        let (d, v, h, kv, dh, f) = (
            cfg.d_model,
            cfg.vocab_size,
            cfg.n_heads,
            cfg.n_kv_heads,
            cfg.d_head,
            cfg.d_mlp,
        );
        let plus_one = cfg.norm_plus_one;
        let eps = cfg.norm_eps as f32;
        let norm = |w: &mut WeightLoader, name: &str, size: usize| -> Result<Norm> {
            let t = w.get_as(name, &[size], DType::F32)?;
            let weight = if plus_one { (t + 1.0)? } else { t };
            Ok(Norm { weight, eps })
        };
        let proj = |w: &mut WeightLoader,
                    name: &str,
                    out: usize,
                    inp: usize,
                    bias: bool|
         -> Result<Proj> {
            let wt = w.get(&format!("{name}.weight"), &[out, inp])?;
            let b = if bias {
                Some(w.get(&format!("{name}.bias"), &[out])?)
            } else {
                None
            };
            Ok(Proj { w: wt, b })
        };
        let embed = w.get("model.embed_tokens.weight", &[v, d])?;
        let mut layers = Vec::with_capacity(cfg.n_layers);
        for l in 0..cfg.n_layers {
            let p = format!("model.layers.{l}");
            let gemma = cfg.sandwich_norms;
            let layer = Layer {
                attn_norm: norm(&mut w, &format!("{p}.input_layernorm.weight"), d)?,
                q: proj(
                    &mut w,
                    &format!("{p}.self_attn.q_proj"),
                    h * dh,
                    d,
                    cfg.qkv_bias,
                )?,
                k: proj(
                    &mut w,
                    &format!("{p}.self_attn.k_proj"),
                    kv * dh,
                    d,
                    cfg.qkv_bias,
                )?,
                v: proj(
                    &mut w,
                    &format!("{p}.self_attn.v_proj"),
                    kv * dh,
                    d,
                    cfg.qkv_bias,
                )?,
                o: proj(
                    &mut w,
                    &format!("{p}.self_attn.o_proj"),
                    d,
                    h * dh,
                    cfg.o_bias,
                )?,
                q_norm: if cfg.qk_norm {
                    Some(norm(&mut w, &format!("{p}.self_attn.q_norm.weight"), dh)?)
                } else {
                    None
                },
                k_norm: if cfg.qk_norm {
                    Some(norm(&mut w, &format!("{p}.self_attn.k_norm.weight"), dh)?)
                } else {
                    None
                },
                post_attn_norm: if gemma {
                    Some(norm(
                        &mut w,
                        &format!("{p}.post_attention_layernorm.weight"),
                        d,
                    )?)
                } else {
                    None
                },
                mlp_norm: if gemma {
                    norm(&mut w, &format!("{p}.pre_feedforward_layernorm.weight"), d)?
                } else {
                    norm(&mut w, &format!("{p}.post_attention_layernorm.weight"), d)?
                },
                post_mlp_norm: if gemma {
                    Some(norm(
                        &mut w,
                        &format!("{p}.post_feedforward_layernorm.weight"),
                        d,
                    )?)
                } else {
                    None
                },
                gate: proj(&mut w, &format!("{p}.mlp.gate_proj"), f, d, cfg.mlp_bias)?,
                up: proj(&mut w, &format!("{p}.mlp.up_proj"), f, d, cfg.mlp_bias)?,
                down: proj(&mut w, &format!("{p}.mlp.down_proj"), d, f, cfg.mlp_bias)?,
            };
            layers.push(layer);
            report_load_progress(l + 1, cfg.n_layers);
        }
        let final_norm = norm(&mut w, "model.norm.weight", d)?;
        let unembed = if cfg.tie_embeddings {
            embed.clone()
        } else {
            w.get("lm_head.weight", &[v, d])?
        };
        Ok(Model {
            n_params: w.n_params,
            quantization: w.source.quantization(),
            cfg,
            device: device.clone(),
            dtype,
            embed,
            unembed,
            final_norm,
            layers,
            aux: Default::default(),
        })
    }

    pub fn n_layers(&self) -> usize {
        self.cfg.n_layers
    }
    pub fn n_heads(&self) -> usize {
        self.cfg.n_heads
    }

    /// Token embeddings (scaled for Gemma): [B, T] u32 → [B, T, d_model].
    pub fn embed(&self, tokens: &Tensor) -> Result<Tensor> {
        let (b, t) = tokens.dims2()?;
        let ids = tokens.flatten_all()?;
        let x = self
            .embed
            .index_select(&ids, 0)?
            .reshape((b, t, self.cfg.d_model))?;
        match self.cfg.embed_scale {
            // Gemma rounds sqrt(d_model) to the run dtype before multiplying.
            Some(s) => {
                let s = Tensor::new(&[s as f32], &self.device)?.to_dtype(self.dtype)?;
                Ok(x.broadcast_mul(&s)?)
            }
            None => Ok(x),
        }
    }

    /// Cos and sin tables [len, d_head/2] for layer `l`'s rotary embedding, positions
    /// `start..start+len`.
    pub fn rope_tables(&self, l: usize, start: usize, len: usize) -> Result<(Tensor, Tensor)> {
        let rope = self.cfg.rope_for_layer(l);
        let table = |which: &str| -> Result<Tensor> {
            let key = format!(
                "rope {which} {rope:?} {} {} {start} {len}",
                self.cfg.d_head,
                self.dtype.as_str()
            );
            self.aux(key, || {
                let inv = rope.inv_freq(self.cfg.d_head);
                let half = inv.len();
                let mut v = Vec::with_capacity(len * half);
                for p in start..start + len {
                    for &f in &inv {
                        let a = p as f32 * f;
                        v.push(if which == "cos" { a.cos() } else { a.sin() });
                    }
                }
                Ok(Tensor::from_vec(v, (len, half), &self.device)?.to_dtype(self.dtype)?)
            })
        };
        Ok((table("cos")?, table("sin")?))
    }

    /// Splits a projection output [B, T, n*dh] into heads [B, T, n, dh].
    fn split_heads(&self, x: &Tensor, n: usize) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        Ok(x.reshape((b, t, n, self.cfg.d_head))?)
    }

    /// Repeats each KV head for the query heads that share it: [B,T,KV,dh] → [B,T,H,dh].
    pub fn ungroup(&self, kv: &Tensor) -> Result<Tensor> {
        let g = self.cfg.group_size();
        if g == 1 {
            return Ok(kv.clone());
        }
        let (b, t, n_kv, dh) = kv.dims4()?;
        Ok(kv
            .unsqueeze(3)?
            .broadcast_as((b, t, n_kv, g, dh))?
            .reshape((b, t, n_kv * g, dh))?)
    }

    /// The attention input (normed residual) of layer `l`.
    pub fn attn_norm_input(&self, l: usize, x: &Tensor) -> Result<Tensor> {
        self.layers[l].attn_norm.forward(x)
    }

    /// q (rows of `h`), ungrouped k and v of layer `l` from its normed input: [B, T, H, dh] each.
    pub fn qkv(&self, l: usize, h: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let layer = &self.layers[l];
        let q = self.split_heads(&layer.q.forward(h)?, self.cfg.n_heads)?;
        let k = self.split_heads(&layer.k.forward(h)?, self.cfg.n_kv_heads)?;
        let v = self.split_heads(&layer.v.forward(h)?, self.cfg.n_kv_heads)?;
        Ok((q, self.ungroup(&k)?, self.ungroup(&v)?))
    }

    /// One head's q, k or v input from the normed residual `h` [.., D] → [.., dh]: the ungrouped
    /// view (a key/value input of query head `head` reads its KV head's weights).
    pub fn head_input(&self, l: usize, head: usize, kind: HeadInput, h: &Tensor) -> Result<Tensor> {
        let layer = &self.layers[l];
        let dh = self.cfg.d_head;
        let proj = match kind {
            HeadInput::Q => layer.q.rows(head * dh, dh)?,
            HeadInput::K => layer.k.rows((head / self.cfg.group_size()) * dh, dh)?,
            HeadInput::V => layer.v.rows((head / self.cfg.group_size()) * dh, dh)?,
        };
        proj.forward(h)
    }

    /// Additive attention mask [Tq, Tk] for queries at positions `q_start..q_start+Tq`.
    fn mask(&self, l: usize, q_start: usize, tq: usize, tk: usize, dtype: DType) -> Result<Tensor> {
        let window = self.cfg.window_for_layer(l);
        let key = format!("mask {window:?} {q_start} {tq} {tk} {}", dtype.as_str());
        self.aux(key, || self.build_mask(window, q_start, tq, tk, dtype))
    }

    fn build_mask(
        &self,
        window: Option<usize>,
        q_start: usize,
        tq: usize,
        tk: usize,
        dtype: DType,
    ) -> Result<Tensor> {
        let mut m = vec![0f32; tq * tk];
        for i in 0..tq {
            let qp = q_start + i;
            for j in 0..tk {
                let allowed = j <= qp && window.is_none_or(|w| qp - j < w);
                if !allowed {
                    m[i * tk + j] = f32::NEG_INFINITY;
                }
            }
        }
        Ok(Tensor::from_vec(m, (tq, tk), &self.device)?.to_dtype(dtype)?)
    }

    /// Attention probabilities [B, H, Tq, Tk] of layer `l`, for queries [B, Tq, H, dh] at
    /// positions `q_start..` and keys [B, Tk, H, dh] at positions `0..Tk` (both un-rotated).
    pub fn attention_pattern(
        &self,
        l: usize,
        q: &Tensor,
        k: &Tensor,
        q_start: usize,
    ) -> Result<Tensor> {
        let layer = &self.layers[l];
        let (_, tq, _, _) = q.dims4()?;
        let (_, tk, _, _) = k.dims4()?;
        let mut q = q.clone();
        let mut k = k.clone();
        if let Some(n) = &layer.q_norm {
            q = n.forward(&q)?;
        }
        if let Some(n) = &layer.k_norm {
            k = n.forward(&k)?;
        }
        let q = q.transpose(1, 2)?.contiguous()?;
        let k = k.transpose(1, 2)?.contiguous()?;
        let (cos, sin) = self.rope_tables(l, 0, tk.max(q_start + tq))?;
        let q = candle_nn::rotary_emb::rope(
            &q,
            &cos.narrow(0, q_start, tq)?.contiguous()?,
            &sin.narrow(0, q_start, tq)?.contiguous()?,
        )?;
        let k = candle_nn::rotary_emb::rope(
            &k,
            &cos.narrow(0, 0, tk)?.contiguous()?,
            &sin.narrow(0, 0, tk)?.contiguous()?,
        )?;
        let mut scores = (q.matmul(&k.t()?)? * self.cfg.attn_scale)?;
        if let Some(cap) = self.cfg.attn_softcap {
            scores = softcap(&scores, cap)?;
        }
        let mask = self.mask(l, q_start, tq, tk, scores.dtype())?;
        let scores = scores.broadcast_add(&mask)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores.to_dtype(DType::F32)?)?;
        Ok(probs.to_dtype(self.dtype)?)
    }

    /// Head outputs z [B, Tq, H, dh] = pattern · v.
    pub fn attention_z(&self, pattern: &Tensor, v: &Tensor) -> Result<Tensor> {
        let v = v.transpose(1, 2)?.contiguous()?;
        Ok(pattern.matmul(&v)?.transpose(1, 2)?.contiguous()?)
    }

    /// Attention output before Gemma's post-attention norm: z W_O (+ b_O), [B, T, D].
    pub fn attn_out_pre_norm(&self, l: usize, z: &Tensor) -> Result<Tensor> {
        let (b, t, h, dh) = z.dims4()?;
        self.layers[l].o.forward(&z.reshape((b, t, h * dh))?)
    }

    /// One head's contribution to the pre-norm attention output: z_h W_O[:, h] (no bias),
    /// z_h [.., dh] → [.., D].
    pub fn head_out(&self, l: usize, head: usize, z_h: &Tensor) -> Result<Tensor> {
        let dh = self.cfg.d_head;
        let w = self.layers[l].o.w.narrow(1, head * dh, dh)?;
        Proj { w, b: None }.forward(z_h)
    }

    /// The attention block's output as added to the residual stream (post-norm for Gemma).
    pub fn attn_post(&self, l: usize, o: &Tensor) -> Result<Tensor> {
        match &self.layers[l].post_attn_norm {
            Some(n) => n.forward(o),
            None => Ok(o.clone()),
        }
    }

    /// The MLP block's output for resid_mid `x` (pre-norm, MLP, and Gemma's post-norm).
    pub fn mlp(&self, l: usize, x: &Tensor) -> Result<Tensor> {
        let layer = &self.layers[l];
        let h = layer.mlp_norm.forward(x)?;
        let g = layer.gate.forward(&h)?;
        let u = layer.up.forward(&h)?;
        let a = match self.cfg.activation {
            Activation::Silu => candle_nn::ops::silu(&g)?,
            Activation::GeluTanh => super::ops::gelu_tanh(&g)?,
            Activation::GeluErf => g.gelu_erf()?,
        };
        let m = layer.down.forward(&(a * u)?)?;
        match &layer.post_mlp_norm {
            Some(n) => n.forward(&m),
            None => Ok(m),
        }
    }

    /// Full logits from the final residual stream [.., D] → [.., vocab].
    pub fn unembed(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.final_norm.forward(x)?;
        let logits = Proj {
            w: self.unembed.clone(),
            b: None,
        }
        .forward(&h)?;
        match self.cfg.final_softcap {
            Some(cap) => softcap(&logits, cap),
            None => Ok(logits),
        }
    }

    /// Logits of selected tokens only: `x` [N, D] final residual rows, `ids` [N, K] u32 →
    /// [N, K] (f32). The path-patching metric needs two logits per prompt, never the full
    /// vocabulary.
    pub fn answer_logits(&self, x: &Tensor, ids: &Tensor) -> Result<Tensor> {
        let (n, k) = ids.dims2()?;
        let h = self.final_norm.forward(x)?; // [N, D]
        let w = self
            .unembed
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((n, k, self.cfg.d_model))?; // [N, K, D]
        let logits = w.matmul(&h.unsqueeze(2)?)?.squeeze(2)?; // [N, K]
        let logits = match self.cfg.final_softcap {
            Some(cap) => softcap(&logits, cap)?,
            None => logits,
        };
        Ok(logits.to_dtype(DType::F32)?)
    }

    /// Runs one block with hooks. `x` is resid_pre [B, T, D]; with `last_only` only the last
    /// position's output is computed ([B, 1, D]).
    pub fn block(&self, l: usize, x: Tensor, last_only: bool, hooks: &mut Hooks) -> Result<Tensor> {
        let x = hooks.run(HookName::Layer(l, HookPoint::ResidPre), x)?;
        let (_, t, _) = x.dims3()?;
        let h = self.attn_norm_input(l, &x)?;
        let q_start = if last_only { t - 1 } else { 0 };
        let h_q = if last_only {
            h.narrow(1, t - 1, 1)?
        } else {
            h.clone()
        };
        let layer = &self.layers[l];
        let q = self.split_heads(&layer.q.forward(&h_q)?, self.cfg.n_heads)?;
        let q = hooks.run(HookName::Layer(l, HookPoint::Q), q)?;
        let k = self.ungroup(&self.split_heads(&layer.k.forward(&h)?, self.cfg.n_kv_heads)?)?;
        let k = hooks.run(HookName::Layer(l, HookPoint::K), k)?;
        let v = self.ungroup(&self.split_heads(&layer.v.forward(&h)?, self.cfg.n_kv_heads)?)?;
        let v = hooks.run(HookName::Layer(l, HookPoint::V), v)?;
        let pattern = self.attention_pattern(l, &q, &k, q_start)?;
        let pattern = hooks.run(HookName::Layer(l, HookPoint::Pattern), pattern)?;
        let z = self.attention_z(&pattern, &v)?;
        let z = hooks.run(HookName::Layer(l, HookPoint::Z), z)?;
        let a = self.attn_post(l, &self.attn_out_pre_norm(l, &z)?)?;
        let a = hooks.run(HookName::Layer(l, HookPoint::AttnOut), a)?;
        let x_rows = if last_only { x.narrow(1, t - 1, 1)? } else { x };
        let mid = (x_rows + a)?;
        let mid = hooks.run(HookName::Layer(l, HookPoint::ResidMid), mid)?;
        let m = self.mlp(l, &mid)?;
        let m = hooks.run(HookName::Layer(l, HookPoint::MlpOut), m)?;
        let post = (mid + m)?;
        hooks.run(HookName::Layer(l, HookPoint::ResidPost), post)
    }

    /// The general forward pass: from tokens or from a layer's resid_pre, to the logits or to a
    /// given layer, with hooks.
    pub fn run(&self, start: Start, opts: RunOptions, hooks: &mut Hooks) -> Result<ForwardOutput> {
        let (mut x, first) = match start {
            Start::Tokens(t) => (self.embed(t)?, 0),
            Start::Resid { layer, resid } => (resid, layer),
        };
        let last = opts.stop_after.unwrap_or(self.cfg.n_layers - 1);
        if first >= self.cfg.n_layers || last >= self.cfg.n_layers || first > last {
            return Err(ModelError::Invalid(format!(
                "cannot run layers {first}..={last} of a {}-layer model",
                self.cfg.n_layers
            )));
        }
        for l in first..=last {
            x = self.block(l, x, opts.last_position_only && l == last, hooks)?;
        }
        let logits = if opts.stop_after.is_none() {
            let logits = self.unembed(&x)?;
            Some(hooks.run(HookName::Logits, logits)?)
        } else {
            None
        };
        Ok(ForwardOutput { logits, resid: x })
    }

    /// Plain forward: token ids [B, T] → logits [B, T, vocab].
    pub fn forward(&self, tokens: &Tensor) -> Result<Tensor> {
        let out = self.run(
            Start::Tokens(tokens),
            RunOptions::default(),
            &mut Hooks::none(),
        )?;
        Ok(out.logits.expect("full run has logits"))
    }

    /// Makes a [B, T] u32 token tensor on the model's device.
    pub fn tokens_tensor(&self, rows: &[Vec<u32>]) -> Result<Tensor> {
        let t = rows.first().map_or(0, |r| r.len());
        if rows.iter().any(|r| r.len() != t) || t == 0 {
            return Err(ModelError::Invalid(
                "all token rows of a batch must have the same, non-zero length".into(),
            ));
        }
        let flat: Vec<u32> = rows.iter().flatten().copied().collect();
        if let Some(&bad) = flat.iter().find(|&&id| id as usize >= self.cfg.vocab_size) {
            return Err(ModelError::Invalid(format!(
                "token id {bad} is outside the vocabulary (size {})",
                self.cfg.vocab_size
            )));
        }
        Ok(Tensor::from_vec(flat, (rows.len(), t), &self.device)?)
    }
}

/// `cap * tanh(x / cap)`, with an exact division like PyTorch.
pub fn softcap(x: &Tensor, cap: f64) -> Result<Tensor> {
    Ok(super::ops::softcap(x, cap)?)
}

/// Index of the maximum along the last dimension, for quick predictions.
pub fn argmax_last(x: &Tensor) -> Result<Vec<u32>> {
    let a = x.argmax(D::Minus1)?.flatten_all()?;
    Ok(a.to_vec1::<u32>()?)
}
