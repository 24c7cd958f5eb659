//! Exact fast path patching (`../shared/docs/fast-path-patching.md`): the same numbers as the
//! literal algorithm, without two full forward passes per sender.
//!
//! - Nothing before the sender layer changes: pass 1 starts from the cached contrast
//!   resid_pre[ls].
//! - Attention is frozen in pass 1: the sender layer's attention output is the contrast one with
//!   one head's z swapped *before* Gemma's post-attention norm; later layers add the cached
//!   contrast attention outputs. Pass 1 is an MLP-only chain, row by row.
//! - Positions before the first token where the prompts differ carry no change; for receivers at
//!   the last layer only the last position matters, and pass 2 is just the final norm and two
//!   logits per prompt.
//! - The H heads of a sender layer go through the chain together (rows = heads × prompts ×
//!   positions).

use candle_core::Tensor;

use crate::model::{HookName, Hooks, Model, RunOptions, Start};

use super::batch::{logit_diffs, Batch, BatchCache};
use super::receiver::{HeadReceiver, Receiver, ResidKind};
use super::PatchError;

type Result<T> = std::result::Result<T, PatchError>;

/// A point in the residual stream where pass 1 stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// resid_mid of a layer.
    Mid(usize),
    /// resid_post of a layer.
    Post(usize),
}

impl Stop {
    fn layer(self) -> usize {
        match self {
            Stop::Mid(l) | Stop::Post(l) => l,
        }
    }
}

/// Shapes of one batch.
struct Dims {
    heads: usize,
    batch: usize,
    len: usize,
    d_model: usize,
}

/// Pass 1 for every head of sender layer `ls` at positions `p0..len`: the patched residual
/// stream at each stop, as [H, B * P, D] (rows ordered head, prompt, position).
fn pass1(
    model: &Model,
    cache: &BatchCache,
    ls: usize,
    p0: usize,
    stops: &[Stop],
    dims: &Dims,
) -> Result<Vec<Tensor>> {
    let Dims {
        heads: h,
        batch: b,
        len: t,
        d_model: d,
    } = *dims;
    let p = t - p0;
    let dh = model.cfg.d_head;
    let z_c = cache.z_contrast[ls].narrow(1, p0, p)?;
    let dz = (cache.z_normal[ls].narrow(1, p0, p)? - &z_c)?; // [B, P, H, dh]
    let dz = dz.permute((2, 0, 1, 3))?.reshape((h, b * p, dh))?;
    let w_o = model.layers[ls]
        .o
        .w
        .reshape((d, h, dh))?
        .permute((1, 2, 0))?
        .contiguous()?; // [H, dh, D]
    let delta = dz.matmul(&w_o)?; // [H, B*P, D]: each head's own swap
    let o_c = model.attn_out_pre_norm(ls, &z_c)?.reshape((1, b * p, d))?;
    let a = model.attn_post(ls, &delta.broadcast_add(&o_c)?)?;
    let x0 = cache.resid_pre[ls]
        .narrow(1, p0, p)?
        .reshape((1, b * p, d))?;
    let mut x = x0.broadcast_add(&a)?;

    let last = stops
        .iter()
        .map(|s| s.layer())
        .max()
        .expect("at least one stop");
    let mut out: Vec<Option<Tensor>> = vec![None; stops.len()];
    let mut record = |s: Stop, x: &Tensor| {
        for (i, want) in stops.iter().enumerate() {
            if *want == s {
                out[i] = Some(x.clone());
            }
        }
    };
    for l in ls..=last {
        if l > ls {
            let a = cache.attn_out[l].narrow(1, p0, p)?.reshape((1, b * p, d))?;
            x = x.broadcast_add(&a)?;
        }
        record(Stop::Mid(l), &x);
        if Stop::Mid(l) == Stop::Mid(last) && !stops.contains(&Stop::Post(last)) {
            break;
        }
        x = (&x + model.mlp(l, &x)?)?;
        record(Stop::Post(l), &x);
    }
    Ok(out
        .into_iter()
        .map(|o| o.expect("every stop reached"))
        .collect())
}

/// Full-length residual stream [H*B, T, D]: the contrast run's `prefix` [B, T, D] before `p0`
/// (identical for every sender), pass 1's rows [H, B*P, D] from `p0` on.
fn assemble(prefix: &Tensor, rows: &Tensor, p0: usize, dims: &Dims) -> Result<Tensor> {
    let Dims {
        heads: h,
        batch: b,
        len: t,
        d_model: d,
    } = *dims;
    let rows = rows.reshape((h, b, t - p0, d))?;
    let full = if p0 == 0 {
        rows
    } else {
        let pre = prefix
            .narrow(1, 0, p0)?
            .unsqueeze(0)?
            .broadcast_as((h, b, p0, d))?
            .contiguous()?;
        Tensor::cat(&[&pre, &rows], 2)?
    };
    Ok(full.reshape((h * b, t, d))?)
}

/// Repeats a per-prompt tensor [B, ...] for every sender head: [H*B, ...].
fn repeat_rows(x: &Tensor, h: usize) -> Result<Tensor> {
    let mut shape = x.dims().to_vec();
    let b = shape[0];
    let mut expanded = vec![h];
    expanded.extend_from_slice(&shape);
    let y = x.unsqueeze(0)?.broadcast_as(expanded)?.contiguous()?;
    shape[0] = h * b;
    Ok(y.reshape(shape)?)
}

/// Runs the model from `layer` (resid_pre [H*B, T, D]) to the last layer, last position only,
/// and returns the per-row logit differences.
fn finish(
    model: &Model,
    layer: usize,
    resid: Tensor,
    answers: &Tensor,
    hooks: &mut Hooks,
) -> Result<Vec<f32>> {
    let n = model.n_layers();
    let out = model.run(
        Start::Resid { layer, resid },
        RunOptions {
            stop_after: Some(n - 1),
            last_position_only: true,
        },
        hooks,
    )?;
    let last = out.resid.squeeze(1)?;
    logit_diffs(&model.answer_logits(&last, answers)?)
}

/// Sums over the batch's prompts of the patched logit difference, for every head of sender
/// layer `ls`.
pub fn sweep_layer(
    model: &Model,
    batch: &Batch,
    cache: &BatchCache,
    receiver: &Receiver,
    ls: usize,
) -> Result<Vec<f64>> {
    let n_layers = model.n_layers();
    let h = model.n_heads();
    let dims = Dims {
        heads: h,
        batch: batch.size(),
        len: batch.len,
        d_model: model.cfg.d_model,
    };
    let (b, t) = (dims.batch, dims.len);
    if !receiver.reachable_from(ls) {
        // The sender cannot reach the receiver: pass 2 reproduces the contrast run exactly.
        let c: f64 = cache.ld_contrast.iter().map(|&x| x as f64).sum();
        return Ok(vec![c; h]);
    }
    let answers = repeat_rows(&batch.answers, h)?;
    let ld: Vec<f32> = match receiver {
        Receiver::Resid { kind, layers } => {
            let r = *layers.iter().max().expect("validated");
            // Replacing the residual stream at several layers is the same as at the last one.
            let stop = match kind {
                ResidKind::ResidPre => Stop::Post(r - 1),
                ResidKind::ResidMid => Stop::Mid(r),
                ResidKind::ResidPost => Stop::Post(r),
            };
            let at_end = stop.layer() == n_layers - 1;
            // Everything after the last layer's attention is per position: only the last one
            // enters the metric.
            let p0 = if at_end { t - 1 } else { batch.first_diff };
            let x = pass1(model, cache, ls, p0, &[stop], &dims)?.remove(0);
            if at_end {
                let x = match stop {
                    Stop::Mid(l) => (&x + model.mlp(l, &x)?)?,
                    Stop::Post(_) => x,
                };
                let rows = x.reshape((h * b, dims.d_model))?;
                logit_diffs(&model.answer_logits(&rows, &answers)?)?
            } else {
                let (prefix, next) = match stop {
                    Stop::Post(l) => (cache.resid_pre[l + 1].clone(), l + 1),
                    Stop::Mid(l) => ((&cache.resid_pre[l] + &cache.attn_out[l])?, l + 1),
                };
                let mut full = assemble(&prefix, &x, p0, &dims)?;
                if let Stop::Mid(l) = stop {
                    full = (&full + model.mlp(l, &full)?)?;
                }
                finish(model, next, full, &answers, &mut Hooks::none())?
            }
        }
        Receiver::Heads { heads } => {
            let affected: Vec<HeadReceiver> =
                heads.iter().copied().filter(|r| r.layer > ls).collect();
            let p0 = batch.first_diff;
            let stops: Vec<Stop> = affected.iter().map(|r| Stop::Post(r.layer - 1)).collect();
            let xs = pass1(model, cache, ls, p0, &stops, &dims)?;
            // Each receiver head's patched input, from pass 1's residual stream at its layer.
            let mut inputs: Vec<(HeadReceiver, Tensor)> = Vec::new();
            for (r, x) in affected.iter().zip(&xs) {
                let full = assemble(&cache.resid_pre[r.layer], x, p0, &dims)?;
                let normed = model.attn_norm_input(r.layer, &full)?;
                inputs.push((*r, model.head_input(r.layer, r.head, r.input, &normed)?));
            }
            let start = affected.iter().map(|r| r.layer).min().expect("reachable");
            let resid = repeat_rows(&cache.resid_pre[start], h)?;
            let mut hooks =
                Hooks::none().with_callback(Box::new(move |name: HookName, live: Tensor| {
                    let mut live = live;
                    for (r, value) in &inputs {
                        if name == HookName::Layer(r.layer, r.input.hook_point()) {
                            live = replace_head(&live, r.head, value)?;
                        }
                    }
                    Ok(live)
                }));
            finish(model, start, resid, &answers, &mut hooks)?
        }
    };
    let mut sums = vec![0f64; h];
    for (i, v) in ld.iter().enumerate() {
        sums[i / b] += *v as f64;
    }
    Ok(sums)
}

/// `live` [N, T', H, dh] with head `head` replaced by the last T' positions of `value`
/// [N, T, dh] (T' = 1 for queries of a last-position-only layer).
fn replace_head(
    live: &Tensor,
    head: usize,
    value: &Tensor,
) -> std::result::Result<Tensor, crate::model::ModelError> {
    let n_heads = live.dim(2)?;
    let (t_live, t) = (live.dim(1)?, value.dim(1)?);
    let value = value
        .narrow(1, t - t_live, t_live)?
        .unsqueeze(2)?
        .to_dtype(live.dtype())?;
    let mut parts: Vec<Tensor> = Vec::with_capacity(3);
    if head > 0 {
        parts.push(live.narrow(2, 0, head)?);
    }
    parts.push(value);
    if head + 1 < n_heads {
        parts.push(live.narrow(2, head + 1, n_heads - head - 1)?);
    }
    Ok(Tensor::cat(&parts, 2)?)
}
