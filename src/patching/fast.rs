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
//!   positions), and a chunk of sender layers can advance together, layer by layer: at model
//!   layer l the batch holds every sender of the chunk with ls <= l, so each weight matrix is
//!   read once per chunk (what a GPU needs: far fewer, larger kernels). A chunk of one layer
//!   streams rows one at a time.

use std::collections::BTreeMap;

use candle_core::Tensor;

use crate::model::{BlockShape, HookName, Hooks, Model, RunOptions, Start};

use super::batch::{Batch, BatchCache, Needs};
use super::metric::{repeat_rows, Readout};
use super::receiver::{HeadReceiver, Receiver, ResidKind};
use super::senders::{ChunkValues, Senders};
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

/// Shapes of one batch; `groups` = senders in the chunk (heads and MLPs of its layers).
struct Dims {
    groups: usize,
    batch: usize,
    len: usize,
    d_model: usize,
}

/// The pass-1 state of the sender heads of layer `ls`: the layer's (contrast) resid_pre
/// [1, B * P, D], shared by every head, and resid_mid with one head's z swapped inside the
/// attention output, [H, B * P, D], at positions `p0..len` (rows ordered head, prompt,
/// position).
fn sender_start(
    model: &Model,
    batch: &Batch,
    cache: &BatchCache,
    ls: usize,
    p0: usize,
) -> Result<(Tensor, Tensor)> {
    let (d, b, t) = (model.cfg.d_model, batch.size(), batch.len);
    let p = t - p0;
    let z_c = cache.z_contrast_from(ls, p0)?;
    let mut z_n = cache.z_normal_from(ls, p0)?;
    // A sender restricted to some positions keeps the contrast z elsewhere.
    if let Some(pos) = batch.sender_positions() {
        let m = batch.mask(model, pos, 1, p0)?.reshape((b, p, 1, 1))?;
        z_n = m.broadcast_as(z_n.shape())?.where_cond(&z_n, &z_c)?;
    }
    let a = model.attn_out_head_swaps(ls, &z_c, &z_n)?;
    let x0 = cache.resid_pre_from(ls, p0)?.reshape((1, b * p, d))?;
    let mid = x0.broadcast_add(&a)?;
    Ok((x0, mid))
}

/// Concatenates row groups along the first dimension.
fn cat(parts: Vec<Tensor>) -> Result<Tensor> {
    Ok(match parts.len() {
        1 => parts.into_iter().next().expect("one part"),
        _ => Tensor::cat(&parts, 0)?,
    })
}

/// The senders of one sender layer in pass 1: its H heads, its MLP, or both (rows of the
/// heads first, then the MLP's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LayerRows {
    layer: usize,
    heads: bool,
    mlp: bool,
}

impl LayerRows {
    /// Row groups (senders) of this layer, for `n_heads` heads.
    fn groups(self, n_heads: usize) -> usize {
        usize::from(self.heads) * n_heads + usize::from(self.mlp)
    }
}

/// The pass-1 state of layer `ls`'s MLP sender, resid_post [1, B * P, D] at positions
/// `p0..len`: nothing before it changes and its attention is the contrast one, so it is the
/// contrast resid_mid (resid_pre + attention output, also in a parallel block) plus the normal
/// run's MLP output; at positions outside a sender position set, the contrast MLP's.
fn mlp_start(
    model: &Model,
    batch: &Batch,
    cache: &BatchCache,
    ls: usize,
    p0: usize,
) -> Result<Tensor> {
    let (b, t) = (batch.size(), batch.len);
    let pre = cache.resid_pre_from(ls, p0)?;
    let mid = (&pre + cache.attn_out_from(ls, p0)?)?;
    let mut post = (&mid + cache.mlp_normal_from(ls, p0)?)?;
    if let Some(pos) = batch.sender_positions() {
        let m = batch.mask(model, pos, 1, p0)?.reshape((b, t - p0, 1))?;
        let contrast = model.block_after_mid(ls, &mid, &pre)?;
        post = m.broadcast_as(post.shape())?.where_cond(&post, &contrast)?;
    }
    let d = post.dim(2)?;
    Ok(post.reshape((1, b * (t - p0), d))?)
}

/// resid_post of layer `l` for row groups given as (resid_pre, resid_mid): the rest of the
/// model's block (`block_after_mid`), the groups concatenated.
fn block_posts(model: &Model, l: usize, groups: Vec<(Tensor, Tensor)>) -> Result<Tensor> {
    Ok(match model.block_shape() {
        // The MLP reads resid_mid: one call over every row group (fewer, larger kernels).
        BlockShape::Sequential => {
            let mid = cat(groups.into_iter().map(|(_, m)| m).collect())?;
            model.block_after_mid(l, &mid, &mid)?
        }
        // The MLP reads resid_pre, which the new sender layer's heads share: per group.
        BlockShape::Parallel => cat(groups
            .iter()
            .map(|(x, mid)| model.block_after_mid(l, mid, x))
            .collect::<std::result::Result<Vec<_>, _>>()?)?,
    })
}

/// Pass 1 for the senders of `senders` (ascending layers) at positions `p0..len`, advancing
/// all of them together: the patched residual stream at each stop, as [G, B * P, D] with G =
/// the senders' row groups (ordered layer, then heads, then MLP; rows within a group prompt,
/// position). Every stop must be at or after the last sender layer, and no MLP sender's layer
/// may be a resid_mid stop (the MLP writes after it: [`Receiver::mlp_reachable_from`]).
///
/// Each layer's attention is frozen (the contrast output, the sender layer's with one head
/// swapped); the rest of the block is the model's (`block_after_mid`): in a sequential block
/// the MLP reads resid_mid, in a parallel one the block's input, so there a sender's change
/// first reaches the MLP of the next layer. An MLP sender enters the chain after its own MLP.
fn pass1(
    model: &Model,
    batch: &Batch,
    cache: &BatchCache,
    senders: &[LayerRows],
    p0: usize,
    stops: &[Stop],
) -> Result<Vec<Tensor>> {
    let (d, b, t) = (model.cfg.d_model, batch.size(), batch.len);
    let p = t - p0;
    let first = senders[0].layer;
    let last = stops
        .iter()
        .map(|s| s.layer())
        .max()
        .expect("at least one stop");
    let mut out: Vec<Option<Tensor>> = vec![None; stops.len()];
    // Pass 1's resid_pre at layer l of the senders already in the chain.
    let mut pre: Option<Tensor> = None;
    for l in first..=last {
        // (resid_pre, resid_mid) of each row group at layer l.
        let mut groups: Vec<(Tensor, Tensor)> = Vec::new();
        if let Some(x) = pre.take() {
            // Senders already in the chain pass layer l's (frozen, contrast) attention.
            let a = cache.attn_out_from(l, p0)?.reshape((1, b * p, d))?;
            let mid = x.broadcast_add(&a)?;
            groups.push((x, mid));
        }
        let new = senders.iter().find(|s| s.layer == l);
        if new.is_some_and(|s| s.heads) {
            groups.push(sender_start(model, batch, cache, l, p0)?);
        }
        let mlp_post = match new.filter(|s| s.mlp) {
            Some(_) => Some(mlp_start(model, batch, cache, l, p0)?),
            None => None,
        };
        if groups.is_empty() && mlp_post.is_none() {
            continue;
        }
        if stops.contains(&Stop::Mid(l)) {
            if mlp_post.is_some() {
                return Err(PatchError::Invalid(format!(
                    "internal: the MLP sender of layer {l} cannot reach resid_mid {l}"
                )));
            }
            let mid = cat(groups.iter().map(|(_, m)| m.clone()).collect())?;
            for (i, want) in stops.iter().enumerate() {
                if *want == Stop::Mid(l) {
                    out[i] = Some(mid.clone());
                }
            }
        }
        if l == last && !stops.contains(&Stop::Post(last)) {
            break;
        }
        let mut posts = Vec::with_capacity(2);
        if !groups.is_empty() {
            posts.push(block_posts(model, l, groups)?);
        }
        posts.extend(mlp_post);
        let post = cat(posts)?;
        for (i, want) in stops.iter().enumerate() {
            if *want == Stop::Post(l) {
                out[i] = Some(post.clone());
            }
        }
        pre = Some(post);
    }
    Ok(out
        .into_iter()
        .map(|o| o.expect("every stop reached"))
        .collect())
}

/// Full-length residual stream [G*B, T, D]: the contrast run's `prefix` [B, T, D] before `p0`
/// (identical for every sender), pass 1's rows [G, B*P, D] from `p0` on.
fn assemble(prefix: &Tensor, rows: &Tensor, p0: usize, dims: &Dims) -> Result<Tensor> {
    let Dims {
        groups: h,
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

/// Runs the model from `layer` (resid_pre [G*B, T, D]) to the last layer, last position only,
/// and returns the per-row metric.
fn finish(
    model: &Model,
    layer: usize,
    resid: Tensor,
    readout: &Readout,
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
    readout.read(model, &last)
}

/// Where pass 1 of a residual receiver stops, and whether only the last position matters
/// after it ([`Receiver::last_position_only`]).
fn resid_stop(receiver: &Receiver, n_layers: usize) -> (Stop, bool) {
    let Receiver::Resid { kind, .. } = receiver else {
        unreachable!("called for residual receivers only")
    };
    let r = receiver.max_layer();
    // Replacing the residual stream at several layers is the same as at the last one.
    let stop = match kind {
        ResidKind::ResidPre => Stop::Post(r.saturating_sub(1)),
        ResidKind::ResidMid => Stop::Mid(r),
        ResidKind::ResidPost => Stop::Post(r),
    };
    (stop, receiver.last_position_only(n_layers))
}

/// What the cache passes must keep for `receiver` and sender layers from `begin_layer`, for
/// head senders (set `mlp` for MLP senders: the sender layers' range is the same).
pub fn needs(model: &Model, batch: &Batch, receiver: &Receiver, begin_layer: usize) -> Needs {
    let n = model.n_layers();
    let max = receiver.max_layer();
    match receiver {
        Receiver::Resid { .. } => {
            let (stop, at_end) = resid_stop(receiver, n);
            let full = match stop {
                _ if at_end => Vec::new(),
                Stop::Post(l) => vec![l + 1],
                Stop::Mid(l) => vec![l],
            };
            Needs {
                from: if at_end {
                    batch.len - 1
                } else {
                    batch.first_diff
                },
                z_layers: begin_layer..=max,
                resid_layers: begin_layer..=stop.layer(),
                full,
                mlp: false,
            }
        }
        Receiver::Heads { heads } => Needs {
            from: batch.first_diff,
            z_layers: begin_layer..=max,
            resid_layers: begin_layer..=max,
            full: heads.iter().map(|h| h.layer).collect(),
            mlp: false,
        },
        // Pass 2 adds the patched MLP output to the contrast resid_mid of the receiver layer
        // (kept from `from` on), then runs on from the next layer's full contrast resid_pre.
        Receiver::MlpIn { layer, .. } => {
            let at_end = receiver.last_position_only(n);
            Needs {
                from: if at_end {
                    batch.len - 1
                } else {
                    batch.first_diff
                },
                z_layers: begin_layer..=max,
                resid_layers: begin_layer..=max,
                full: if at_end { Vec::new() } else { vec![layer + 1] },
                mlp: false,
            }
        }
    }
}

/// The patched metric of each of the batch's prompts, for every head of sender layer `ls`:
/// [head][prompt].
pub fn sweep_layer(
    model: &Model,
    batch: &Batch,
    cache: &BatchCache,
    receiver: &Receiver,
    ls: usize,
) -> Result<Vec<Vec<f32>>> {
    Ok(sweep_chunk(model, batch, cache, receiver, &[ls])?.remove(0))
}

/// The patched metric of each of the batch's prompts, per sender layer of `layers` (in the
/// order given) and head: [layer][head][prompt], all layers advancing through the model
/// together.
pub fn sweep_chunk(
    model: &Model,
    batch: &Batch,
    cache: &BatchCache,
    receiver: &Receiver,
    layers: &[usize],
) -> Result<Vec<Vec<Vec<f32>>>> {
    let v = sweep_chunk_senders(model, batch, cache, receiver, layers, Senders::Heads)?;
    Ok(v.heads.expect("head senders asked for"))
}

/// The patched metric of each of the batch's prompts for the senders of `layers` (in the
/// order given) that `senders` asks for: per layer and head [layer][head][prompt], per layer's
/// MLP [layer][prompt]. A layer's MLP goes through pass 1 in the same batch as its heads (one
/// more row group), all layers advancing together. The cache must hold the normal run's MLP
/// outputs when MLP senders are asked for (`Needs::mlp`).
pub fn sweep_chunk_senders(
    model: &Model,
    batch: &Batch,
    cache: &BatchCache,
    receiver: &Receiver,
    layers: &[usize],
    senders: Senders,
) -> Result<ChunkValues> {
    if !supports(receiver, batch) {
        return Err(PatchError::Invalid(format!(
            "the fast algorithm cannot patch receiver {} at a position set (several residual \
             layers); the literal algorithm can (--algorithm reference)",
            receiver.cli_text()
        )));
    }
    let h = model.n_heads();
    let b = batch.size();
    // Senders that cannot reach the receiver keep the contrast run's values: pass 2
    // reproduces the contrast run exactly.
    let mut heads: BTreeMap<usize, Vec<Vec<f32>>> = BTreeMap::new();
    let mut mlp: BTreeMap<usize, Vec<f32>> = BTreeMap::new();
    let mut rows: Vec<LayerRows> = Vec::new();
    for &l in layers {
        heads.insert(l, vec![cache.m_contrast.clone(); h]);
        mlp.insert(l, cache.m_contrast.clone());
        let r = LayerRows {
            layer: l,
            heads: senders.heads() && receiver.reachable_from(l),
            mlp: senders.mlp() && receiver.mlp_reachable_from(l),
        };
        if (r.heads || r.mlp) && !rows.iter().any(|x| x.layer == l) {
            rows.push(r);
        }
    }
    rows.sort_unstable_by_key(|r| r.layer);
    // Sender layers see the same receivers when they lie between the same receiver layers.
    let mut groups: Vec<Vec<LayerRows>> = Vec::new();
    for r in rows {
        match groups.last_mut() {
            Some(g) if affected(receiver, g[0].layer) == affected(receiver, r.layer) => g.push(r),
            _ => groups.push(vec![r]),
        }
    }
    for g in groups {
        let m = sweep_reachable(model, batch, receiver, cache, &g)?;
        let mut base = 0;
        for r in g {
            let mut next = |values: &[f32]| -> Vec<f32> {
                base += b;
                values[base - b..base].to_vec()
            };
            if r.heads {
                heads.insert(r.layer, (0..h).map(|_| next(&m)).collect());
            }
            if r.mlp {
                mlp.insert(r.layer, next(&m));
            }
        }
    }
    Ok(ChunkValues {
        heads: senders
            .heads()
            .then(|| layers.iter().map(|l| heads[l].clone()).collect()),
        mlp: senders
            .mlp()
            .then(|| layers.iter().map(|l| mlp[l].clone()).collect()),
    })
}

/// The receiver heads a sender in `layer` reaches (all of a residual receiver: empty list).
fn affected(receiver: &Receiver, layer: usize) -> Vec<HeadReceiver> {
    receiver.heads_reached_from(layer)
}

/// Per-row metric for the senders of `layers` (ascending, all reaching the same
/// receivers), rows ordered layer, sender (heads, then MLP), prompt.
fn sweep_reachable(
    model: &Model,
    batch: &Batch,
    receiver: &Receiver,
    cache: &BatchCache,
    layers: &[LayerRows],
) -> Result<Vec<f32>> {
    let g: usize = layers.iter().map(|r| r.groups(model.n_heads())).sum();
    let dims = Dims {
        groups: g,
        batch: batch.size(),
        len: batch.len,
        d_model: model.cfg.d_model,
    };
    let readout = cache.readout.repeated(g)?;
    let ctx = Pass2 {
        model,
        batch,
        cache,
        layers,
        readout: &readout,
        dims: &dims,
    };
    let mut values = match receiver {
        Receiver::Resid { .. } => resid_pass2(&ctx, receiver)?,
        Receiver::Heads { heads } => heads_pass2(&ctx, receiver, heads)?,
        Receiver::MlpIn { layer, parallel } => mlp_in_pass2(&ctx, *layer, *parallel)?,
    };
    // A receiver read at the last position only, and not patched there, leaves the contrast
    // run as it was.
    if receiver.last_position_only(model.n_layers()) {
        if let Some(pos) = batch.receiver_positions(0) {
            for (i, v) in values.iter_mut().enumerate() {
                let e = i % dims.batch;
                if !pos[e].contains(&(dims.len - 1)) {
                    *v = cache.m_contrast[e];
                }
            }
        }
    }
    Ok(values)
}

/// What every receiver's pass 2 works on.
struct Pass2<'a> {
    model: &'a Model,
    batch: &'a Batch,
    cache: &'a BatchCache,
    layers: &'a [LayerRows],
    readout: &'a Readout,
    dims: &'a Dims,
}

impl Pass2<'_> {
    /// `patched` [G, B * P, D] at positions `p0..len` where receiver part `part` is patched,
    /// `contrast` [1, B * P, D] (the contrast run's value) elsewhere.
    fn restrict(
        &self,
        part: usize,
        patched: Tensor,
        contrast: &Tensor,
        p0: usize,
    ) -> Result<Tensor> {
        let Some(pos) = self.batch.receiver_positions(part) else {
            return Ok(patched);
        };
        let Dims {
            groups: g,
            batch: b,
            len: t,
            ..
        } = *self.dims;
        let m = self
            .batch
            .mask(self.model, pos, g, p0)?
            .reshape((g, b * (t - p0), 1))?;
        let contrast = contrast.broadcast_as(patched.shape())?;
        Ok(m.broadcast_as(patched.shape())?
            .where_cond(&patched, &contrast)?)
    }
}

/// Pass 1 and 2 for a residual receiver: pass 1 to the last receiver layer (replacing the
/// residual stream at several layers is the same as at the last one, when every position is
/// replaced; a position set there is refused: see [`supports`]), then the rest of the model.
fn resid_pass2(ctx: &Pass2, receiver: &Receiver) -> Result<Vec<f32>> {
    let Pass2 {
        model,
        batch,
        cache,
        layers,
        readout,
        dims,
    } = *ctx;
    let (g, b, t, d) = (dims.groups, dims.batch, dims.len, dims.d_model);
    let (stop, at_end) = resid_stop(receiver, model.n_layers());
    // Everything after the last layer's attention is per position: only the last one enters
    // the metric.
    let p0 = if at_end { t - 1 } else { batch.first_diff };
    let x = pass1(model, batch, cache, layers, p0, &[stop])?.remove(0);
    if at_end {
        // Pass 2 from a replaced resid_mid: the rest of the contrast block (whose input is the
        // contrast resid_pre; only a parallel block's MLP reads it).
        let x = match stop {
            Stop::Mid(l) => {
                let pre = cache.resid_pre_from(l, p0)?.reshape((1, b * (t - p0), d))?;
                model.block_after_mid(l, &x, &pre)?
            }
            Stop::Post(_) => x,
        };
        return readout.read(model, &x.reshape((g * b, d))?);
    }
    let (prefix, next) = match stop {
        Stop::Post(l) => (cache.resid_pre_full(l + 1)?.clone(), l + 1),
        Stop::Mid(l) => ((cache.resid_pre_full(l)? + cache.attn_out_full(l)?)?, l + 1),
    };
    let tail = prefix
        .narrow(1, p0, t - p0)?
        .reshape((1, b * (t - p0), d))?;
    let x = ctx.restrict(receiver.parts() - 1, x, &tail, p0)?;
    let mut full = assemble(&prefix, &x, p0, dims)?;
    if let Stop::Mid(l) = stop {
        let pre = cache.resid_pre_full(l)?.unsqueeze(0)?;
        let mid = full.reshape((g, b, t, d))?;
        full = model
            .block_after_mid(l, &mid, &pre)?
            .reshape((g * b, t, d))?;
    }
    finish(model, next, full, readout, &mut Hooks::none())
}

/// Pass 1 and 2 for head receivers: each receiver head's patched input from pass 1's residual
/// stream at its layer, written into pass 2 (from the earliest receiver layer) at its
/// positions; the other heads, and other positions, keep the live values.
fn heads_pass2(ctx: &Pass2, receiver: &Receiver, all: &[HeadReceiver]) -> Result<Vec<f32>> {
    let Pass2 {
        model,
        batch,
        cache,
        layers,
        readout,
        dims,
    } = *ctx;
    let affected = affected(receiver, layers[0].layer);
    let p0 = batch.first_diff;
    let stops: Vec<Stop> = affected.iter().map(|r| Stop::Post(r.layer - 1)).collect();
    let xs = pass1(model, batch, cache, layers, p0, &stops)?;
    // (receiver, its patched input [G*B, T, dh], its position mask [G*B, T] if restricted)
    let mut inputs: Vec<(HeadReceiver, Tensor, Option<Tensor>)> = Vec::new();
    for (r, x) in affected.iter().zip(&xs) {
        let full = assemble(cache.resid_pre_full(r.layer)?, x, p0, dims)?;
        let normed = model.attn_norm_input(r.layer, &full)?;
        let value = model.head_input(r.layer, r.head, r.input, &normed)?;
        let part = all.iter().position(|h| h == r).expect("a receiver head");
        let mask = match batch.receiver_positions(part) {
            Some(pos) => Some(batch.mask(model, pos, dims.groups, 0)?),
            None => None,
        };
        inputs.push((*r, value, mask));
    }
    let start = affected.iter().map(|r| r.layer).min().expect("reachable");
    let resid = repeat_rows(cache.resid_pre_full(start)?, dims.groups)?;
    let mut hooks = Hooks::none().with_callback(Box::new(move |name: HookName, live: Tensor| {
        let mut live = live;
        for (r, value, mask) in &inputs {
            if name == HookName::Layer(r.layer, r.input.hook_point()) {
                live = replace_head(&live, r.head, value, mask.as_ref())?;
            }
        }
        Ok(live)
    }));
    finish(model, start, resid, readout, &mut hooks)
}

/// Pass 1 and 2 for an `mlp_in:L` receiver. Pass 1 stops where the MLP reads: resid_mid of
/// L (sequential block) or resid_pre of L, the resid_post of L - 1 (parallel block). Pass 2
/// is the contrast run with only the MLP's input replaced (at its positions): the residual
/// stream after L is the contrast resid_mid of L plus the MLP of the patched input, at the
/// positions pass 1 ran; the last layer's needs only the last position and the readout.
fn mlp_in_pass2(ctx: &Pass2, l: usize, parallel: bool) -> Result<Vec<f32>> {
    let Pass2 {
        model,
        batch,
        cache,
        layers,
        readout,
        dims,
    } = *ctx;
    let (g, b, t, d) = (dims.groups, dims.batch, dims.len, dims.d_model);
    if parallel != (model.block_shape() == BlockShape::Parallel) {
        return Err(PatchError::Invalid(format!(
            "receiver mlp_in:{l} was set up for another block shape than the model's"
        )));
    }
    let at_end = l + 1 == model.n_layers();
    let p0 = if at_end { t - 1 } else { batch.first_diff };
    let stop = match parallel {
        true => Stop::Post(l.checked_sub(1).ok_or_else(|| {
            PatchError::Invalid("internal: no sender reaches mlp_in:0 of a parallel block".into())
        })?),
        false => Stop::Mid(l),
    };
    let x = pass1(model, batch, cache, layers, p0, &[stop])?.remove(0);
    let pre = cache.resid_pre_from(l, p0)?.reshape((1, b * (t - p0), d))?;
    let mid = (&pre + cache.attn_out_from(l, p0)?.reshape((1, b * (t - p0), d))?)?;
    let x = ctx.restrict(0, x, if parallel { &pre } else { &mid }, p0)?;
    let post = mid.broadcast_add(&model.mlp(l, &x)?)?;
    if at_end {
        return readout.read(model, &post.reshape((g * b, d))?);
    }
    let full = assemble(cache.resid_pre_full(l + 1)?, &post, p0, dims)?;
    finish(model, l + 1, full, readout, &mut Hooks::none())
}

/// Whether the fast algorithm computes `receiver` with the position sets of `batch` exactly:
/// all but a residual receiver at several layers restricted to some positions (there pass 2's
/// earlier replacements reach the later layer's other positions through attention, so the
/// last layer alone does not stand for them). The literal algorithm computes every case.
pub fn supports(receiver: &Receiver, batch: &Batch) -> bool {
    !(matches!(receiver, Receiver::Resid { layers, .. } if layers.len() > 1)
        && batch.receiver_restricted())
}

/// `live` [N, T', H, dh] with head `head` replaced by the last T' positions of `value`
/// [N, T, dh] (T' = 1 for queries of a last-position-only layer).
fn replace_head(
    live: &Tensor,
    head: usize,
    value: &Tensor,
    mask: Option<&Tensor>,
) -> std::result::Result<Tensor, crate::model::ModelError> {
    let n_heads = live.dim(2)?;
    let (t_live, t) = (live.dim(1)?, value.dim(1)?);
    let mut value = value
        .narrow(1, t - t_live, t_live)?
        .unsqueeze(2)?
        .to_dtype(live.dtype())?;
    // Restricted to some positions: the live value elsewhere.
    if let Some(m) = mask {
        let m = m
            .narrow(1, t - t_live, t_live)?
            .unsqueeze(2)?
            .unsqueeze(3)?;
        let own = live.narrow(2, head, 1)?;
        value = m.broadcast_as(own.shape())?.where_cond(&value, &own)?;
    }
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
