//! The hookable decoder: one implementation for every registered family (`families/`), written
//! on candle tensors so that every intermediate TransformerLens exposes can be read or replaced.
//!
//! The weights are private. Besides the full forward (`run`), the model offers the operations
//! the fast path-patching algorithm recombines (it never recomputes attention in its first
//! pass): each head's swap of the attention output (`attn_out_head_swaps`), the rest of a
//! block from its resid_mid (`block_after_mid`, which knows the family's block shape: the MLP
//! of a parallel block reads the block's input), one head's input (`head_input`) and the two-logit readout (`answer_logits`).

use candle_core::{DType, Device, Tensor, D};

use super::config::{Activation, BlockShape, ModelConfig};
use super::hooks::{HookName, HookPoint, Hooks};
use super::placement::DeviceMap;
use super::weights::{TensorSource, WeightLoader};
use super::ModelError;

type Result<T> = std::result::Result<T, ModelError>;

/// RMSNorm (with its effective weight, `1 + w` for Gemma) or LayerNorm (with a bias), kept in
/// f32: the norm is computed in f32 whatever the run dtype, as Hugging Face does.
#[derive(Debug, Clone)]
pub(in crate::model) struct Norm {
    pub(in crate::model) weight: Tensor,
    /// LayerNorm's bias; `None` for RMSNorm.
    pub(in crate::model) bias: Option<Tensor>,
    pub(in crate::model) eps: f32,
}

impl Norm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dtype = x.dtype();
        let x32 = x.to_dtype(DType::F32)?.contiguous()?;
        let y = match &self.bias {
            None => candle_nn::ops::rms_norm(&x32, &self.weight, self.eps)?,
            Some(b) => candle_nn::ops::layer_norm(&x32, &self.weight, b, self.eps)?,
        };
        Ok(y.to_dtype(dtype)?)
    }
}

/// A linear map `y = x W^T + b` with W stored as [out, in] like PyTorch.
#[derive(Debug, Clone)]
pub(in crate::model) struct Proj {
    pub(in crate::model) w: Tensor,
    pub(in crate::model) b: Option<Tensor>,
}

impl Proj {
    fn out_dim(&self) -> usize {
        self.w.dims()[0]
    }

    /// Applies the map to the last dimension of `x` (any number of leading dims).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
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
    pub(in crate::model) fn rows(&self, start: usize, len: usize) -> Result<Proj> {
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

/// Weights of one decoder block, as a family's loader (`families/`) builds them.
#[derive(Debug, Clone)]
pub(in crate::model) struct Layer {
    pub(in crate::model) attn_norm: Norm,
    pub(in crate::model) q: Proj,
    pub(in crate::model) k: Proj,
    pub(in crate::model) v: Proj,
    pub(in crate::model) o: Proj,
    pub(in crate::model) q_norm: Option<Norm>,
    pub(in crate::model) k_norm: Option<Norm>,
    pub(in crate::model) post_attn_norm: Option<Norm>,
    pub(in crate::model) mlp_norm: Norm,
    pub(in crate::model) post_mlp_norm: Option<Norm>,
    /// `None` for an ungated MLP (`down(act(up(x)))`).
    pub(in crate::model) gate: Option<Proj>,
    pub(in crate::model) up: Proj,
    pub(in crate::model) down: Proj,
}

/// The weights outside the blocks.
pub(in crate::model) struct Globals {
    pub(in crate::model) embed: Tensor,
    /// Learned position embeddings [positions, D] (GPT-2).
    pub(in crate::model) pos_embed: Option<Tensor>,
    pub(in crate::model) final_norm: Norm,
    pub(in crate::model) unembed: Tensor,
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

/// Called with (layers loaded, layers) while a model loads (the worker reports it; big
/// checkpoints take a while).
pub type LoadProgress<'a> = &'a mut dyn FnMut(usize, usize);

/// What a cached rotary table or mask was built for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum AuxKey {
    /// cos (true) or sin table of the layer kind (`local` rope), positions `start..start+len`.
    Rope {
        /// Index of the device it lives on (a placed model's layers sit on several).
        device: usize,
        cos: bool,
        local: bool,
        start: usize,
        len: usize,
    },
    Mask {
        device: usize,
        window: Option<usize>,
        q_start: usize,
        tq: usize,
        tk: usize,
        dtype: DType,
    },
}

/// A loaded model: config, weights and the forward pass.
pub struct Model {
    pub cfg: ModelConfig,
    /// The home device: the embedding's and unembedding's, and where every operation takes its
    /// inputs and returns its results (all layers too, unless placed over several devices).
    pub device: Device,
    pub dtype: DType,
    pub n_params: usize,
    /// Quantization of the source weights (GGUF), if any.
    pub quantization: Option<String>,
    globals: Globals,
    layers: Vec<Layer>,
    map: DeviceMap,
    /// Rotary tables and attention masks already built, by their parameters: they would
    /// otherwise be rebuilt on the host and copied to the device in every layer of every pass.
    aux: std::sync::Mutex<std::collections::HashMap<AuxKey, Tensor>>,
}

impl Model {
    /// A tensor built once per distinct `key` and kept.
    fn aux(&self, key: AuxKey, make: impl FnOnce() -> Result<Tensor>) -> Result<Tensor> {
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
        Self::load_with_progress(cfg, source, device, dtype, &mut |_, _| {})
    }

    /// [`Model::load`], calling `progress(layers loaded, layers)` after each layer.
    pub fn load_with_progress(
        cfg: ModelConfig,
        source: &dyn TensorSource,
        device: &Device,
        dtype: DType,
        progress: LoadProgress,
    ) -> Result<Self> {
        Self::load_placed(cfg, source, std::slice::from_ref(device), dtype, progress)
    }

    /// [`Model::load_with_progress`] with the layers split over `devices` (pipeline placement,
    /// [`DeviceMap::split`]); one device places everything on it.
    pub fn load_placed(
        cfg: ModelConfig,
        source: &dyn TensorSource,
        devices: &[Device],
        dtype: DType,
        progress: LoadProgress,
    ) -> Result<Self> {
        let map = Self::place_layers(&cfg, devices)?;
        Self::build(
            cfg,
            WeightLoader::new(source, map.home(), dtype),
            map,
            progress,
        )
    }

    /// A model of `cfg`'s shape with random weights, its layers split over `devices`.
    pub fn random_placed(cfg: ModelConfig, devices: &[Device], dtype: DType) -> Result<Self> {
        let map = Self::place_layers(&cfg, devices)?;
        let w = WeightLoader::random(map.home(), dtype);
        Self::build(cfg, w, map, &mut |_, _| {})
    }

    /// Layers over `devices`, balanced by weight bytes: the home device's share is smaller by
    /// the embedding and unembedding it holds too.
    fn place_layers(cfg: &ModelConfig, devices: &[Device]) -> Result<DeviceMap> {
        match devices {
            [] => Err(ModelError::Invalid("no device to load the model on".into())),
            [one] => Ok(DeviceMap::single(one, cfg.n_layers)),
            many => {
                let (per_layer, globals) = cfg.param_counts();
                DeviceMap::split(many, cfg.n_layers, globals as f64 / per_layer.max(1) as f64)
            }
        }
    }

    /// A model of `cfg`'s shape with random weights (for benchmarks).
    pub fn random(cfg: ModelConfig, device: &Device, dtype: DType) -> Result<Self> {
        Self::random_placed(cfg, std::slice::from_ref(device), dtype)
    }

    /// The family's loader reads the tensors under its checkpoint names.
    /// Each layer's weights load straight onto its device (never all on the first one).
    fn build(
        cfg: ModelConfig,
        mut w: WeightLoader,
        map: DeviceMap,
        progress: LoadProgress,
    ) -> Result<Self> {
        let def = cfg.family.def();
        let mut layers = Vec::with_capacity(cfg.n_layers);
        let globals = def.globals(&mut w, &cfg)?;
        for l in 0..cfg.n_layers {
            w.device = map.layer(l).clone();
            layers.push(def.layer(&mut w, &cfg, l)?);
            progress(l + 1, cfg.n_layers);
        }
        w.device = map.home().clone();
        if !w.random {
            let layers = (cfg.n_layers, def.layers_key());
            super::weights::check_unused(w.source, &w.used, layers, cfg.tie_embeddings)?;
        }
        Ok(Model {
            n_params: w.n_params,
            quantization: w.source.quantization(),
            cfg,
            device: w.device.clone(),
            dtype: w.dtype,
            globals,
            layers,
            map,
            aux: Default::default(),
        })
    }

    /// A copy of one loaded weight, read-only, for inspection and tests: `embed`, `unembed`,
    /// `final_norm`, or `layers.{l}.{q|k|v|o|up|down|attn_norm|mlp_norm}` (projections as
    /// [out, in], norms as their effective f32 weight).
    pub fn weight(&self, name: &str) -> Option<Tensor> {
        let g = &self.globals;
        match name {
            "embed" => return Some(g.embed.clone()),
            "unembed" => return Some(g.unembed.clone()),
            "final_norm" => return Some(g.final_norm.weight.clone()),
            _ => {}
        }
        let (l, part) = name.strip_prefix("layers.")?.split_once('.')?;
        let layer = self.layers.get(l.parse::<usize>().ok()?)?;
        Some(match part {
            "q" => layer.q.w.clone(),
            "k" => layer.k.w.clone(),
            "v" => layer.v.w.clone(),
            "o" => layer.o.w.clone(),
            "up" => layer.up.w.clone(),
            "down" => layer.down.w.clone(),
            "attn_norm" => layer.attn_norm.weight.clone(),
            "mlp_norm" => layer.mlp_norm.weight.clone(),
            _ => return None,
        })
    }

    pub fn n_layers(&self) -> usize {
        self.cfg.n_layers
    }
    pub fn n_heads(&self) -> usize {
        self.cfg.n_heads
    }

    /// Token embeddings (scaled for Gemma, plus learned positions for GPT-2):
    /// [B, T] u32 → [B, T, d_model].
    pub fn embed(&self, tokens: &Tensor) -> Result<Tensor> {
        let (b, t) = tokens.dims2()?;
        let ids = tokens.flatten_all()?;
        let mut x = self
            .globals
            .embed
            .index_select(&ids, 0)?
            .reshape((b, t, self.cfg.d_model))?;
        if let Some(pos) = &self.globals.pos_embed {
            if t > pos.dim(0)? {
                return Err(ModelError::Invalid(format!(
                    "{t} tokens do not fit the model's {} learned positions",
                    pos.dim(0)?
                )));
            }
            x = x.broadcast_add(&pos.narrow(0, 0, t)?)?;
        }
        match self.cfg.embed_scale {
            // Gemma rounds sqrt(d_model) to the run dtype before multiplying.
            Some(s) => {
                let s = Tensor::new(&[s as f32], &self.device)?.to_dtype(self.dtype)?;
                Ok(x.broadcast_mul(&s)?)
            }
            None => Ok(x),
        }
    }

    /// Cos and sin tables [len, rotary_dim/2] for layer `l`'s rotary embedding, positions
    /// `start..start+len`.
    fn rope_tables(&self, l: usize, start: usize, len: usize) -> Result<(Tensor, Tensor)> {
        let rope = self.cfg.rope_for_layer(l);
        // The model's dtype and rotary size are fixed; a layer's rope is global or local.
        let local = !std::ptr::eq(rope, &self.cfg.rope_global);
        let table = |cos: bool| -> Result<Tensor> {
            let key = AuxKey::Rope {
                device: self.map.layer_index(l),
                cos,
                local,
                start,
                len,
            };
            self.aux(key, || {
                // Dynamic and longrope frequencies depend on the sequence's length, which is
                // `start + len` here (tables always start at 0 in the forward pass).
                let inv = rope.inv_freq(self.cfg.rotary_dim, start + len);
                // YaRN and longrope scale cos and sin (in f32, as transformers does).
                let scale = rope.attention_scaling() as f32;
                let half = inv.len();
                let mut v = Vec::with_capacity(len * half);
                for p in start..start + len {
                    for &f in &inv {
                        let a = p as f32 * f;
                        v.push(if cos {
                            a.cos() * scale
                        } else {
                            a.sin() * scale
                        });
                    }
                }
                Ok(Tensor::from_vec(v, (len, half), self.map.layer(l))?.to_dtype(self.dtype)?)
            })
        };
        Ok((table(true)?, table(false)?))
    }

    /// Rotates the first `rotary_dim` dims of each head of `x` [B, H, T, dh] (rotate-half
    /// layout); the rest pass unchanged (GPT-NeoX's partial rotary).
    fn rotate(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        let (rot, dh) = (self.cfg.rotary_dim, self.cfg.d_head);
        if rot == 0 {
            return Ok(x.clone());
        }
        if rot == dh {
            return Ok(candle_nn::rotary_emb::rope(x, cos, sin)?);
        }
        let head = candle_nn::rotary_emb::rope(&x.narrow(3, 0, rot)?.contiguous()?, cos, sin)?;
        // candle's cat along a later dim can leave a transposed layout; matmul needs rows.
        Ok(Tensor::cat(&[&head, &x.narrow(3, rot, dh - rot)?], 3)?.contiguous()?)
    }

    /// Splits a projection output [B, T, n*dh] into heads [B, T, n, dh].
    fn split_heads(&self, x: &Tensor, n: usize) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        Ok(x.reshape((b, t, n, self.cfg.d_head))?)
    }

    /// Repeats each KV head for the query heads that share it: [B,T,KV,dh] → [B,T,H,dh].
    fn ungroup(&self, kv: &Tensor) -> Result<Tensor> {
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

    /// How the layers are placed over devices.
    pub fn device_map(&self) -> &DeviceMap {
        &self.map
    }

    /// `x` on layer `l`'s device: a no-op (a shared handle) unless the model is placed over
    /// several devices and `l` lives away from home.
    fn at(&self, l: usize, x: &Tensor) -> Result<Tensor> {
        Ok(x.to_device(self.map.layer(l))?)
    }

    /// `x` on the home device, where the public operations return everything: the algorithms'
    /// caches then never mix devices.
    fn home(&self, x: Tensor) -> Result<Tensor> {
        Ok(x.to_device(&self.device)?)
    }

    /// Runs the hooks of `name` in layer `l` on `t`. Hooks see (and captures keep) home tensors
    /// whatever device the layer is on, and what they return goes back to the layer's device;
    /// nothing moves where nothing is hooked.
    fn hook(&self, l: usize, hooks: &mut Hooks, name: HookName, t: Tensor) -> Result<Tensor> {
        if self.map.layer_index(l) == 0 {
            return hooks.run(name, t);
        }
        if !hooks.active(name) {
            return Ok(t);
        }
        let out = hooks.run(name, self.home(t)?)?;
        self.at(l, &out)
    }

    /// The attention input (normed residual) of layer `l`.
    pub fn attn_norm_input(&self, l: usize, x: &Tensor) -> Result<Tensor> {
        self.home(self.layers[l].attn_norm.forward(&self.at(l, x)?)?)
    }

    /// q (rows of `h`), ungrouped k and v of layer `l` from its normed input: [B, T, H, dh] each.
    pub fn qkv(&self, l: usize, h: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let layer = &self.layers[l];
        let h = self.at(l, h)?;
        let q = self.split_heads(&layer.q.forward(&h)?, self.cfg.n_heads)?;
        let k = self.split_heads(&layer.k.forward(&h)?, self.cfg.n_kv_heads)?;
        let v = self.split_heads(&layer.v.forward(&h)?, self.cfg.n_kv_heads)?;
        Ok((
            self.home(q)?,
            self.home(self.ungroup(&k)?)?,
            self.home(self.ungroup(&v)?)?,
        ))
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
        self.home(proj.forward(&self.at(l, h)?)?)
    }

    /// Additive attention mask [Tq, Tk] for queries at positions `q_start..q_start+Tq`.
    fn mask(&self, l: usize, q_start: usize, tq: usize, tk: usize, dtype: DType) -> Result<Tensor> {
        let window = self.cfg.window_for_layer(l);
        let key = AuxKey::Mask {
            device: self.map.layer_index(l),
            window,
            q_start,
            tq,
            tk,
            dtype,
        };
        let device = self.map.layer(l);
        self.aux(key, || build_mask(device, window, q_start, tq, tk, dtype))
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
        let p = self.pattern_here(l, &self.at(l, q)?, &self.at(l, k)?, q_start)?;
        self.home(p)
    }

    /// [`Model::attention_pattern`] on the inputs' device (layer `l`'s).
    fn pattern_here(&self, l: usize, q: &Tensor, k: &Tensor, q_start: usize) -> Result<Tensor> {
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
        let q = self.rotate(
            &q,
            &cos.narrow(0, q_start, tq)?.contiguous()?,
            &sin.narrow(0, q_start, tq)?.contiguous()?,
        )?;
        let k = self.rotate(
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
        self.home(self.out_pre_norm_here(l, &self.at(l, z)?)?)
    }

    /// [`Model::attn_out_pre_norm`] on the input's device (layer `l`'s).
    fn out_pre_norm_here(&self, l: usize, z: &Tensor) -> Result<Tensor> {
        let (b, t, h, dh) = z.dims4()?;
        self.layers[l].o.forward(&z.reshape((b, t, h * dh))?)
    }

    /// Layer `l`'s attention output as added to the residual stream, once per head with only
    /// that head's z swapped: `z` [B, P, H, dh] is the base run's, `z_new` the other run's;
    /// returns [H, B·P, D] (rows ordered head, prompt, position). The swap happens before
    /// Gemma's post-attention norm, so the norm sees the whole swapped output.
    pub fn attn_out_head_swaps(&self, l: usize, z: &Tensor, z_new: &Tensor) -> Result<Tensor> {
        let (z, z_new) = (&self.at(l, z)?, &self.at(l, z_new)?);
        let (b, p, h, dh) = z.dims4()?;
        let d = self.cfg.d_model;
        let dz = (z_new - z)?
            .permute((2, 0, 1, 3))?
            .reshape((h, b * p, dh))?;
        let w_o = self.layers[l]
            .o
            .w
            .reshape((d, h, dh))?
            .permute((1, 2, 0))?
            .contiguous()?; // [H, dh, D]
        let delta = dz.matmul(&w_o)?; // [H, B*P, D]: each head's own swap
        let o = self.out_pre_norm_here(l, z)?.reshape((1, b * p, d))?;
        self.home(self.attn_post(l, &delta.broadcast_add(&o)?)?)
    }

    /// The attention block's output as added to the residual stream (post-norm for Gemma).
    fn attn_post(&self, l: usize, o: &Tensor) -> Result<Tensor> {
        match &self.layers[l].post_attn_norm {
            Some(n) => n.forward(o),
            None => Ok(o.clone()),
        }
    }

    /// The MLP block's output for its input `x` (resid_mid in a sequential block, resid_pre in
    /// a parallel one): pre-norm, MLP, and Gemma's post-norm.
    pub fn mlp(&self, l: usize, x: &Tensor) -> Result<Tensor> {
        self.home(self.mlp_here(l, &self.at(l, x)?)?)
    }

    /// [`Model::mlp`] on the input's device (layer `l`'s).
    fn mlp_here(&self, l: usize, x: &Tensor) -> Result<Tensor> {
        let layer = &self.layers[l];
        let h = layer.mlp_norm.forward(x)?;
        let act = |g: &Tensor| -> Result<Tensor> {
            Ok(match self.cfg.activation {
                Activation::Silu => candle_nn::ops::silu(g)?,
                Activation::GeluTanh => super::ops::gelu_tanh(g)?,
                Activation::GeluErf => g.gelu_erf()?,
            })
        };
        let u = layer.up.forward(&h)?;
        let hidden = match &layer.gate {
            Some(gate) => (act(&gate.forward(&h)?)? * u)?,
            None => act(&u)?,
        };
        let m = layer.down.forward(&hidden)?;
        match &layer.post_mlp_norm {
            Some(n) => n.forward(&m),
            None => Ok(m),
        }
    }

    /// Full logits from the final residual stream [.., D] → [.., vocab].
    pub fn unembed(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.globals.final_norm.forward(&self.home(x.clone())?)?;
        let logits = Proj {
            w: self.globals.unembed.clone(),
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
        let ids = &self.home(ids.clone())?;
        let h = self.globals.final_norm.forward(&self.home(x.clone())?)?; // [N, D]
        let w = self
            .globals
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
        let out = self.block_here(l, self.at(l, &x)?, last_only, hooks)?;
        self.home(out)
    }

    /// [`Model::block`] on layer `l`'s device, where `x` already is: a forward pass moves the
    /// residual stream only where the next layer lives elsewhere.
    fn block_here(
        &self,
        l: usize,
        x: Tensor,
        last_only: bool,
        hooks: &mut Hooks,
    ) -> Result<Tensor> {
        let x = self.hook(l, hooks, HookName::Layer(l, HookPoint::ResidPre), x)?;
        let (_, t, _) = x.dims3()?;
        let h = self.layers[l].attn_norm.forward(&x)?;
        let q_start = if last_only { t - 1 } else { 0 };
        let h_q = if last_only {
            h.narrow(1, t - 1, 1)?
        } else {
            h.clone()
        };
        let layer = &self.layers[l];
        let q = self.split_heads(&layer.q.forward(&h_q)?, self.cfg.n_heads)?;
        let q = self.hook(l, hooks, HookName::Layer(l, HookPoint::Q), q)?;
        let k = self.ungroup(&self.split_heads(&layer.k.forward(&h)?, self.cfg.n_kv_heads)?)?;
        let k = self.hook(l, hooks, HookName::Layer(l, HookPoint::K), k)?;
        let v = self.ungroup(&self.split_heads(&layer.v.forward(&h)?, self.cfg.n_kv_heads)?)?;
        let v = self.hook(l, hooks, HookName::Layer(l, HookPoint::V), v)?;
        let pattern = self.pattern_here(l, &q, &k, q_start)?;
        let pattern = self.hook(l, hooks, HookName::Layer(l, HookPoint::Pattern), pattern)?;
        let z = self.attention_z(&pattern, &v)?;
        let z = self.hook(l, hooks, HookName::Layer(l, HookPoint::Z), z)?;
        let a = self.attn_post(l, &self.out_pre_norm_here(l, &z)?)?;
        let a = self.hook(l, hooks, HookName::Layer(l, HookPoint::AttnOut), a)?;
        let x_rows = if last_only { x.narrow(1, t - 1, 1)? } else { x };
        let mid = (&x_rows + a)?;
        let mid = self.hook(l, hooks, HookName::Layer(l, HookPoint::ResidMid), mid)?;
        let m_in = self.mlp_input(&mid, &x_rows).clone();
        let m = self.mlp(
            l,
            &self.hook(l, hooks, HookName::Layer(l, HookPoint::MlpIn), m_in)?,
        )?;
        let m = self.hook(l, hooks, HookName::Layer(l, HookPoint::MlpOut), m)?;
        let post = (mid + m)?;
        self.hook(l, hooks, HookName::Layer(l, HookPoint::ResidPost), post)
    }

    /// What the MLP reads, given the block's resid_mid and its input (resid_pre): the family's
    /// block shape decides.
    fn mlp_input<'t>(&self, mid: &'t Tensor, pre: &'t Tensor) -> &'t Tensor {
        match self.cfg.block {
            BlockShape::Sequential => mid,
            BlockShape::Parallel => pre,
        }
    }

    /// The family's block shape (the fast algorithm's pass 1 depends on it).
    pub fn block_shape(&self) -> BlockShape {
        self.cfg.block
    }

    /// resid_post of block `l` from a (replaced) resid_mid `mid` and the block's input `pre`,
    /// which only a parallel block's MLP reads. Shapes broadcast: a shared `pre` [1, N, D] with
    /// per-head `mid` [H, N, D] gives [H, N, D], and a parallel block's MLP then runs once.
    pub fn block_after_mid(&self, l: usize, mid: &Tensor, pre: &Tensor) -> Result<Tensor> {
        let (mid, pre) = (&self.at(l, mid)?, &self.at(l, pre)?);
        let out = mid.broadcast_add(&self.mlp_here(l, self.mlp_input(mid, pre))?)?;
        self.home(out)
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
            let here = self.at(l, &x)?;
            x = self.block_here(l, here, opts.last_position_only && l == last, hooks)?;
        }
        let x = self.home(x)?;
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

/// The additive causal (and sliding-window) mask [Tq, Tk] on `device`.
fn build_mask(
    device: &Device,
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
    Ok(Tensor::from_vec(m, (tq, tk), device)?.to_dtype(dtype)?)
}
