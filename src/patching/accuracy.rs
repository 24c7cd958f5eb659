//! How often the model's next token is the normal or the contrast answer: the paper's
//! `orig_acc` / `cf_acc` for single-token answers (argmax of the last position's logits; for a
//! single-token answer this equals the paper's teacher-forced accuracy).

use candle_core::{DType, D};

use crate::data::TokenizedPair;
use crate::model::{Hooks, Model, RunOptions, Start};

use super::batch::make_batches;
use super::PatchError;

/// One example's predictions.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Prediction {
    /// Example index in the dataset (0-based).
    pub index: usize,
    pub normal_answer: u32,
    pub contrast_answer: u32,
    /// Argmax next token on the normal prompt.
    pub on_normal: u32,
    /// Argmax next token on the contrast prompt.
    pub on_contrast: u32,
    /// logit[normal answer] - logit[contrast answer] on the normal prompt.
    pub ld_normal: f32,
    /// The same on the contrast prompt.
    pub ld_contrast: f32,
}

/// Counts over a dataset.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Accuracy {
    pub n: usize,
    /// Normal prompts whose argmax is the normal answer (the paper's orig_acc × n).
    pub normal_prompt_normal_answer: usize,
    /// Normal prompts whose argmax is the contrast answer.
    pub normal_prompt_contrast_answer: usize,
    /// Contrast prompts whose argmax is the normal answer.
    pub contrast_prompt_normal_answer: usize,
    /// Contrast prompts whose argmax is the contrast answer (the paper's cf_acc × n).
    pub contrast_prompt_contrast_answer: usize,
    /// The fractions of normal prompts answered with the normal answer and of contrast
    /// prompts with the contrast answer (`baseline::BaselineAccuracy`).
    pub baseline_accuracy: super::baseline::BaselineAccuracy,
    /// Mean logit differences (the patching baselines LD_normal and LD_contrast).
    pub mean_ld_normal: f64,
    pub mean_ld_contrast: f64,
    pub predictions: Vec<Prediction>,
}

impl Accuracy {
    /// Per example, the top next token of its normal and contrast run (the input of
    /// `baseline::check`).
    pub fn top_tokens(&self) -> Vec<Option<(u32, u32)>> {
        self.predictions
            .iter()
            .map(|p| Some((p.on_normal, p.on_contrast)))
            .collect()
    }

    pub fn rate(&self, count: usize) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            count as f64 / self.n as f64
        }
    }
}

/// Runs every normal and contrast prompt once (batched by length) and compares the argmax
/// next token with the answer tokens.
pub fn evaluate(
    model: &Model,
    pairs: &[TokenizedPair],
    batch_size: usize,
) -> Result<Accuracy, PatchError> {
    let batches = make_batches(model, pairs, batch_size)?;
    let mut preds: Vec<Prediction> = Vec::with_capacity(pairs.len());
    for b in &batches {
        let mut per_run = Vec::new();
        for tokens in [&b.normal, &b.contrast] {
            let out = model.run(
                Start::Tokens(tokens),
                RunOptions {
                    stop_after: None,
                    last_position_only: true,
                },
                &mut Hooks::none(),
            )?;
            let logits = out
                .logits
                .expect("a full run has logits")
                .squeeze(1)?
                .to_dtype(DType::F32)?; // [B, V]
            let argmax = logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
            let picked = logits
                .gather(&b.answers.contiguous()?, 1)?
                .to_vec2::<f32>()?;
            let ld: Vec<f32> = picked.iter().map(|r| r[0] - r[1]).collect();
            per_run.push((argmax, ld));
        }
        let answers = b.answers.to_vec2::<u32>()?;
        for (i, &ex) in b.examples.iter().enumerate() {
            preds.push(Prediction {
                index: pairs[ex].index,
                normal_answer: answers[i][0],
                contrast_answer: answers[i][1],
                on_normal: per_run[0].0[i],
                on_contrast: per_run[1].0[i],
                ld_normal: per_run[0].1[i],
                ld_contrast: per_run[1].1[i],
            });
        }
    }
    preds.sort_by_key(|p| p.index);
    let n = preds.len();
    let count = |f: &dyn Fn(&Prediction) -> bool| preds.iter().filter(|p| f(p)).count();
    let normal_ok = count(&|p| p.on_normal == p.normal_answer);
    let contrast_ok = count(&|p| p.on_contrast == p.contrast_answer);
    Ok(Accuracy {
        baseline_accuracy: super::baseline::BaselineAccuracy::from_counts(
            n,
            normal_ok,
            contrast_ok,
        ),
        n,
        normal_prompt_normal_answer: normal_ok,
        normal_prompt_contrast_answer: count(&|p| p.on_normal == p.contrast_answer),
        contrast_prompt_normal_answer: count(&|p| p.on_contrast == p.normal_answer),
        contrast_prompt_contrast_answer: contrast_ok,
        mean_ld_normal: preds.iter().map(|p| p.ld_normal as f64).sum::<f64>() / n.max(1) as f64,
        mean_ld_contrast: preds.iter().map(|p| p.ld_contrast as f64).sum::<f64>() / n.max(1) as f64,
        predictions: preds,
    })
}
