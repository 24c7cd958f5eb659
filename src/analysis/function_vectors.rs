//! Function vectors (`ALGORITHMS.md` §5): a head's FV is the mean over contrast prompts of its
//! z (the d_head vector before W_O) at the last position; it is added to that head's z at the
//! last position of naive prompts `"{i-1}={i-1}\n{i}="`, and Δ[i][j] is the change of digit
//! j's logit at the last position. The paper's previous-token variant takes the mean over the
//! demonstration answers (`source` = `@answers`) and adds at position −4.
//!
//! `metric` says what Δ is the change of: the read-out token's logit (`logit-diff`, the
//! default and the paper's: Δ is a difference of logits), its log-probability (`logprob`) or
//! its probability (`prob`), through path patching's `log_softmax`. `kl` is refused: it is one
//! number per prompt, not one per read-out token.

use candle_core::{DType, Tensor};

use super::positions::PositionSet;
use super::{check_heads, forward, group_batches, head_label, invalid, AnalysisError, Head};
use crate::data::{TokenRoles, TokenizedPair};
use crate::model::{HookName, HookPoint, Hooks, Model, RunOptions, Start, Tokenizer};
use crate::patching::metric::{log_softmax, Metric};

/// The paper's naive prompts `"{(i-1)%10}={(i-1)%10}\n{i}="`, i = 0..9.
pub fn paper_naive_prompts() -> Vec<String> {
    (0..10)
        .map(|i| {
            let p = (i + 9) % 10;
            format!("{p}={p}\n{i}=")
        })
        .collect()
}

/// What to add where.
#[derive(Debug, Clone, PartialEq)]
pub struct FvOptions {
    pub naive_prompts: Vec<String>,
    /// Positions of the contrast prompts averaged into the FV (the paper: the last).
    pub source: PositionSet,
    /// Position of the naive prompt the FV is added at; negative counts from the end (−1: the
    /// last token).
    pub add_at: i64,
    pub batch_size: usize,
    /// Read logits minus their mean over the vocabulary, as TransformerLens' centred
    /// unembedding gives them (the paper's numbers); never for soft-capped logits (Gemma-2),
    /// where TransformerLens does not centre. Logit differences do not depend on it; Δ does.
    pub centered: bool,
    /// The tokens whose logits Δ reads (their texts; each must be one token). Empty: the ten
    /// digits, which only the paper's addition answers (see [`readout_tokens`]).
    pub readout: Vec<String>,
    /// What Δ is the change of (see the module's doc): the logit by default.
    pub metric: Metric,
}

impl Default for FvOptions {
    fn default() -> Self {
        FvOptions {
            naive_prompts: paper_naive_prompts(),
            source: PositionSet::Last,
            add_at: -1,
            batch_size: 8,
            centered: true,
            readout: Vec::new(),
            metric: Metric::LogitDiff,
        }
    }
}

impl FvOptions {
    /// The columns of Δ: the read-out texts, or the digits `0`..`9`.
    /// Fails on a metric Δ cannot be read in: KL is one value per prompt, not per token.
    pub fn check_metric(&self) -> Result<(), AnalysisError> {
        if self.metric == Metric::Kl {
            return Err(invalid(
                "function vectors read each read-out token's change; the metric kl is one number per prompt: use logit-diff (the logit), logprob or prob",
            ));
        }
        Ok(())
    }

    pub fn labels(&self) -> Vec<String> {
        if self.readout.is_empty() {
            (0..10).map(|d| d.to_string()).collect()
        } else {
            self.readout.clone()
        }
    }
}

/// The read-out token ids of `opts` and a check that they fit the task: the default (the ten
/// digits, asked for by the paper's naive prompts `"9=9\n0="`) means something only for the
/// addition task, so any other task must name its read-out tokens (and its naive prompts):
/// never a silent 10 × 10 grid of digit logits for, say, IOI names. A read-out text must be
/// one token (after the tokenizer's own special tokens).
pub fn readout_tokens(
    tok: &Tokenizer,
    task: crate::data::TaskKind,
    opts: &FvOptions,
) -> Result<Vec<u32>, AnalysisError> {
    let addition = task == crate::data::TaskKind::Addition;
    if opts.readout.is_empty() {
        if !addition {
            return Err(invalid(format!(
                "function vectors read the ten digits by default, which only the addition task answers ({task} data): name the read-out tokens (e.g. the data's answers) and naive prompts that ask for them"
            )));
        }
        return super::ablation::digit_tokens(tok);
    }
    if !addition && opts.naive_prompts == paper_naive_prompts() {
        return Err(invalid(format!(
            "the default naive prompts ask for digits (\"9=9\\n0=\" ...), not the {task} data's answers: give naive prompts of this task"
        )));
    }
    let mut ids = Vec::with_capacity(opts.readout.len());
    for text in &opts.readout {
        let plain = tok.encode_plain(text)?;
        if plain.len() != 1 {
            return Err(invalid(format!(
                "read-out {:?} is {} tokens, expected one ({})",
                crate::model::tokenizer::printable(text),
                plain.len(),
                tok.token_texts(&plain).join(" | ")
            )));
        }
        if ids.contains(&plain[0]) {
            return Err(invalid(format!(
                "read-out {:?} is listed twice",
                crate::model::tokenizer::printable(text)
            )));
        }
        ids.push(plain[0]);
    }
    Ok(ids)
}

/// Δ grids: rows are naive prompts, columns the answer tokens (the digits).
#[derive(Debug, Clone, PartialEq)]
pub struct FvResult {
    pub heads: Vec<Head>,
    /// Logits of the answer tokens on the naive prompts without any FV.
    pub baseline: Vec<Vec<f64>>,
    /// ("L.H", Δ) per head, then ("all", Δ) with every head's FV added at once.
    pub delta: Vec<(String, Vec<Vec<f64>>)>,
    /// Whether the logits were read centred (asked for and the model is not soft-capped).
    pub centered: bool,
}

/// The mean over examples of each head's contrast z averaged over `source` positions:
/// [head] → d_head values.
pub fn mean_z(
    model: &Model,
    pairs: &[TokenizedPair],
    roles: Option<&[TokenRoles]>,
    heads: &[Head],
    source: &PositionSet,
    batch_size: usize,
) -> Result<Vec<Vec<f64>>, AnalysisError> {
    check_heads(model, heads)?;
    let lens: Vec<usize> = pairs.iter().map(|p| p.len()).collect();
    let d = model.cfg.d_head;
    let mut sums = vec![vec![0f64; d]; heads.len()];
    for rows in group_batches(&lens, batch_size)? {
        let ids: Vec<Vec<u32>> = rows
            .iter()
            .map(|&i| pairs[i].contrast_ids.clone())
            .collect();
        let (_, z) = forward(model, &model.tokens_tensor(&ids)?, false, true)?;
        for (bi, &ex) in rows.iter().enumerate() {
            let pos = source.resolve(&pairs[ex], roles.map(|r| &r[ex]))?;
            if pos.is_empty() {
                return Err(invalid(format!(
                    "FV source @{source}: example {} has no such position",
                    pairs[ex].index + 1
                )));
            }
            let pos_t = Tensor::from_vec(
                pos.iter().map(|&p| p as u32).collect::<Vec<_>>(),
                pos.len(),
                &model.device,
            )?;
            for (hi, &(l, h)) in heads.iter().enumerate() {
                // z[l]: [B, T, H, dh] → this row, these positions, this head: [P, dh].
                let v = z[l]
                    .get(bi)?
                    .index_select(&pos_t, 0)?
                    .narrow(1, h, 1)?
                    .squeeze(1)?
                    .to_dtype(DType::F64)?
                    .mean(0)?
                    .to_vec1::<f64>()?;
                for (s, x) in sums[hi].iter_mut().zip(v) {
                    *s += x;
                }
            }
        }
    }
    let n = pairs.len() as f64;
    Ok(sums
        .into_iter()
        .map(|s| s.into_iter().map(|x| x / n).collect())
        .collect())
}

/// Logits of `answer_ids` at the last position of each prompt, with `add` (head, vector)
/// added to z at position `add_at`.
fn naive_logits(
    model: &Model,
    prompts: &[Vec<u32>],
    answer_ids: &[u32],
    add: &[(Head, &[f64])],
    add_at: i64,
    batch_size: usize,
    (centered, metric): (bool, Metric),
) -> Result<Vec<Vec<f64>>, AnalysisError> {
    let centered = centered && model.cfg.final_softcap.is_none();
    let lens: Vec<usize> = prompts.iter().map(|p| p.len()).collect();
    let mut out = vec![Vec::new(); prompts.len()];
    let ids = Tensor::new(answer_ids, &model.device)?;
    let (nh, dh) = (model.n_heads(), model.cfg.d_head);
    for rows in group_batches(&lens, batch_size)? {
        let t = lens[rows[0]];
        let pos = if add_at < 0 {
            t as i64 + add_at
        } else {
            add_at
        };
        if pos < 0 || pos as usize >= t {
            return Err(invalid(format!(
                "FV position {add_at}: the naive prompt {} has {t} tokens",
                rows[0] + 1
            )));
        }
        let b = rows.len();
        let mut adds: Vec<Option<Vec<f32>>> = vec![None; model.n_layers()];
        for &((l, h), v) in add {
            let a = adds[l].get_or_insert_with(|| vec![0f32; b * t * nh * dh]);
            for bi in 0..b {
                let at = ((bi * t + pos as usize) * nh + h) * dh;
                for (x, y) in a[at..at + dh].iter_mut().zip(v) {
                    *x += *y as f32;
                }
            }
        }
        let adds: Vec<Option<Tensor>> = adds
            .into_iter()
            .map(|a| {
                a.map(|a| Tensor::from_vec(a, (b, t, nh, dh), &model.device))
                    .transpose()
            })
            .collect::<Result<_, _>>()?;
        let mut hooks =
            Hooks::none().with_callback(Box::new(move |name, z: Tensor| match (name, &adds) {
                (HookName::Layer(l, HookPoint::Z), adds) if adds[l].is_some() => {
                    let a = adds[l].as_ref().unwrap().to_dtype(z.dtype())?;
                    Ok((z + a)?)
                }
                _ => Ok(z),
            }));
        let tokens =
            model.tokens_tensor(&rows.iter().map(|&i| prompts[i].clone()).collect::<Vec<_>>())?;
        let logits = model
            .run(Start::Tokens(&tokens), RunOptions::default(), &mut hooks)?
            .logits
            .expect("a full run has logits");
        let mut last = super::last_position(&logits)?;
        match metric {
            Metric::Logprob => last = log_softmax(&last)?,
            Metric::Prob => last = log_softmax(&last)?.exp()?,
            _ if centered => last = last.broadcast_sub(&last.mean_keepdim(1)?)?,
            _ => {}
        }
        let last = last.index_select(&ids, 1)?;
        for (bi, row) in last.to_vec2::<f32>()?.into_iter().enumerate() {
            out[rows[bi]] = row.into_iter().map(|x| x as f64).collect();
        }
    }
    Ok(out)
}

/// Δ grids of `heads` (each alone, then all together) on the naive prompts.
pub fn function_vectors(
    model: &Model,
    tok: &Tokenizer,
    pairs: &[TokenizedPair],
    roles: Option<&[TokenRoles]>,
    heads: &[Head],
    answer_ids: &[u32],
    opts: &FvOptions,
) -> Result<FvResult, AnalysisError> {
    if heads.is_empty() {
        return Err(invalid("no heads to read function vectors of"));
    }
    let fv = mean_z(model, pairs, roles, heads, &opts.source, opts.batch_size)?;
    deltas(model, tok, heads, &fv, answer_ids, opts)
}

/// Δ grids of given vectors `fv[i]` added to `heads[i]` (each alone, then all together): the
/// second half of [`function_vectors`], public so that a caller can add vectors of its own
/// (a zero vector must give Δ = 0, the check that the hook adds nothing else).
pub fn deltas(
    model: &Model,
    tok: &Tokenizer,
    heads: &[Head],
    fv: &[Vec<f64>],
    answer_ids: &[u32],
    opts: &FvOptions,
) -> Result<FvResult, AnalysisError> {
    Ok(deltas_with(model, tok, heads, fv, answer_ids, opts, &mut || true)?.0)
}

/// [`deltas`], calling `step` after the baseline and after each grid (one head's, then
/// "all"): the worker's progress and cancel points. When `step` returns false the work stops
/// there and the result holds the grids finished so far, with `false` beside it.
pub fn deltas_with(
    model: &Model,
    tok: &Tokenizer,
    heads: &[Head],
    fv: &[Vec<f64>],
    answer_ids: &[u32],
    opts: &FvOptions,
    step: &mut dyn FnMut() -> bool,
) -> Result<(FvResult, bool), AnalysisError> {
    check_heads(model, heads)?;
    opts.check_metric()?;
    let d = model.cfg.d_head;
    if heads.is_empty() || fv.len() != heads.len() || fv.iter().any(|v| v.len() != d) {
        return Err(invalid(format!(
            "function vectors: {} vectors for {} heads, each must have d_head = {d} values",
            fv.len(),
            heads.len()
        )));
    }
    let prompts: Vec<Vec<u32>> = opts
        .naive_prompts
        .iter()
        .map(|p| tok.encode(p))
        .collect::<Result<_, _>>()?;
    let logits = |add: &[(Head, &[f64])]| {
        naive_logits(
            model,
            &prompts,
            answer_ids,
            add,
            opts.add_at,
            opts.batch_size,
            (opts.centered, opts.metric),
        )
    };
    let baseline = logits(&[])?;
    let minus = |with: Vec<Vec<f64>>| -> Vec<Vec<f64>> {
        with.iter()
            .zip(&baseline)
            .map(|(w, b)| w.iter().zip(b).map(|(x, y)| x - y).collect())
            .collect()
    };
    let mut delta = Vec::new();
    let mut go_on = step();
    for (h, v) in heads.iter().zip(fv) {
        if !go_on {
            break;
        }
        delta.push((head_label(h), minus(logits(&[(*h, v.as_slice())])?)));
        go_on = step();
    }
    if go_on {
        let all: Vec<(Head, &[f64])> = heads
            .iter()
            .copied()
            .zip(fv.iter().map(|v| v.as_slice()))
            .collect();
        delta.push(("all".to_string(), minus(logits(&all)?)));
        step();
    }
    let result = FvResult {
        heads: heads.to_vec(),
        baseline,
        delta,
        centered: opts.centered && model.cfg.final_softcap.is_none(),
    };
    Ok((result, go_on))
}
