//! Answers of several tokens scored in full by `logprob` and `prob`, teacher-forced:
//! log p(answer) = Σ_j log p(token_j | prompt, token_<j).
//!
//! The semantics are TransformerLens' run of the whole sequence: the normal answer's tokens
//! but its last are appended to both prompts (normal and contrast runs alike, so the two
//! sequences stay equally long), every hook patches every position of that sequence as it
//! would the prompt's, and the log-probabilities of the answer's tokens are read at the prompt's
//! last position and at each appended one. Every operation of path patching is causal (a
//! position's value depends on the tokens up to it only, in every pass), so the logits at the
//! position that predicts token j are those of the same patching run on the prompt + token_<j
//! alone, at its last position. That is how they are computed here: each example with a
//! normal answer of k tokens becomes k examples (prompt + token_<j, scored on token_j by
//! `logprob`), the engine (fast or literal, unchanged) runs them as any others, and
//! [`Forced::fold`] sums each example's k values back into one (exp of the sum for `prob`)
//! before any mean, interval or r is formed. `tests/forced_metrics.rs` checks the result
//! against TransformerLens running the whole sequence (`make_metric_refs.py --forced`).
//!
//! The tokens are the normal answer's continuation of the normal prompt
//! (`TokenRoles::normal_continuation`); an example whose continuation is one token or unknown
//! is scored on its answer token as before. The logit difference and KL stay single-token
//! (they compare the next-token distributions at the answer position).

use candle_core::Tensor;

use super::metric::{Metric, Readout};
use super::{Observer, PatchError, PatchEvent, PatchOutcome, PatchSpec};
use crate::data::{TokenRoles, TokenizedPair};
use crate::model::{Hooks, Model, RunOptions, Start};

/// The examples a teacher-forced sweep runs, and how to fold their values back.
#[derive(Debug, Clone)]
pub struct Forced {
    /// One per prefix: the example's own prompt, then the prompt + each answer token but the
    /// last (examples of one token stay as they are).
    pub pairs: Vec<TokenizedPair>,
    /// Per entry of `pairs`, the example (position in the pairs given) it belongs to.
    owner: Vec<usize>,
    /// Examples given.
    n: usize,
    /// `logprob` or `prob`: what the folded values are.
    metric: Metric,
    /// Examples whose normal answer is scored over several tokens.
    pub several: usize,
}

impl Forced {
    /// The plan for `pairs` (with their `roles`), or `None` when `metric` reads one token
    /// (the logit difference, KL) or no normal answer continues its prompt by several tokens.
    pub fn plan(pairs: &[TokenizedPair], roles: &[TokenRoles], metric: Metric) -> Option<Forced> {
        if !matches!(metric, Metric::Logprob | Metric::Prob) || roles.len() != pairs.len() {
            return None;
        }
        let (mut subs, mut owner, mut several) = (Vec::new(), Vec::new(), 0);
        for (i, (p, r)) in pairs.iter().zip(roles).enumerate() {
            let Some(c) = r.normal_continuation.as_ref().filter(|c| c.len() > 1) else {
                subs.push(p.clone());
                owner.push(i);
                continue;
            };
            several += 1;
            for j in 0..c.len() {
                let mut q = p.clone();
                q.normal_ids.extend_from_slice(&c[..j]);
                q.contrast_ids.extend_from_slice(&c[..j]);
                q.normal_answer = c[j];
                subs.push(q);
                owner.push(i);
            }
        }
        (several > 0).then_some(Forced {
            pairs: subs,
            owner,
            n: pairs.len(),
            metric,
            several,
        })
    }

    /// The spec the engine runs: every prefix scored by `logprob` (summed by [`Forced::fold`]).
    pub fn engine_spec(&self, spec: &PatchSpec) -> PatchSpec {
        PatchSpec {
            metric: Metric::Logprob,
            ..spec.clone()
        }
    }

    /// What the result records about it (a note among its warnings), one line.
    pub fn describe(&self) -> String {
        format!(
            "{} of {} examples have normal answers of several tokens, scored in full by {}: Σ_j log p(token_j | prompt + the answer's tokens before it), teacher-forced, the answer's tokens appended to both prompts and patched at every position ({} runs of a prompt + answer prefix in all)",
            self.several,
            self.n,
            self.metric,
            self.pairs.len()
        )
    }

    /// Per example: the sum of its prefixes' values (`prob`: its exponential).
    fn fold_each(&self, v: &[f32]) -> Vec<f32> {
        let mut sum = vec![0f64; self.n];
        for (x, &o) in v.iter().zip(&self.owner) {
            sum[o] += *x as f64;
        }
        let exp = self.metric == Metric::Prob;
        sum.into_iter()
            .map(|s| if exp { s.exp() } else { s } as f32)
            .collect()
    }

    /// Folds a finished (or cancelled) sweep of [`Forced::pairs`] into the sweep of the
    /// examples given: every per-example value (baselines, heads, MLPs), the means from them,
    /// the rows no sender reaches (the new contrast mean) and the top tokens (each example's
    /// own prompt, its first prefix).
    pub fn fold(&self, o: &mut PatchOutcome, spec: &PatchSpec) -> Result<(), PatchError> {
        let m = &mut o.matrix;
        if m.normal_each.len() != self.owner.len() {
            return Err(PatchError::Invalid(format!(
                "internal: {} baselines for {} teacher-forced prefixes",
                m.normal_each.len(),
                self.owner.len()
            )));
        }
        m.normal_each = self.fold_each(&m.normal_each);
        m.contrast_each = self.fold_each(&m.contrast_each);
        m.ld_normal = mean(&m.normal_each);
        m.ld_contrast = mean(&m.contrast_each);
        m.n_examples = self.n;
        m.metric = self.metric;
        for l in 0..m.n_layers {
            if let Some(each) = m.each[l].take() {
                let folded: Vec<Vec<f32>> = each.iter().map(|e| self.fold_each(e)).collect();
                m.patched[l] = folded.iter().map(|e| mean(e)).collect();
                m.each[l] = Some(folded);
            }
        }
        m.fill_unreached(&spec.receiver, spec.begin_layer);
        let contrast = m.ld_contrast;
        if let Some(c) = m.mlp.as_mut() {
            for l in 0..c.patched.len() {
                if let Some(e) = c.each[l].take() {
                    let folded = self.fold_each(&e);
                    c.patched[l] = mean(&folded);
                    c.each[l] = Some(folded);
                } else if l >= spec.begin_layer && !spec.receiver.mlp_reachable_from(l) {
                    c.patched[l] = contrast;
                }
            }
        }
        o.top_tokens = self.firsts(&o.top_tokens);
        Ok(())
    }

    /// Per example, the value of its first prefix (its own prompt).
    fn firsts<T: Clone>(&self, v: &[T]) -> Vec<T> {
        let mut out: Vec<Option<T>> = vec![None; self.n];
        for (x, &o) in v.iter().zip(&self.owner) {
            if out[o].is_none() {
                out[o] = Some(x.clone());
            }
        }
        out.into_iter().flatten().collect()
    }

    /// The folded baselines (the means of the unpatched normal and contrast runs), from two
    /// forward passes of every prefix: what the progress shows before the sweep ends (the
    /// sweep's own cache passes give the prefixes' means, and `prob`'s mean is not theirs).
    pub fn baselines(&self, model: &Model, batch_size: usize) -> Result<(f64, f64), PatchError> {
        let mut values = [vec![0f32; self.pairs.len()], vec![0f32; self.pairs.len()]];
        let mut order: Vec<usize> = (0..self.pairs.len()).collect();
        order.sort_by_key(|&i| self.pairs[i].normal_ids.len());
        let mut start = 0;
        while start < order.len() {
            let len = self.pairs[order[start]].normal_ids.len();
            let end = (start..order.len())
                .find(|&k| {
                    self.pairs[order[k]].normal_ids.len() != len || k - start == batch_size.max(1)
                })
                .unwrap_or(order.len());
            let rows = &order[start..end];
            let answers: Vec<u32> = rows
                .iter()
                .flat_map(|&i| [self.pairs[i].normal_answer, self.pairs[i].contrast_answer])
                .collect();
            let readout = Readout {
                metric: Metric::Logprob,
                answers: Tensor::from_vec(answers, (rows.len(), 2), &model.device)?,
                reference: None,
            };
            for (side, v) in values.iter_mut().enumerate() {
                let ids: Vec<Vec<u32>> = rows
                    .iter()
                    .map(|&i| match side {
                        0 => self.pairs[i].normal_ids.clone(),
                        _ => self.pairs[i].contrast_ids.clone(),
                    })
                    .collect();
                let tokens = model.tokens_tensor(&ids)?;
                let run = RunOptions {
                    stop_after: None,
                    last_position_only: true,
                };
                let out = model.run(Start::Tokens(&tokens), run, &mut Hooks::none())?;
                let logits = out
                    .logits
                    .ok_or_else(|| PatchError::Invalid("internal: no logits".into()))?;
                let last = logits.narrow(1, logits.dim(1)? - 1, 1)?.squeeze(1)?;
                for (&i, x) in rows.iter().zip(readout.read_logits(&last)?) {
                    v[i] = x;
                }
            }
            start = end;
        }
        let [n, c] = values;
        Ok((mean(&self.fold_each(&n)), mean(&self.fold_each(&c))))
    }

    /// An observer that passes `inner` the events of the examples given: the baselines
    /// `exact` (from [`Forced::baselines`]: the prefixes' own means are of another quantity)
    /// and each example's top tokens (its own prompt's); rows' means are not folded (a row's
    /// mean needs its per-example values), so they are passed as NaN.
    pub fn observer<'o>(
        &'o self,
        inner: &'o mut dyn Observer,
        exact: (f64, f64),
    ) -> FoldingObserver<'o> {
        FoldingObserver {
            forced: self,
            inner,
            exact,
        }
    }
}

fn mean(v: &[f32]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64
}

/// Whether `metric` may score answers of several tokens in full (and so needs the token roles).
pub fn scores_whole_answers(metric: Metric) -> bool {
    matches!(metric, Metric::Logprob | Metric::Prob)
}

/// The examples the engine runs for `pairs`: the prefixes where [`run_devices`] teacher-forces
/// (more and longer prompts, what the memory estimate must count), else `pairs` themselves.
pub fn engine_pairs<'p>(
    pairs: &'p [TokenizedPair],
    roles: Option<&[TokenRoles]>,
    metric: Metric,
) -> std::borrow::Cow<'p, [TokenizedPair]> {
    match roles.and_then(|r| Forced::plan(pairs, r, metric)) {
        Some(f) => std::borrow::Cow::Owned(f.pairs),
        None => std::borrow::Cow::Borrowed(pairs),
    }
}

/// [`super::run_devices`] of `pairs`, teacher-forced where `spec.metric` scores answers of
/// several tokens in full and `roles` (aligned with `pairs`) give their tokens: the outcome is
/// that of the examples given, with the line the result records about it.
pub fn run_devices(
    models: &[&Model],
    pairs: &[TokenizedPair],
    roles: Option<&[TokenRoles]>,
    spec: &PatchSpec,
    layers: &[usize],
    observer: &mut dyn Observer,
) -> Result<(PatchOutcome, Option<String>), PatchError> {
    let Some(f) = roles.and_then(|r| Forced::plan(pairs, r, spec.metric)) else {
        let o = super::run_devices(models, pairs, spec, layers, observer)?;
        return Ok((o, None));
    };
    let exact = f.baselines(models[0], spec.batch_size)?;
    let mut obs = f.observer(observer, exact);
    let mut o = super::run_devices(models, &f.pairs, &f.engine_spec(spec), layers, &mut obs)?;
    f.fold(&mut o, spec)?;
    Ok((o, Some(f.describe())))
}

/// [`super::scan::run_layers`] of `pairs`, teacher-forced as [`run_devices`] is, for the
/// scans that patch every position (`heads`, `mlp`); a per-position scan's columns are the
/// prompt's positions, which prefixes of several lengths do not share, so it reads one token
/// (and its warning stays).
pub fn scan_layers(
    model: &Model,
    pairs: &[TokenizedPair],
    roles: Option<&[TokenRoles]>,
    spec: &super::scan::ScanSpec,
    layers: &[usize],
    observer: &mut dyn Observer,
) -> Result<(super::scan::ScanOutcome, Option<String>), PatchError> {
    let plan = roles
        .filter(|_| !spec.kind.per_position())
        .and_then(|r| Forced::plan(pairs, r, spec.metric));
    let Some(f) = plan else {
        let o = super::scan::run_layers(model, pairs, spec, layers, observer)?;
        return Ok((o, None));
    };
    let exact = f.baselines(model, spec.batch_size)?;
    let engine = super::scan::ScanSpec {
        metric: Metric::Logprob,
        ..*spec
    };
    let mut obs = f.observer(observer, exact);
    let mut o = super::scan::run_layers(model, &f.pairs, &engine, layers, &mut obs)?;
    o.normal_each = f.fold_each(&o.normal_each);
    o.contrast_each = f.fold_each(&o.contrast_each);
    for row in o.each.iter_mut().flatten() {
        for cell in row.iter_mut() {
            *cell = f.fold_each(cell);
        }
    }
    o.top_tokens = f.firsts(&o.top_tokens);
    o.spec = *spec;
    Ok((o, Some(f.describe())))
}

/// Whether a scan of `kind` with `metric` scores answers of several tokens in full.
pub fn scan_scores_whole_answers(kind: super::scan::ScanKind, metric: Metric) -> bool {
    !kind.per_position() && scores_whole_answers(metric)
}

/// See [`Forced::observer`].
pub struct FoldingObserver<'o> {
    forced: &'o Forced,
    inner: &'o mut dyn Observer,
    exact: (f64, f64),
}

impl Observer for FoldingObserver<'_> {
    fn event(&mut self, e: &PatchEvent) {
        let f = self.forced;
        match e {
            PatchEvent::Baselines {
                ld_normal,
                ld_contrast,
                n_examples: _,
                cache_seconds,
                top_tokens,
            } => {
                // Not finite in the prefixes is not finite folded: kept, so the sweep stops.
                let finite = ld_normal.is_finite() && ld_contrast.is_finite();
                let (n, c) = if finite {
                    self.exact
                } else {
                    (*ld_normal, *ld_contrast)
                };
                self.inner.event(&PatchEvent::Baselines {
                    ld_normal: n,
                    ld_contrast: c,
                    n_examples: f.n,
                    cache_seconds: *cache_seconds,
                    top_tokens: f.firsts(top_tokens),
                })
            }
            PatchEvent::Row {
                layer,
                patched,
                done,
                total,
                elapsed,
                eta,
            } => self.inner.event(&PatchEvent::Row {
                layer: *layer,
                patched: vec![f64::NAN; patched.len()],
                done: *done,
                total: *total,
                elapsed: *elapsed,
                eta: *eta,
            }),
        }
    }

    fn cancelled(&self) -> bool {
        self.inner.cancelled()
    }
}
