//! After discovery: the paper's tests of candidate heads (`ALGORITHMS.md` §4 circuit
//! evaluation, §5 function vectors, §7 head ablation), all written on the engine's hook API
//! (`Model::run` with `Hooks` on `attn.hook_z`), so there is no second forward pass to trust.
//!
//! - [`positions`]: position sets of circuit groups (`@all`, `@last`, `@tok:=`, `@answers`).
//! - [`circuit`]: F(X), faithfulness, completeness, minimality, the greedy search.
//! - [`ablation`]: heads' z from the normal run; logit difference and accuracies.
//! - [`function_vectors`]: mean contrast z added to naive prompts; Δ of the digit logits.
//! - [`report`]: the requests and reports of the three, as the worker and result files see them.
//!
//! Every figure is a mean over examples of per-example values, so batch size never changes it
//! (beyond float rounding of batched matrix products).

pub mod ablation;
pub mod circuit;
pub mod function_vectors;
pub mod positions;
pub mod report;

use candle_core::{DType, Tensor};

use crate::data::TokenizedPair;
use crate::model::{Capture, HookName, HookPoint, Hooks, Model, ModelError, RunOptions, Start};

/// A head, (layer, head).
pub type Head = (usize, usize);

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("{0}")]
    Invalid(String),
    /// A count of the request outside the range it can take: `field` names it as the request
    /// does ("random groups"), the CLI words it with its flag (`cli::wording`).
    #[error("{field} {value}: expected {min} to {max} ({why})")]
    Count {
        field: &'static str,
        value: u64,
        min: u64,
        max: u64,
        why: &'static str,
    },
    #[error(transparent)]
    Model(#[from] ModelError),
}

impl From<candle_core::Error> for AnalysisError {
    fn from(e: candle_core::Error) -> Self {
        AnalysisError::Model(ModelError::Candle(e))
    }
}

/// The metric readout is path patching's (`patching::metric`): its errors are the model's, or
/// an internal invariant.
impl From<crate::patching::PatchError> for AnalysisError {
    fn from(e: crate::patching::PatchError) -> Self {
        match e {
            crate::patching::PatchError::Model(m) => AnalysisError::Model(m),
            other => AnalysisError::Invalid(other.to_string()),
        }
    }
}

/// Position sets are resolved in `data` (`data::positions`): their errors say what is wrong
/// with the set or the example.
impl From<crate::data::DataError> for AnalysisError {
    fn from(e: crate::data::DataError) -> Self {
        AnalysisError::Invalid(e.to_string())
    }
}

fn invalid(msg: impl Into<String>) -> AnalysisError {
    AnalysisError::Invalid(msg.into())
}

/// Fails on a count outside `min..=max`, naming the field, the value, the range and why the
/// bound is there. Counts that size memory are checked with it before anything is allocated.
pub fn check_count(
    field: &'static str,
    value: usize,
    (min, max): (usize, usize),
    why: &'static str,
) -> Result<(), AnalysisError> {
    if (min..=max).contains(&value) {
        return Ok(());
    }
    Err(AnalysisError::Count {
        field,
        value: value as u64,
        min: min as u64,
        max: max as u64,
        why,
    })
}

/// Fails on a head listed twice, naming it: every head list (a group, `--heads`, a knock-out
/// set) is a set, and a repeat is a typo that would otherwise count a head twice (FV sums)
/// or pass silently (ablation, knock-outs).
pub fn check_distinct<'a>(heads: impl IntoIterator<Item = &'a Head>) -> Result<(), AnalysisError> {
    let mut seen = std::collections::HashSet::new();
    for h in heads {
        if !seen.insert(*h) {
            return Err(invalid(format!(
                "head {} is listed twice; list each head once",
                head_label(h)
            )));
        }
    }
    Ok(())
}

/// Fails on a head outside the model, naming it and the model's shape, and on a head listed
/// twice ([`check_distinct`]).
pub fn check_heads<'a>(
    model: &Model,
    heads: impl IntoIterator<Item = &'a Head> + Clone,
) -> Result<(), AnalysisError> {
    check_distinct(heads.clone())?;
    let (nl, nh) = (model.n_layers(), model.n_heads());
    for &(l, h) in heads {
        if l >= nl || h >= nh {
            return Err(invalid(format!(
                "head {l}.{h} is not in the model ({nl} layers × {nh} heads: layers 0..{}, heads 0..{})",
                nl - 1,
                nh - 1
            )));
        }
    }
    Ok(())
}

/// Every head of the model, layer by layer (the order of the paper's
/// `[(l, h) for l in range(L) for h in range(H)]`).
pub fn all_heads(model: &Model) -> Vec<Head> {
    (0..model.n_layers())
        .flat_map(|l| (0..model.n_heads()).map(move |h| (l, h)))
        .collect()
}

/// Example indices grouped by a key (token length, ...) in order of first appearance, then cut
/// into batches of at most `batch_size`.
pub(crate) fn group_batches<K: PartialEq>(
    keys: &[K],
    batch_size: usize,
) -> Result<Vec<Vec<usize>>, AnalysisError> {
    if batch_size == 0 {
        return Err(invalid("batch size 0: expected at least 1"));
    }
    if keys.is_empty() {
        return Err(invalid("no examples"));
    }
    let mut order: Vec<&K> = Vec::new();
    for k in keys {
        if !order.contains(&k) {
            order.push(k);
        }
    }
    let mut out = Vec::new();
    for k in order {
        let idx: Vec<usize> = (0..keys.len()).filter(|&i| &keys[i] == k).collect();
        out.extend(idx.chunks(batch_size).map(|c| c.to_vec()));
    }
    Ok(out)
}

/// Checks that every example's normal and contrast prompts have the same length (z of one
/// replaces z of the other position by position).
pub(crate) fn check_lengths(pairs: &[TokenizedPair]) -> Result<(), AnalysisError> {
    for p in pairs {
        if p.normal_ids.len() != p.contrast_ids.len() {
            return Err(invalid(format!(
                "example {}: normal and contrast prompts have {} and {} tokens; z can only be \
                 swapped between prompts of equal length",
                p.index + 1,
                p.normal_ids.len(),
                p.contrast_ids.len()
            )));
        }
    }
    Ok(())
}

/// [B, 2] u32 answer tokens (normal, contrast) of some examples.
pub(crate) fn answers_tensor(
    model: &Model,
    pairs: &[&TokenizedPair],
) -> Result<Tensor, AnalysisError> {
    let ids: Vec<u32> = pairs
        .iter()
        .flat_map(|p| [p.normal_answer, p.contrast_answer])
        .collect();
    Ok(Tensor::from_vec(ids, (pairs.len(), 2), &model.device)?)
}

/// Logits [B, T, V] → f32 [B, V] of the last position.
pub(crate) fn last_position(logits: &Tensor) -> Result<Tensor, AnalysisError> {
    let t = logits.dim(1)?;
    Ok(logits
        .narrow(1, t - 1, 1)?
        .squeeze(1)?
        .to_dtype(DType::F32)?
        .contiguous()?)
}

/// One forward from tokens; `capture_z` records every layer's z.
pub(crate) fn forward(
    model: &Model,
    tokens: &Tensor,
    last_only: bool,
    capture_z: bool,
) -> Result<(Tensor, Vec<Tensor>), AnalysisError> {
    let names = (0..model.n_layers()).map(|l| HookName::Layer(l, HookPoint::Z));
    let mut hooks = if capture_z {
        Hooks::capture(Capture::only(names))
    } else {
        Hooks::none()
    };
    let out = model.run(
        Start::Tokens(tokens),
        RunOptions {
            stop_after: None,
            last_position_only: last_only,
        },
        &mut hooks,
    )?;
    let z = if capture_z {
        (0..model.n_layers())
            .map(|l| hooks.cache.require(l, HookPoint::Z).cloned())
            .collect::<Result<Vec<_>, _>>()?
    } else {
        Vec::new()
    };
    Ok((out.logits.expect("a full run has logits"), z))
}

/// Mean and population standard deviation (numpy's `np.std`, as the paper's error bars).
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// `L.H`, as heads are written on the command line and in result keys.
pub fn head_label(h: &Head) -> String {
    format!("{}.{}", h.0, h.1)
}

/// Parses `L.H`.
pub fn parse_head(s: &str) -> Result<Head, AnalysisError> {
    let parse = || -> Option<Head> {
        let (l, h) = s.trim().split_once('.')?;
        Some((l.trim().parse().ok()?, h.trim().parse().ok()?))
    };
    parse().ok_or_else(|| invalid(format!("head {s:?}: expected LAYER.HEAD, e.g. 3.1")))
}

/// Parses heads joined by `sep` (`3.1,2.0` or `2.7+3.0`); empty pieces and a head listed
/// twice are an error.
pub fn parse_heads(s: &str, sep: char) -> Result<Vec<Head>, AnalysisError> {
    let heads = s
        .split(sep)
        .map(parse_head)
        .collect::<Result<Vec<_>, _>>()?;
    check_distinct(&heads)?;
    Ok(heads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse_and_print() {
        assert_eq!(parse_head(" 3.1 ").unwrap(), (3, 1));
        assert_eq!(parse_heads("2.7+3.0", '+').unwrap(), vec![(2, 7), (3, 0)]);
        assert!(parse_head("3").is_err() && parse_head("a.b").is_err());
        assert!(parse_heads("3.1,,2.0", ',').is_err());
        let e = parse_heads("3.1,2.0,3.1", ',').unwrap_err().to_string();
        assert_eq!(e, "head 3.1 is listed twice; list each head once");
        assert_eq!(head_label(&(12, 4)), "12.4");
    }

    #[test]
    fn counts_name_value_range_and_why() {
        assert!(check_count("greedy rollouts", 10, (1, 100), "why").is_ok());
        let e = check_count("greedy rollouts", 0, (1, 100), "a search needs one").unwrap_err();
        assert_eq!(
            e.to_string(),
            "greedy rollouts 0: expected 1 to 100 (a search needs one)"
        );
        assert!(check_count("x", 101, (1, 100), "w").is_err());
    }

    #[test]
    fn population_std_as_numpy() {
        let (m, s) = mean_std(&[0.1, 0.12, 0.08, 0.1, 0.1]);
        assert!((m - 0.1).abs() < 1e-12);
        // np.std([0.1, 0.12, 0.08, 0.1, 0.1]) = 0.012649110640673516
        assert!((s - 0.012649110640673516).abs() < 1e-12);
    }

    #[test]
    fn batches_group_by_key_in_order() {
        let b = group_batches(&[5, 7, 5, 5, 7], 2).unwrap();
        assert_eq!(b, vec![vec![0, 2], vec![3], vec![1, 4]]);
        assert!(group_batches(&[1], 0).is_err());
        assert!(group_batches::<usize>(&[], 4).is_err());
    }
}
