//! Batches of prompt pairs and the two cache passes (normal and contrast) both algorithms start
//! from.
//!
//! Prompts of one batch must have the same token length (the metric reads each prompt's last
//! position). Examples are grouped by length, keeping file order, then cut into batches; every
//! example contributes equally to the means, so the numbers equal the paper's batch-weighted
//! aggregation whatever the grouping.

use candle_core::{DType, Tensor};

use crate::data::TokenizedPair;
use crate::model::{Capture, HookName, HookPoint, Hooks, Model, RunOptions, Start};

use super::metric::{log_softmax, Metric, Readout};
use super::{PatchError, SpecError};

/// One batch of examples, all of the same token length.
pub struct Batch {
    /// Indices of the examples (into the pairs given to the run).
    pub examples: Vec<usize>,
    pub normal: Tensor,
    pub contrast: Tensor,
    /// [B, 2] u32: (normal answer, contrast answer) per prompt.
    pub answers: Tensor,
    /// Token length of every prompt.
    pub len: usize,
    /// First position where any normal prompt differs from its contrast prompt: the sender's z
    /// is identical before it, so nothing before it changes.
    pub first_diff: usize,
    /// Where senders and receivers are patched, per prompt (`None`: everywhere).
    pub positions: Option<BatchPositions>,
}

/// The position sets of a batch's prompts: per prompt, the positions patched (a set that
/// is every position is kept as `None`, so the plain path runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPositions {
    /// [prompt] positions where the sender takes the normal run's value.
    pub sender: Option<Vec<Vec<usize>>>,
    /// Per receiver part, [prompt] positions where pass 2 writes pass 1's value.
    pub receiver: Vec<Option<Vec<Vec<usize>>>>,
}

impl Batch {
    pub fn size(&self) -> usize {
        self.examples.len()
    }

    /// The sender positions of each prompt, if restricted.
    pub fn sender_positions(&self) -> Option<&Vec<Vec<usize>>> {
        self.positions.as_ref().and_then(|p| p.sender.as_ref())
    }

    /// The positions of receiver part `i` of each prompt, if restricted.
    pub fn receiver_positions(&self, i: usize) -> Option<&Vec<Vec<usize>>> {
        self.positions
            .as_ref()
            .and_then(|p| p.receiver.get(i))
            .and_then(|r| r.as_ref())
    }

    /// Whether any receiver part is restricted to some positions.
    pub fn receiver_restricted(&self) -> bool {
        self.positions
            .as_ref()
            .is_some_and(|p| p.receiver.iter().any(|r| r.is_some()))
    }

    /// A [rows, len - from] u8 mask of `positions`, the prompts repeated `groups` times (rows
    /// ordered group, prompt), from position `from` on: for `where_cond`, which picks values
    /// exactly (a product with a 0/1 mask would round).
    pub fn mask(
        &self,
        model: &Model,
        positions: &[Vec<usize>],
        groups: usize,
        from: usize,
    ) -> Result<Tensor, PatchError> {
        let p = self.len - from;
        let mut m = vec![0u8; groups * positions.len() * p];
        for g in 0..groups {
            for (i, pos) in positions.iter().enumerate() {
                for &x in pos.iter().filter(|&&x| x >= from && x < self.len) {
                    m[(g * positions.len() + i) * p + x - from] = 1;
                }
            }
        }
        Ok(Tensor::from_vec(
            m,
            (groups * positions.len(), p),
            &model.device,
        )?)
    }
}

/// The batch's position sets from its pairs' ([`TokenizedPair::positions`]); a set holding
/// every position of every prompt is no restriction.
fn batch_positions(pairs: &[&TokenizedPair], len: usize) -> Option<BatchPositions> {
    let all: Vec<usize> = (0..len).collect();
    let parts = pairs
        .iter()
        .filter_map(|p| p.positions.as_ref())
        .map(|p| p.receiver.len())
        .max()?;
    let column = |get: &dyn Fn(&crate::data::PairPositions) -> Option<Vec<usize>>| {
        let per: Vec<Vec<usize>> = pairs
            .iter()
            .map(|p| {
                let mut v = p.positions.as_ref().and_then(get).unwrap_or(all.clone());
                v.sort_unstable();
                v.dedup();
                v
            })
            .collect();
        per.iter().any(|v| *v != all).then_some(per)
    };
    Some(BatchPositions {
        sender: column(&|p| p.sender.clone()),
        receiver: (0..parts)
            .map(|i| column(&|p| p.receiver.get(i).cloned().flatten()))
            .collect(),
    })
    .filter(|b| b.sender.is_some() || b.receiver.iter().any(|r| r.is_some()))
}

/// Groups examples by token length (in order of first appearance) and cuts batches.
pub fn make_batches(
    model: &Model,
    pairs: &[TokenizedPair],
    batch_size: usize,
) -> Result<Vec<Batch>, PatchError> {
    if batch_size == 0 {
        return Err(SpecError::BatchSize { value: 0 }.into());
    }
    if pairs.is_empty() {
        return Err(SpecError::NoExamples.into());
    }
    let mut lengths: Vec<usize> = Vec::new();
    for p in pairs {
        if p.normal_ids.len() != p.contrast_ids.len() {
            return Err(PatchError::Invalid(format!(
                "example {}: normal and contrast prompts have {} and {} tokens",
                p.index + 1,
                p.normal_ids.len(),
                p.contrast_ids.len()
            )));
        }
        if !lengths.contains(&p.len()) {
            lengths.push(p.len());
        }
    }
    let mut batches = Vec::new();
    for len in lengths {
        let idx: Vec<usize> = (0..pairs.len())
            .filter(|&i| pairs[i].len() == len)
            .collect();
        for chunk in idx.chunks(batch_size) {
            let normal: Vec<Vec<u32>> =
                chunk.iter().map(|&i| pairs[i].normal_ids.clone()).collect();
            let contrast: Vec<Vec<u32>> = chunk
                .iter()
                .map(|&i| pairs[i].contrast_ids.clone())
                .collect();
            let answers: Vec<u32> = chunk
                .iter()
                .flat_map(|&i| [pairs[i].normal_answer, pairs[i].contrast_answer])
                .collect();
            let first_diff = chunk
                .iter()
                .map(|&i| pairs[i].first_difference())
                .min()
                .unwrap_or(0);
            let of_chunk: Vec<&TokenizedPair> = chunk.iter().map(|&i| &pairs[i]).collect();
            batches.push(Batch {
                examples: chunk.to_vec(),
                normal: model.tokens_tensor(&normal)?,
                contrast: model.tokens_tensor(&contrast)?,
                answers: Tensor::from_vec(answers, (chunk.len(), 2), &model.device)?,
                len,
                first_diff: first_diff.min(len - 1),
                positions: batch_positions(&of_chunk, len),
            });
        }
    }
    Ok(batches)
}

/// Per-prompt logit differences logit[normal answer] - logit[contrast answer] from answer
/// logits [N, 2].
pub fn logit_diffs(answer_logits: &Tensor) -> Result<Vec<f32>, PatchError> {
    let l = answer_logits.to_dtype(DType::F32)?;
    let d = (l.narrow(1, 0, 1)? - l.narrow(1, 1, 1)?)?.flatten_all()?;
    Ok(d.to_vec1()?)
}

/// Per-prompt logit differences at the last position of full logits [B, T, V].
pub fn logit_diffs_from_logits(logits: &Tensor, answers: &Tensor) -> Result<Vec<f32>, PatchError> {
    let (_, t, _) = logits.dims3()?;
    let last = logits
        .narrow(1, t - 1, 1)?
        .squeeze(1)?
        .to_dtype(DType::F32)?
        .contiguous()?; // [B, V]
    let picked = last.gather(&answers.contiguous()?, 1)?; // [B, 2]
    logit_diffs(&picked)
}

/// What the fast algorithm keeps from the cache passes, so memory stays small: the sender
/// layers' head outputs and the contrast residual stream and attention outputs only from
/// position `from` on (nothing changes before the first differing token; a last-layer receiver
/// reads only the last position), and full-length contrast resid_pre / attention outputs only
/// at the layers where pass 2 starts or reassembles a whole sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needs {
    pub from: usize,
    /// Layers whose z are kept (the sender layers).
    pub z_layers: std::ops::RangeInclusive<usize>,
    /// Layers whose resid_pre and attention output are kept from `from` on.
    pub resid_layers: std::ops::RangeInclusive<usize>,
    /// Layers whose full-length resid_pre and attention output are kept.
    pub full: Vec<usize>,
    /// Whether MLP senders are swept: then the normal run's MLP outputs of the sender layers
    /// (`z_layers`) are kept from `from` on as well (nothing otherwise: heads-only sweeps pay
    /// no memory for them).
    pub mlp: bool,
}

/// Activations of the normal and contrast runs of one batch.
pub struct BatchCache {
    /// Per-prompt metric values on the normal and contrast prompts (the baselines).
    pub m_normal: Vec<f32>,
    pub m_contrast: Vec<f32>,
    /// How every patched run of this batch is scored: the metric, the answers and (KL) the
    /// normal run's distribution.
    pub readout: Readout,
    /// Per prompt, the unpatched run's most likely next token (the baseline accuracy: does the
    /// model predict what is scored?).
    pub top_normal: Vec<u32>,
    pub top_contrast: Vec<u32>,
    /// First position kept in the per-layer tensors below (0 for the literal algorithm).
    pub from: usize,
    /// Per layer: head outputs z [B, T - from, H, dh] of the normal and contrast runs (`None`
    /// for layers not kept).
    pub z_normal: Vec<Option<Tensor>>,
    pub z_contrast: Vec<Option<Tensor>>,
    /// Per layer: the normal run's MLP output (TransformerLens' `hook_mlp_out`, after any
    /// post-MLP norm) [B, T - from, D], what an MLP sender writes in pass 1; `None` unless
    /// MLP senders are swept.
    pub mlp_normal: Vec<Option<Tensor>>,
    /// Per layer, contrast run: resid_pre and the attention output added to the residual stream,
    /// [B, T - from, D] (fast algorithm only).
    pub resid_pre: Vec<Option<Tensor>>,
    pub attn_out: Vec<Option<Tensor>>,
    /// Full-length [B, T, D] contrast resid_pre and attention output at some layers.
    pub full_resid_pre: std::collections::BTreeMap<usize, Tensor>,
    pub full_attn_out: std::collections::BTreeMap<usize, Tensor>,
}

/// The readout of a batch: KL needs the normal run's log-probabilities (`normal_logits`, the
/// unpatched normal run's last-position logits [B, V]); the other metrics only the answers.
fn readout_of(
    metric: Metric,
    batch: &Batch,
    normal_logits: &Tensor,
) -> Result<Readout, PatchError> {
    let reference = match metric {
        Metric::Kl => Some(log_softmax(&normal_logits.to_dtype(DType::F32)?)?),
        _ => None,
    };
    Ok(Readout::of_batch(metric, batch, reference.as_ref()))
}

fn missing(what: &str, l: usize) -> PatchError {
    PatchError::Invalid(format!("internal: {what} of layer {l} was not cached"))
}

impl BatchCache {
    fn tail(
        &self,
        t: &Option<Tensor>,
        what: &str,
        l: usize,
        p0: usize,
    ) -> Result<Tensor, PatchError> {
        let t = t.as_ref().ok_or_else(|| missing(what, l))?;
        if p0 < self.from {
            return Err(PatchError::Invalid(format!(
                "internal: position {p0} of {what} requested, cached from {}",
                self.from
            )));
        }
        let len = t.dim(1)? - (p0 - self.from);
        Ok(t.narrow(1, p0 - self.from, len)?)
    }
    /// z of layer `l` from position `p0` on: [B, T - p0, H, dh].
    pub fn z_normal_from(&self, l: usize, p0: usize) -> Result<Tensor, PatchError> {
        self.tail(&self.z_normal[l], "z (normal)", l, p0)
    }
    pub fn z_contrast_from(&self, l: usize, p0: usize) -> Result<Tensor, PatchError> {
        self.tail(&self.z_contrast[l], "z (contrast)", l, p0)
    }
    /// Contrast resid_pre of layer `l` from position `p0` on.
    pub fn resid_pre_from(&self, l: usize, p0: usize) -> Result<Tensor, PatchError> {
        self.tail(&self.resid_pre[l], "resid_pre", l, p0)
    }
    pub fn attn_out_from(&self, l: usize, p0: usize) -> Result<Tensor, PatchError> {
        self.tail(&self.attn_out[l], "attention output", l, p0)
    }
    /// The normal run's MLP output of layer `l` from position `p0` on: [B, T - p0, D].
    pub fn mlp_normal_from(&self, l: usize, p0: usize) -> Result<Tensor, PatchError> {
        self.tail(&self.mlp_normal[l], "MLP output (normal)", l, p0)
    }
    /// Full-length contrast resid_pre of layer `l`.
    pub fn resid_pre_full(&self, l: usize) -> Result<&Tensor, PatchError> {
        self.full_resid_pre
            .get(&l)
            .ok_or_else(|| missing("full resid_pre", l))
    }
    pub fn attn_out_full(&self, l: usize) -> Result<&Tensor, PatchError> {
        self.full_attn_out
            .get(&l)
            .ok_or_else(|| missing("full attention output", l))
    }
    /// The full z tensors of the literal algorithm.
    pub fn z_full(&self, normal: bool, l: usize) -> Result<Tensor, PatchError> {
        let t = if normal {
            &self.z_normal[l]
        } else {
            &self.z_contrast[l]
        };
        t.clone().ok_or_else(|| missing("z", l))
    }
}

/// [`cache_batch_with`] for head senders only (MLP senders as `needs` says; the literal
/// algorithm keeps no MLP outputs).
pub fn cache_batch(
    model: &Model,
    batch: &Batch,
    needs: Option<&Needs>,
    metric: Metric,
) -> Result<BatchCache, PatchError> {
    cache_batch_with(model, batch, needs, metric, needs.is_some_and(|n| n.mlp))
}

/// The two cache passes. The fast algorithm (`needs` given) runs the normal and contrast
/// prompts as one batch of 2B rows, keeps only what `needs` says (copied out while the forward
/// runs, so the full activations never pile up) and reads only the two answer logits; the
/// literal algorithm runs them separately, keeps every layer's full z and reads full logits, as
/// TransformerLens' `run_with_cache` does. With `mlp` (MLP senders swept) the normal run's MLP
/// outputs are kept too (the fast algorithm: those of `needs.z_layers`).
pub fn cache_batch_with(
    model: &Model,
    batch: &Batch,
    needs: Option<&Needs>,
    metric: Metric,
    mlp: bool,
) -> Result<BatchCache, PatchError> {
    let n = model.n_layers();
    let b = batch.size();
    let t = batch.len;
    let Some(needs) = needs else {
        return cache_literal(model, batch, metric, mlp);
    };
    let from = needs.from.min(t - 1);
    let keep = t - from;
    let mut cache = BatchCache {
        m_normal: Vec::new(),
        m_contrast: Vec::new(),
        readout: Readout::of_batch(metric, batch, None),
        top_normal: Vec::new(),
        top_contrast: Vec::new(),
        from,
        z_normal: vec![None; n],
        z_contrast: vec![None; n],
        resid_pre: vec![None; n],
        attn_out: vec![None; n],
        full_resid_pre: Default::default(),
        full_attn_out: Default::default(),
        mlp_normal: vec![None; n],
    };
    let tokens = Tensor::cat(&[&batch.normal, &batch.contrast], 0)?;
    let out = {
        let c = &mut cache;
        // Rows 0..B are the normal prompts, B..2B the contrast prompts.
        // The last `keep` positions (a last-position-only layer has just the one).
        let trim = |x: &Tensor, rows: (usize, usize)| -> Result<Tensor, crate::model::ModelError> {
            let len = x.dim(1)?;
            let k = keep.min(len);
            Ok(x.narrow(0, rows.0, rows.1)?
                .narrow(1, len - k, k)?
                .contiguous()?)
        };
        let mut hooks = Hooks::none().with_callback(Box::new(move |name: HookName, x: Tensor| {
            if let HookName::Layer(l, p) = name {
                match p {
                    HookPoint::Z if needs.z_layers.contains(&l) => {
                        c.z_normal[l] = Some(trim(&x, (0, b))?);
                        c.z_contrast[l] = Some(trim(&x, (b, b))?);
                    }
                    HookPoint::MlpOut if mlp && needs.z_layers.contains(&l) => {
                        c.mlp_normal[l] = Some(trim(&x, (0, b))?);
                    }
                    HookPoint::ResidPre | HookPoint::AttnOut => {
                        let (tail, full) = if p == HookPoint::ResidPre {
                            (&mut c.resid_pre, &mut c.full_resid_pre)
                        } else {
                            (&mut c.attn_out, &mut c.full_attn_out)
                        };
                        if needs.resid_layers.contains(&l) {
                            tail[l] = Some(trim(&x, (b, b))?);
                        }
                        if needs.full.contains(&l) {
                            full.insert(l, x.narrow(0, b, b)?.contiguous()?);
                        }
                    }
                    _ => {}
                }
            }
            Ok(x)
        }));
        model.run(
            Start::Tokens(&tokens),
            RunOptions {
                stop_after: Some(n - 1),
                // A last-layer receiver needs only the last position of the last layer.
                last_position_only: keep == 1 && needs.full.is_empty(),
            },
            &mut hooks,
        )?
    };
    // The logit difference needs only the last position's two answer logits; the baseline
    // accuracy (and the other metrics) the full vocabulary (one [2B, vocab] product per batch).
    let last = out.resid.narrow(1, out.resid.dim(1)? - 1, 1)?.squeeze(1)?;
    let full = model.unembed(&last)?;
    let top = crate::model::transformer::argmax_last(&full)?;
    cache.readout = readout_of(metric, batch, &full.narrow(0, 0, b)?)?;
    let m = if metric.needs_vocab() {
        cache.readout.repeated(2)?.read_logits(&full)?
    } else {
        let answers = Tensor::cat(&[&batch.answers, &batch.answers], 0)?;
        logit_diffs(&model.answer_logits(&last, &answers)?)?
    };
    cache.m_normal = m[..b].to_vec();
    cache.m_contrast = m[b..].to_vec();
    cache.top_normal = top[..b].to_vec();
    cache.top_contrast = top[b..].to_vec();
    Ok(cache)
}

/// The literal algorithm's cache passes: the normal and contrast prompts run separately with
/// full logits, keeping every layer's full z (and, with `mlp`, the normal run's MLP outputs),
/// as TransformerLens' `run_with_cache` does.
fn cache_literal(
    model: &Model,
    batch: &Batch,
    metric: Metric,
    mlp: bool,
) -> Result<BatchCache, PatchError> {
    let n = model.n_layers();
    let t = batch.len;
    let mut names: Vec<HookName> = (0..n).map(|l| HookName::Layer(l, HookPoint::Z)).collect();
    if mlp {
        names.extend((0..n).map(|l| HookName::Layer(l, HookPoint::MlpOut)));
    }
    type Run = (Tensor, Vec<u32>, Vec<Option<Tensor>>, Vec<Option<Tensor>>);
    // Each run's last-position logits [B, V], its top tokens, its z and its MLP outputs.
    let run = |tokens: &Tensor| -> Result<Run, PatchError> {
        let mut hooks = Hooks::capture(Capture::only(names.clone()));
        let out = model.run(Start::Tokens(tokens), RunOptions::default(), &mut hooks)?;
        let logits = out.logits.as_ref().expect("full run");
        let last = logits.narrow(1, t - 1, 1)?;
        let top = crate::model::transformer::argmax_last(&last)?;
        let take = |p: HookPoint| -> Vec<Option<Tensor>> {
            (0..n).map(|l| hooks.cache.layer(l, p).cloned()).collect()
        };
        Ok((
            last.squeeze(1)?,
            top,
            take(HookPoint::Z),
            take(HookPoint::MlpOut),
        ))
    };
    let (last_normal, top_normal, z_normal, mlp_normal) = run(&batch.normal)?;
    let (last_contrast, top_contrast, z_contrast, _) = run(&batch.contrast)?;
    let readout = readout_of(metric, batch, &last_normal)?;
    Ok(BatchCache {
        m_normal: readout.read_logits(&last_normal)?,
        m_contrast: readout.read_logits(&last_contrast)?,
        readout,
        top_normal,
        top_contrast,
        from: 0,
        z_normal,
        z_contrast,
        mlp_normal,
        resid_pre: vec![None; n],
        attn_out: vec![None; n],
        full_resid_pre: Default::default(),
        full_attn_out: Default::default(),
    })
}
