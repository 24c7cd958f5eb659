//! The paper's path patching, literally: two full forward passes per sender head, through the
//! hook API. Slow; kept as the reference that the fast algorithm is tested against.
//!
//! Pass 1 runs the contrast prompt with every layer's z frozen to the contrast run's, except
//! the sender head, which gets the normal run's z; it records the receiver's input. Pass 2 runs
//! the contrast prompt again with only the receiver's input replaced.

use candle_core::Tensor;

use crate::model::{
    ActivationCache, Capture, HookName, HookPoint, Hooks, Model, Patch, RunOptions, Start,
};

use super::batch::{Batch, BatchCache};
use super::receiver::Receiver;
use super::senders::{ChunkValues, Senders};
use super::PatchError;

/// Hook names of the receiver's inputs, one per receiver part ([`Receiver::parts`]).
fn receiver_hooks(receiver: &Receiver) -> Vec<HookName> {
    match receiver {
        Receiver::Resid { kind, layers } => layers
            .iter()
            .map(|&l| HookName::Layer(l, kind.hook_point()))
            .collect(),
        Receiver::Heads { heads } => heads
            .iter()
            .map(|h| HookName::Layer(h.layer, h.input.hook_point()))
            .collect(),
        Receiver::MlpIn { layer, .. } => vec![HookName::Layer(*layer, HookPoint::MlpIn)],
    }
}

/// Pass 1 with every layer's z frozen to the contrast run's, plus `extra` (the sender's
/// patch), recording the receiver's input.
fn pass1(
    model: &Model,
    batch: &Batch,
    cache: &BatchCache,
    receiver: &Receiver,
    extra: Vec<Patch>,
) -> Result<ActivationCache, PatchError> {
    let mut p1 = Hooks::capture(Capture::only(receiver_hooks(receiver)));
    for l in 0..model.n_layers() {
        let z = HookName::Layer(l, HookPoint::Z);
        p1.patches.push(Patch::whole(z, cache.z_full(false, l)?));
    }
    p1.patches.extend(extra);
    model.run(
        Start::Tokens(&batch.contrast),
        RunOptions::default(),
        &mut p1,
    )?;
    Ok(p1.cache)
}

/// `patch` as it applies at some positions of each prompt (`None`: everywhere): one patch
/// per prompt, of that prompt's row and positions.
fn at_positions(patch: Patch, positions: Option<&Vec<Vec<usize>>>) -> Vec<Patch> {
    match positions {
        None => vec![patch],
        Some(per) => per
            .iter()
            .enumerate()
            .filter(|(_, pos)| !pos.is_empty())
            .map(|(i, pos)| patch.clone().with_rows(vec![i]).with_positions(pos.clone()))
            .collect(),
    }
}

/// Pass 2: a clean contrast run with only the receiver's input replaced by pass 1's; the
/// metric per prompt.
fn pass2(
    model: &Model,
    batch: &Batch,
    cache: &BatchCache,
    receiver: &Receiver,
    p1: &ActivationCache,
) -> Result<Vec<f32>, PatchError> {
    let mut p2 = Hooks::none();
    let take = |name: HookName| -> Result<Tensor, PatchError> {
        p1.get(name)
            .cloned()
            .ok_or_else(|| PatchError::Invalid(format!("internal: pass 1 did not record {name}")))
    };
    let heads: Vec<Option<usize>> = match receiver {
        Receiver::Heads { heads } => heads.iter().map(|h| Some(h.head)).collect(),
        _ => vec![None; receiver.parts()],
    };
    for (i, (name, head)) in receiver_hooks(receiver).into_iter().zip(heads).enumerate() {
        let patch = match head {
            Some(h) => Patch::heads(name, take(name)?, vec![h]),
            None => Patch::whole(name, take(name)?),
        };
        p2.patches
            .extend(at_positions(patch, batch.receiver_positions(i)));
    }
    let out = model.run(
        Start::Tokens(&batch.contrast),
        RunOptions::default(),
        &mut p2,
    )?;
    let logits = out.logits.as_ref().expect("full run");
    let last = logits.narrow(1, batch.len - 1, 1)?.squeeze(1)?;
    cache.readout.read_logits(&last)
}

/// The patched metric of each of the batch's prompts, for every head of sender layer `ls`:
/// [head][prompt]. Pass 1 swaps in the sender head's normal z.
pub fn sweep_layer(
    model: &Model,
    batch: &Batch,
    cache: &BatchCache,
    receiver: &Receiver,
    ls: usize,
) -> Result<Vec<Vec<f32>>, PatchError> {
    let z = HookName::Layer(ls, HookPoint::Z);
    (0..model.n_heads())
        .map(|hs| {
            let sender = Patch::heads(z, cache.z_full(true, ls)?, vec![hs]);
            let sender = at_positions(sender, batch.sender_positions());
            let p1 = pass1(model, batch, cache, receiver, sender)?;
            pass2(model, batch, cache, receiver, &p1)
        })
        .collect()
}

/// The patched metric of each of the batch's prompts for the MLP of sender layer `ls`:
/// [prompt]. Pass 1 freezes every head as for a head sender and recomputes the MLPs, except
/// layer `ls`'s, whose output (`hook_mlp_out`) is the normal run's. The cache must hold the
/// normal MLP outputs (`cache_batch_with(.., mlp = true)`).
pub fn sweep_mlp_layer(
    model: &Model,
    batch: &Batch,
    cache: &BatchCache,
    receiver: &Receiver,
    ls: usize,
) -> Result<Vec<f32>, PatchError> {
    let normal = cache.mlp_normal[ls].clone().ok_or_else(|| {
        PatchError::Invalid(format!(
            "internal: the normal MLP output of layer {ls} was not cached"
        ))
    })?;
    let sender = Patch::whole(HookName::Layer(ls, HookPoint::MlpOut), normal);
    let sender = at_positions(sender, batch.sender_positions());
    let p1 = pass1(model, batch, cache, receiver, sender)?;
    pass2(model, batch, cache, receiver, &p1)
}

/// The literal algorithm's [`crate::patching::fast::sweep_chunk_senders`]: the senders of
/// `layers` that `senders` asks for, one sender (two full passes) at a time.
pub fn sweep_chunk_senders(
    model: &Model,
    batch: &Batch,
    cache: &BatchCache,
    receiver: &Receiver,
    layers: &[usize],
    senders: Senders,
) -> Result<ChunkValues, PatchError> {
    let heads = match senders.heads() {
        true => Some(
            layers
                .iter()
                .map(|&l| sweep_layer(model, batch, cache, receiver, l))
                .collect::<Result<_, _>>()?,
        ),
        false => None,
    };
    let mlp = match senders.mlp() {
        true => Some(
            layers
                .iter()
                .map(|&l| sweep_mlp_layer(model, batch, cache, receiver, l))
                .collect::<Result<_, _>>()?,
        ),
        false => None,
    };
    Ok(ChunkValues { heads, mlp })
}
