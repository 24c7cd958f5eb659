//! The paper's path patching, literally: two full forward passes per sender head, through the
//! hook API. Slow; kept as the reference that the fast algorithm is tested against.
//!
//! Pass 1 runs the contrast prompt with every layer's z frozen to the contrast run's, except
//! the sender head, which gets the normal run's z; it records the receiver's input. Pass 2 runs
//! the contrast prompt again with only the receiver's input replaced.

use crate::model::{Capture, HookName, Hooks, Model, Patch, RunOptions, Start};

use super::batch::{Batch, BatchCache};
use super::receiver::Receiver;
use super::PatchError;

/// Hook names of the receiver's inputs.
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
) -> Result<Vec<Vec<f32>>, PatchError> {
    let n_layers = model.n_layers();
    let mut values = Vec::with_capacity(model.n_heads());
    for hs in 0..model.n_heads() {
        // Pass 1: freeze every z to the contrast run, swap in the sender's normal z.
        let mut p1 = Hooks::capture(Capture::only(receiver_hooks(receiver)));
        for l in 0..n_layers {
            let z = HookName::Layer(l, crate::model::HookPoint::Z);
            p1.patches.push(Patch::whole(z, cache.z_full(false, l)?));
            if l == ls {
                p1.patches
                    .push(Patch::heads(z, cache.z_full(true, l)?, vec![hs]));
            }
        }
        model.run(
            Start::Tokens(&batch.contrast),
            RunOptions::default(),
            &mut p1,
        )?;

        // Pass 2: a clean contrast run with only the receiver's input replaced.
        let mut p2 = Hooks::none();
        match receiver {
            Receiver::Resid { kind, layers } => {
                for &l in layers {
                    let name = HookName::Layer(l, kind.hook_point());
                    p2.patches
                        .push(Patch::whole(name, p1.cache.get(name).unwrap().clone()));
                }
            }
            Receiver::Heads { heads } => {
                for h in heads {
                    let name = HookName::Layer(h.layer, h.input.hook_point());
                    p2.patches.push(Patch::heads(
                        name,
                        p1.cache.get(name).unwrap().clone(),
                        vec![h.head],
                    ));
                }
            }
        }
        let out = model.run(
            Start::Tokens(&batch.contrast),
            RunOptions::default(),
            &mut p2,
        )?;
        let logits = out.logits.as_ref().expect("full run");
        let last = logits.narrow(1, batch.len - 1, 1)?.squeeze(1)?;
        values.push(cache.readout.read_logits(&last)?);
    }
    Ok(values)
}
