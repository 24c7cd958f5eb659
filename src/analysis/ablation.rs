//! Head ablation as the paper's §7 does it: the listed heads' z at every position replaced by
//! their z on the same example's normal prompt (activation patching from the base input, not
//! mean or zero ablation); everything else runs live on the contrast prompt.
//!
//! Accuracy is counted as the paper's `eval.py` does: teacher-forced on prompt + answer, the
//! argmax over the task's answer tokens (the ten digits for addition) at each answer position;
//! an example is right when every position is. For a single-token answer that is the argmax over
//! the digits at the last prompt position. The full-vocabulary argmax is counted beside it.
//!
//! The ablated run is scored by a [`Metric`] through path patching's one [`Readout`] (the
//! paper's logit difference by default). The run is teacher-forced on the normal answer, so
//! `logprob` and `prob` score an answer of several tokens in full: Σ_j log p(token_j | contrast
//! prompt, tokens_<j), every position of prompt + answer patched from the normal run on normal
//! prompt + the same answer tokens (TransformerLens' hooks on the two equally long sequences).
//! The logit difference and KL read the answer position (the prompt's last), KL against the
//! unpatched normal run's distribution there.

use candle_core::{DType, Tensor, D};

use super::report::AnswerSet;
use super::{answers_tensor, check_heads, check_lengths, forward, group_batches, invalid};
use super::{check_count, AnalysisError, Head};
use crate::data::pyrandom::PyRandom as Random;
use crate::data::{TokenRoles, TokenizedPair};
use crate::model::{HookName, HookPoint, Hooks, Model, Patch, RunOptions, Start};
use crate::patching::metric::{Metric, Readout};

/// The figures of one ablation run (means over the examples).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AblationRun {
    pub heads: Vec<Head>,
    /// The ablator's metric (named for the default, the logit difference: logit[normal
    /// answer] − logit[contrast answer] at the last prompt position; result files name it
    /// after the metric).
    pub logit_diff: f64,
    /// Contrast prompts on which the model gives the normal answer (the paper's `orig_acc`).
    pub acc_normal_answer: f64,
    /// Contrast prompts on which it gives the contrast answer (`cf_acc`).
    pub acc_contrast_answer: f64,
    pub acc_normal_answer_full_vocab: f64,
    pub acc_contrast_answer_full_vocab: f64,
}

/// One batch: examples of one prompt length and one answer length.
struct Prepared {
    rows: Vec<usize>,
    /// Prompt length.
    len: usize,
    /// Contrast prompt + the normal answer's tokens but its last (teacher forcing).
    with_normal: Tensor,
    /// Contrast prompt + the contrast answer's tokens but its last; `None` for one-token
    /// answers (the same tokens as `with_normal`).
    with_contrast: Option<Tensor>,
    /// The metric with its answers and (KL) the normal run's distribution.
    readout: Readout,
    /// [B, k] the normal answer's tokens, what `logprob` and `prob` sum over.
    forced: Tensor,
    target_normal: Vec<Vec<u32>>,
    target_contrast: Vec<Vec<u32>>,
    /// z of every layer on the normal prompt + normal answer (the paper's base cache).
    z_normal: Vec<Tensor>,
}

/// Ablates head sets on fixed examples; the normal-run caches are computed once.
pub struct Ablator<'a> {
    model: &'a Model,
    /// What `logit_diff` of every run holds.
    pub metric: Metric,
    n: usize,
    /// The answer tokens the restricted argmax ranges over; `None`: the full vocabulary.
    answer_set: Option<Vec<u32>>,
    batches: Vec<Prepared>,
}

/// The answer's tokens after the prompt (from the roles), else the metric's answer token.
fn targets(p: &TokenizedPair, r: Option<&TokenRoles>) -> (Vec<u32>, Vec<u32>) {
    let n = r.and_then(|r| r.normal_continuation.clone());
    let c = r.and_then(|r| r.contrast_continuation.clone());
    (
        n.unwrap_or_else(|| vec![p.normal_answer]),
        c.unwrap_or_else(|| vec![p.contrast_answer]),
    )
}

fn extend(ids: &[u32], tail: &[u32]) -> Vec<u32> {
    let mut v = ids.to_vec();
    v.extend_from_slice(&tail[..tail.len() - 1]);
    v
}

impl<'a> Ablator<'a> {
    /// [`Ablator::with_metric`] by the logit difference (the paper's).
    pub fn new(
        model: &'a Model,
        pairs: &'a [TokenizedPair],
        roles: Option<&[TokenRoles]>,
        answer_set: Option<Vec<u32>>,
        batch_size: usize,
    ) -> Result<Self, AnalysisError> {
        Self::with_metric(
            model,
            pairs,
            roles,
            answer_set,
            batch_size,
            Metric::LogitDiff,
        )
    }

    /// `roles` give the answers' tokens for teacher forcing (without them every answer is its
    /// one metric token); `answer_set` the tokens the restricted accuracy ranges over.
    pub fn with_metric(
        model: &'a Model,
        pairs: &'a [TokenizedPair],
        roles: Option<&[TokenRoles]>,
        answer_set: Option<Vec<u32>>,
        batch_size: usize,
        metric: Metric,
    ) -> Result<Self, AnalysisError> {
        check_lengths(pairs)?;
        let t: Vec<(Vec<u32>, Vec<u32>)> = (0..pairs.len())
            .map(|i| targets(&pairs[i], roles.map(|r| &r[i])))
            .collect();
        for (p, (n, c)) in pairs.iter().zip(&t) {
            if n.len() != c.len() {
                return Err(invalid(format!(
                    "example {}: the normal answer is {} tokens and the contrast answer {}; \
                     teacher-forced accuracy needs answers of equal token length",
                    p.index + 1,
                    n.len(),
                    c.len()
                )));
            }
        }
        let keys: Vec<(usize, usize)> = pairs
            .iter()
            .zip(&t)
            .map(|(p, (n, _))| (p.len(), n.len()))
            .collect();
        let mut batches = Vec::new();
        for rows in group_batches(&keys, batch_size)? {
            let (len, k) = keys[rows[0]];
            let sel: Vec<&TokenizedPair> = rows.iter().map(|&i| &pairs[i]).collect();
            let seq = |f: &dyn Fn(usize) -> Vec<u32>| {
                model.tokens_tensor(&rows.iter().map(|&i| f(i)).collect::<Vec<_>>())
            };
            let normal = seq(&|i| extend(&pairs[i].normal_ids, &t[i].0))?;
            let (logits, z_normal) = forward(model, &normal, k == 1, true)?;
            let at = if k == 1 { 0 } else { len - 1 };
            let normal_last = super::last_position(&logits.narrow(1, at, 1)?)?;
            let target_normal: Vec<Vec<u32>> = rows.iter().map(|&i| t[i].0.clone()).collect();
            batches.push(Prepared {
                len,
                with_normal: seq(&|i| extend(&pairs[i].contrast_ids, &t[i].0))?,
                with_contrast: if k > 1 {
                    Some(seq(&|i| extend(&pairs[i].contrast_ids, &t[i].1))?)
                } else {
                    None
                },
                readout: Readout::of_rows(metric, answers_tensor(model, &sel)?, &normal_last)?,
                forced: Tensor::new(target_normal.clone(), &model.device)?,
                target_normal,
                target_contrast: rows.iter().map(|&i| t[i].1.clone()).collect(),
                z_normal,
                rows,
            });
        }
        Ok(Ablator {
            model,
            metric,
            n: pairs.len(),
            answer_set,
            batches,
        })
    }

    /// The contrast run of one batch's tokens with `heads` patched from the normal run.
    fn run(&self, b: &Prepared, tokens: &Tensor, heads: &[Head]) -> Result<Tensor, AnalysisError> {
        let mut hooks = Hooks::none();
        for l in 0..self.model.n_layers() {
            let hs: Vec<usize> = heads.iter().filter(|h| h.0 == l).map(|h| h.1).collect();
            if !hs.is_empty() {
                let name = HookName::Layer(l, HookPoint::Z);
                hooks = hooks.with_patch(Patch::heads(name, b.z_normal[l].clone(), hs));
            }
        }
        let one = b.with_contrast.is_none();
        let out = self.model.run(
            Start::Tokens(tokens),
            RunOptions {
                stop_after: None,
                last_position_only: one,
            },
            &mut hooks,
        )?;
        Ok(out.logits.expect("a full run has logits"))
    }

    /// Per row: (restricted, full-vocabulary) correct, over the answer positions of `logits`.
    fn correct(
        &self,
        b: &Prepared,
        logits: &Tensor,
        targets: &[Vec<u32>],
    ) -> Result<Vec<(bool, bool)>, AnalysisError> {
        let k = targets[0].len();
        // Logits [B, T', V]: the answer is predicted from prompt position len-1 on.
        let first = if logits.dim(1)? == 1 { 0 } else { b.len - 1 };
        // index_select needs a contiguous tensor (a narrowed f32 one is not).
        let l = logits
            .narrow(1, first, k)?
            .to_dtype(DType::F32)?
            .contiguous()?;
        let full = l.argmax(D::Minus1)?.to_vec2::<u32>()?;
        let restricted = match &self.answer_set {
            None => full.clone(),
            Some(set) => {
                let ids = Tensor::new(set.as_slice(), l.device())?;
                let sub = l
                    .index_select(&ids, 2)?
                    .argmax(D::Minus1)?
                    .to_vec2::<u32>()?;
                sub.iter()
                    .map(|r| r.iter().map(|&j| set[j as usize]).collect())
                    .collect()
            }
        };
        Ok(targets
            .iter()
            .enumerate()
            .map(|(i, t)| (&restricted[i] == t, &full[i] == t))
            .collect())
    }

    /// Ablates `heads` (none: the plain contrast run).
    pub fn ablate(&self, heads: &[Head]) -> Result<AblationRun, AnalysisError> {
        check_heads(self.model, heads)?;
        let (mut ld, mut acc) = (0.0, [0usize; 4]);
        for b in &self.batches {
            let logits = self.run(b, &b.with_normal, heads)?;
            let at = if logits.dim(1)? == 1 { 0 } else { b.len - 1 };
            let k = b.forced.dim(1)?;
            ld += b
                .readout
                .read_forced(&logits.narrow(1, at, k)?, &b.forced)?
                .iter()
                .map(|&x| x as f64)
                .sum::<f64>();
            let on_normal = self.correct(b, &logits, &b.target_normal)?;
            let logits_c = match &b.with_contrast {
                Some(t) => self.run(b, t, heads)?,
                None => logits,
            };
            let on_contrast = self.correct(b, &logits_c, &b.target_contrast)?;
            for ((rn, fn_), (rc, fc)) in on_normal.into_iter().zip(on_contrast) {
                for (i, ok) in [rn, rc, fn_, fc].into_iter().enumerate() {
                    acc[i] += ok as usize;
                }
            }
            debug_assert_eq!(b.rows.len(), b.target_normal.len());
        }
        let n = self.n as f64;
        Ok(AblationRun {
            heads: heads.to_vec(),
            logit_diff: ld / n,
            acc_normal_answer: acc[0] as f64 / n,
            acc_contrast_answer: acc[1] as f64 / n,
            acc_normal_answer_full_vocab: acc[2] as f64 / n,
            acc_contrast_answer_full_vocab: acc[3] as f64 / n,
        })
    }
}

/// At most this many random groups (the paper draws a handful). Each costs an ablation (one or
/// two forward passes over every example) and the population standard deviation of their
/// mean is already within 1% of its value at 10^4 groups, so more only costs time; the bound
/// stops a typo (10^9) from allocating gigabytes before the first group runs.
pub const MAX_RANDOM_GROUPS: usize = 10_000;
/// At most this many heads in all the random groups together (groups × heads per group):
/// [`random_groups`] draws them all up front and the report keeps each group's heads, 16
/// bytes a head, so 10^7 heads are 160 MB; 10^4 groups of 1,000 heads stay inside it.
pub const MAX_RANDOM_GROUP_HEADS: usize = 10_000_000;

/// Checks the number of random groups of `group_size` heads before any is drawn (the CLI
/// before loading the model, the explorer where the count is typed, and
/// [`AblationRequest::validate`](super::report::AblationRequest::validate)).
pub fn check_random_groups(n: usize, group_size: usize) -> Result<(), AnalysisError> {
    check_count(
        "random groups",
        n,
        (0, MAX_RANDOM_GROUPS),
        "each group is one more ablation; their spread is settled long before",
    )?;
    if n.saturating_mul(group_size) > MAX_RANDOM_GROUP_HEADS {
        return Err(invalid(format!(
            "random groups {n} of {group_size} heads: at most {MAX_RANDOM_GROUP_HEADS} heads in \
             all (they are drawn before the first ablation); use fewer groups"
        )));
    }
    Ok(())
}

/// `n` random head groups of `size` heads: `random.seed(seed)`, then `n` ×
/// `random.sample(all heads, size)` as the paper's §7 draws them. Callers check `n` with
/// [`check_random_groups`] first: the groups are drawn up front.
pub fn random_groups(model: &Model, n: usize, size: usize, seed: u64) -> Vec<Vec<Head>> {
    let all = super::all_heads(model);
    let mut rng = Random::new(seed as i128);
    (0..n)
        .map(|_| rng.sample(&all, size.min(all.len())))
        .collect()
}

/// The answer tokens an ablation's accuracy is restricted to, by task, as the paper's §7
/// scripts count it: the ten digits for off-by-k addition (`eval.py`'s rule); the whole
/// vocabulary for base-k addition and the cipher (their scripts take the full-vocabulary
/// argmax); for prompt-pair files, the tokens of the data's own answers (normal and
/// contrast, every teacher-forced position), which is to a generic task what the digits are
/// to addition — provided there are at least two. One rule for the CLI and the worker.
pub fn task_answer_tokens(
    task: crate::data::TaskKind,
    tok: &crate::model::Tokenizer,
    pairs: &[TokenizedPair],
    roles: Option<&[TokenRoles]>,
) -> Result<(AnswerSet, Option<Vec<u32>>), AnalysisError> {
    use crate::data::TaskKind;
    Ok(match task {
        TaskKind::Addition => (AnswerSet::Digits, Some(digit_tokens(tok)?)),
        TaskKind::Base | TaskKind::Cipher => (AnswerSet::FullVocabulary, None),
        TaskKind::Pairs => {
            let mut ids: Vec<u32> = (0..pairs.len())
                .flat_map(|i| {
                    let (n, c) = targets(&pairs[i], roles.map(|r| &r[i]));
                    n.into_iter().chain(c)
                })
                .collect();
            ids.sort_unstable();
            ids.dedup();
            if ids.len() < 2 {
                (AnswerSet::FullVocabulary, None)
            } else {
                (AnswerSet::DataAnswers(ids.len()), Some(ids))
            }
        }
    })
}

/// The ten digit tokens "0".."9" (the last token of each digit's tokenization, as the paper's
/// `to_tokens(str(i))[0][-1]`).
pub fn digit_tokens(tok: &crate::model::Tokenizer) -> Result<Vec<u32>, AnalysisError> {
    (0..10)
        .map(|d| {
            let ids = tok.encode(&d.to_string())?;
            ids.last()
                .copied()
                .ok_or_else(|| invalid(format!("the digit {d} tokenizes to nothing")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_group_counts_are_bounded() {
        assert!(check_random_groups(0, 3).is_ok());
        assert!(check_random_groups(MAX_RANDOM_GROUPS, 1000).is_ok());
        let e = check_random_groups(1_000_000_000, 2)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("random groups 1000000000: expected 0 to 10000 ("),
            "{e}"
        );
        let e = check_random_groups(10_000, 5_000).unwrap_err().to_string();
        assert!(e.contains("at most 10000000 heads in all"), "{e}");
        assert!(check_random_groups(usize::MAX, usize::MAX).is_err());
    }
}
