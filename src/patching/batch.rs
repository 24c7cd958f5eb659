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

use super::PatchError;

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
}

impl Batch {
    pub fn size(&self) -> usize {
        self.examples.len()
    }
}

/// Groups examples by token length (in order of first appearance) and cuts batches.
pub fn make_batches(
    model: &Model,
    pairs: &[TokenizedPair],
    batch_size: usize,
) -> Result<Vec<Batch>, PatchError> {
    if batch_size == 0 {
        return Err(PatchError::Invalid(
            "--batch-size 0: expected at least 1".into(),
        ));
    }
    if pairs.is_empty() {
        return Err(PatchError::Invalid(
            "no examples to patch (--examples 0?)".into(),
        ));
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
            batches.push(Batch {
                examples: chunk.to_vec(),
                normal: model.tokens_tensor(&normal)?,
                contrast: model.tokens_tensor(&contrast)?,
                answers: Tensor::from_vec(answers, (chunk.len(), 2), &model.device)?,
                len,
                first_diff: first_diff.min(len - 1),
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

/// Activations of the normal and contrast runs of one batch.
pub struct BatchCache {
    /// Per-prompt logit differences on the normal and contrast prompts.
    pub ld_normal: Vec<f32>,
    pub ld_contrast: Vec<f32>,
    /// Per layer: head outputs z [B, T, H, dh] of the normal and contrast runs.
    pub z_normal: Vec<Tensor>,
    pub z_contrast: Vec<Tensor>,
    /// Per layer, contrast run: resid_pre [B, T, D] and the attention output added to the
    /// residual stream [B, T, D] (fast algorithm only; empty for the reference).
    pub resid_pre: Vec<Tensor>,
    pub attn_out: Vec<Tensor>,
}

/// The two cache passes. The fast algorithm (`fast`) runs the normal and contrast prompts as
/// one batch of 2B rows and also keeps the contrast run's residual streams and attention
/// outputs, reading only the two answer logits; the literal algorithm runs them separately
/// and reads full logits, as TransformerLens' `run_with_cache` does.
pub fn cache_batch(model: &Model, batch: &Batch, fast: bool) -> Result<BatchCache, PatchError> {
    let n = model.n_layers();
    let b = batch.size();
    let mut names: Vec<HookName> = (0..n).map(|l| HookName::Layer(l, HookPoint::Z)).collect();
    let take = |h: &Hooks,
                p: HookPoint,
                rows: Option<(usize, usize)>|
     -> Result<Vec<Tensor>, PatchError> {
        (0..n)
            .map(|l| {
                let t = h.cache.require(l, p)?;
                Ok(match rows {
                    Some((start, len)) => t.narrow(0, start, len)?,
                    None => t.clone(),
                })
            })
            .collect()
    };
    if fast {
        for l in 0..n {
            names.push(HookName::Layer(l, HookPoint::ResidPre));
            names.push(HookName::Layer(l, HookPoint::AttnOut));
        }
        let tokens = Tensor::cat(&[&batch.normal, &batch.contrast], 0)?;
        let mut hooks = Hooks::capture(Capture::only(names));
        let out = model.run(
            Start::Tokens(&tokens),
            RunOptions {
                stop_after: Some(n - 1),
                last_position_only: false,
            },
            &mut hooks,
        )?;
        // The metric needs only the last position's two answer logits.
        let t = out.resid.dim(1)?;
        let last = out.resid.narrow(1, t - 1, 1)?.squeeze(1)?;
        let answers = Tensor::cat(&[&batch.answers, &batch.answers], 0)?;
        let ld = logit_diffs(&model.answer_logits(&last, &answers)?)?;
        let contrast = Some((b, b));
        return Ok(BatchCache {
            ld_normal: ld[..b].to_vec(),
            ld_contrast: ld[b..].to_vec(),
            z_normal: take(&hooks, HookPoint::Z, Some((0, b)))?,
            z_contrast: take(&hooks, HookPoint::Z, contrast)?,
            resid_pre: take(&hooks, HookPoint::ResidPre, contrast)?,
            attn_out: take(&hooks, HookPoint::AttnOut, contrast)?,
        });
    }
    let run = |tokens: &Tensor| -> Result<(Vec<f32>, Hooks<'static>), PatchError> {
        let mut hooks = Hooks::capture(Capture::only(names.clone()));
        let out = model.run(Start::Tokens(tokens), RunOptions::default(), &mut hooks)?;
        let ld = logit_diffs_from_logits(out.logits.as_ref().expect("full run"), &batch.answers)?;
        Ok((ld, hooks))
    };
    let (ld_normal, hn) = run(&batch.normal)?;
    let (ld_contrast, hc) = run(&batch.contrast)?;
    Ok(BatchCache {
        ld_normal,
        ld_contrast,
        z_normal: take(&hn, HookPoint::Z, None)?,
        z_contrast: take(&hc, HookPoint::Z, None)?,
        resid_pre: Vec::new(),
        attn_out: Vec::new(),
    })
}
