//! Hook points with TransformerLens names, activation caches and patches.
//!
//! Shapes, as TransformerLens has them (B = batch, T = positions, H = query heads):
//! - `hook_resid_pre`, `hook_attn_out`, `hook_resid_mid`, `hook_mlp_in`, `hook_mlp_out`,
//!   `hook_resid_post`: [B, T, d_model]
//! - `attn.hook_q`, `attn.hook_k`, `attn.hook_v`, `attn.hook_z`: [B, T, H, d_head]. k and v are
//!   the *ungrouped* view of grouped-query attention: query head h sees its own copy of KV head
//!   h / (H / n_kv_heads), so a patch of `hook_v` at head h changes what head h alone reads.
//!   q and k are taken before the rotary embedding.
//! - `attn.hook_pattern`: [B, H, T_query, T_key] (softmax probabilities)
//! - `logits`: [B, T, vocab]
//!
//! When a forward runs only the last position (`last_position_only`), the hooks of the last
//! layer it runs see T = 1 for queries (q, z, pattern rows, attn_out, resid_mid, mlp_in,
//! mlp_out, resid_post); k and v keep every position.

use candle_core::{DType, Tensor};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::ModelError;

/// A hook point within a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HookPoint {
    ResidPre,
    Q,
    K,
    V,
    Pattern,
    Z,
    AttnOut,
    ResidMid,
    /// The MLP's input before its norm (TransformerLens' `hook_mlp_in`, with
    /// `use_hook_mlp_in`): resid_mid in a sequential block, resid_pre in a parallel one.
    MlpIn,
    MlpOut,
    ResidPost,
}

impl HookPoint {
    pub const ALL: [HookPoint; 11] = [
        HookPoint::ResidPre,
        HookPoint::Q,
        HookPoint::K,
        HookPoint::V,
        HookPoint::Pattern,
        HookPoint::Z,
        HookPoint::AttnOut,
        HookPoint::ResidMid,
        HookPoint::MlpIn,
        HookPoint::MlpOut,
        HookPoint::ResidPost,
    ];

    /// The TransformerLens suffix after `blocks.{l}.`.
    pub fn tl_suffix(self) -> &'static str {
        match self {
            HookPoint::ResidPre => "hook_resid_pre",
            HookPoint::Q => "attn.hook_q",
            HookPoint::K => "attn.hook_k",
            HookPoint::V => "attn.hook_v",
            HookPoint::Pattern => "attn.hook_pattern",
            HookPoint::Z => "attn.hook_z",
            HookPoint::AttnOut => "hook_attn_out",
            HookPoint::ResidMid => "hook_resid_mid",
            HookPoint::MlpIn => "hook_mlp_in",
            HookPoint::MlpOut => "hook_mlp_out",
            HookPoint::ResidPost => "hook_resid_post",
        }
    }

    /// Which dimension indexes heads, for the per-head hooks.
    pub fn head_dim(self) -> Option<usize> {
        match self {
            HookPoint::Q | HookPoint::K | HookPoint::V | HookPoint::Z => Some(2),
            HookPoint::Pattern => Some(1),
            _ => None,
        }
    }

    /// Which dimension indexes (query) positions.
    pub fn pos_dim(self) -> usize {
        match self {
            HookPoint::Pattern => 2,
            _ => 1,
        }
    }
}

/// A hook: a point in a layer, or the final logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HookName {
    Layer(usize, HookPoint),
    Logits,
}

impl HookName {
    pub fn layer(l: usize, p: HookPoint) -> Self {
        HookName::Layer(l, p)
    }

    /// Parses a TransformerLens name such as `blocks.3.attn.hook_v` or `logits`.
    pub fn parse(s: &str) -> Option<Self> {
        if s == "logits" {
            return Some(HookName::Logits);
        }
        let rest = s.strip_prefix("blocks.")?;
        let (l, suffix) = rest.split_once('.')?;
        let l: usize = l.parse().ok()?;
        HookPoint::ALL
            .iter()
            .find(|p| p.tl_suffix() == suffix)
            .map(|&p| HookName::Layer(l, p))
    }
}

impl fmt::Display for HookName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookName::Layer(l, p) => write!(f, "blocks.{l}.{}", p.tl_suffix()),
            HookName::Logits => f.write_str("logits"),
        }
    }
}

/// Which activations a run records.
#[derive(Debug, Clone, Default)]
pub enum Capture {
    #[default]
    Nothing,
    All,
    Only(BTreeSet<HookName>),
}

impl Capture {
    pub fn only(names: impl IntoIterator<Item = HookName>) -> Self {
        Capture::Only(names.into_iter().collect())
    }
    pub fn wants(&self, name: HookName) -> bool {
        match self {
            Capture::Nothing => false,
            Capture::All => true,
            Capture::Only(s) => s.contains(&name),
        }
    }
}

/// Replaces (part of) an activation with a given tensor.
///
/// `value` has the full shape of the hooked activation; `heads`, `rows` (batch rows) and
/// `positions` select which parts of it replace the live activation (all, when `None`).
#[derive(Debug, Clone)]
pub struct Patch {
    pub hook: HookName,
    pub value: Tensor,
    pub heads: Option<Vec<usize>>,
    pub rows: Option<Vec<usize>>,
    pub positions: Option<Vec<usize>>,
}

impl Patch {
    pub fn whole(hook: HookName, value: Tensor) -> Self {
        Patch {
            hook,
            value,
            heads: None,
            rows: None,
            positions: None,
        }
    }
    pub fn heads(hook: HookName, value: Tensor, heads: Vec<usize>) -> Self {
        Patch {
            heads: Some(heads),
            ..Patch::whole(hook, value)
        }
    }
    pub fn with_rows(mut self, rows: Vec<usize>) -> Self {
        self.rows = Some(rows);
        self
    }
    pub fn with_positions(mut self, positions: Vec<usize>) -> Self {
        self.positions = Some(positions);
        self
    }

    /// Applies the patch to the live activation.
    pub fn apply(&self, live: &Tensor) -> Result<Tensor, ModelError> {
        if self.value.dims() != live.dims() {
            return Err(ModelError::Invalid(format!(
                "patch for {} has shape {:?}, but the activation has shape {:?}",
                self.hook,
                self.value.dims(),
                live.dims()
            )));
        }
        let value = self
            .value
            .to_dtype(live.dtype())?
            .to_device(live.device())?;
        if self.heads.is_none() && self.rows.is_none() && self.positions.is_none() {
            return Ok(value);
        }
        let dims = live.dims().to_vec();
        let mut selections: Vec<(usize, &Vec<usize>)> = Vec::new();
        if let Some(rows) = &self.rows {
            selections.push((0, rows));
        }
        if let Some(heads) = &self.heads {
            let point = match self.hook {
                HookName::Layer(_, p) => p,
                HookName::Logits => {
                    return Err(ModelError::Invalid("per-head patch on the logits".into()))
                }
            };
            let d = point.head_dim().ok_or_else(|| {
                ModelError::Invalid(format!(
                    "{} has no head dimension to patch per head",
                    self.hook
                ))
            })?;
            selections.push((d, heads));
        }
        if let Some(pos) = &self.positions {
            let d = match self.hook {
                HookName::Layer(_, p) => p.pos_dim(),
                HookName::Logits => 1,
            };
            selections.push((d, pos));
        }
        // Build the boolean mask on the host: a product of one indicator per selected dim.
        let mut mask_dims = vec![1usize; dims.len()];
        let mut mask: Vec<u8> = vec![1];
        for (d, idx) in selections {
            for &i in idx {
                if i >= dims[d] {
                    return Err(ModelError::Invalid(format!(
                        "patch for {}: index {i} out of range for dimension {d} of size {}",
                        self.hook, dims[d]
                    )));
                }
            }
            let mut ind = vec![0u8; dims[d]];
            for &i in idx {
                ind[i] = 1;
            }
            let before: usize = mask_dims[..d].iter().product();
            let after: usize = mask_dims[d + 1..].iter().product();
            // mask_dims[d] is 1 here: expand it to dims[d].
            let mut next = Vec::with_capacity(mask.len() * dims[d]);
            for b in 0..before {
                for &flag in &ind {
                    for a in 0..after {
                        next.push(mask[b * after + a] * flag);
                    }
                }
            }
            mask = next;
            mask_dims[d] = dims[d];
        }
        let mask = Tensor::from_vec(mask, mask_dims.as_slice(), live.device())?
            .broadcast_as(dims.as_slice())?;
        Ok(mask.where_cond(&value, live)?)
    }
}

/// Activations recorded during a run, by hook name.
#[derive(Debug, Clone, Default)]
pub struct ActivationCache {
    pub map: BTreeMap<HookName, Tensor>,
}

impl ActivationCache {
    pub fn get(&self, name: HookName) -> Option<&Tensor> {
        self.map.get(&name)
    }
    pub fn layer(&self, l: usize, p: HookPoint) -> Option<&Tensor> {
        self.map.get(&HookName::Layer(l, p))
    }
    /// The activation or an error that names the missing hook.
    pub fn require(&self, l: usize, p: HookPoint) -> Result<&Tensor, ModelError> {
        self.layer(l, p).ok_or_else(|| {
            ModelError::Invalid(format!("{} was not captured", HookName::Layer(l, p)))
        })
    }
    pub fn insert(&mut self, name: HookName, t: Tensor) {
        self.map.insert(name, t);
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// A user callback that sees every hooked activation and may replace it.
pub type HookFn<'a> = Box<dyn FnMut(HookName, Tensor) -> Result<Tensor, ModelError> + 'a>;

/// Everything that observes or changes a run: captures, patches, and an optional callback.
#[derive(Default)]
pub struct Hooks<'a> {
    pub capture: Capture,
    pub patches: Vec<Patch>,
    pub callback: Option<HookFn<'a>>,
    pub cache: ActivationCache,
}

impl<'a> Hooks<'a> {
    pub fn none() -> Self {
        Self::default()
    }
    pub fn capture(capture: Capture) -> Self {
        Self {
            capture,
            ..Self::default()
        }
    }
    pub fn with_patch(mut self, p: Patch) -> Self {
        self.patches.push(p);
        self
    }
    pub fn with_callback(mut self, f: HookFn<'a>) -> Self {
        self.callback = Some(f);
        self
    }

    /// Whether anything at all happens at `name` (so the forward can skip work otherwise).
    pub fn active(&self, name: HookName) -> bool {
        self.callback.is_some()
            || self.capture.wants(name)
            || self.patches.iter().any(|p| p.hook == name)
    }

    /// Runs the hooks of `name` on `t`: patches, then the callback, then the capture.
    pub fn run(&mut self, name: HookName, mut t: Tensor) -> Result<Tensor, ModelError> {
        for p in self.patches.iter().filter(|p| p.hook == name) {
            t = p.apply(&t)?;
        }
        if let Some(f) = self.callback.as_mut() {
            t = f(name, t)?;
        }
        if self.capture.wants(name) {
            self.cache.insert(name, t.clone());
        }
        Ok(t)
    }
}

/// Converts to f32 on the host for inspection.
pub fn to_f32(t: &Tensor) -> Result<Tensor, ModelError> {
    Ok(t.to_dtype(DType::F32)?)
}
