//! Circuit evaluation (`ALGORITHMS.md` §4): F(X) is the mean metric (the paper's: the logit
//! difference; or any [`Metric`], read by path patching's one [`Readout`]) of the contrast
//! run in which every head's z outside X (head not in a group, or position not in its group's
//! set) is replaced by the normal run's z of the same example. MLPs, norms and embeddings run
//! live. M, every head at every position, gives F(M) = M_contrast.
//!
//! Faithfulness (F(C) − M_n)/(M_c − M_n); completeness of knock-out sets K: F(C\K), F(M\K)
//! and |F(C\K) − F(M\K)|; minimality |F(C\K_v) − F(C\(K_v ∪ {v}))|; the paper's greedy search
//! for the K with the largest completeness gap.
//!
//! Every metric reads the last prompt position (the answer token the data's rule picks, as
//! `patch` does): KL against the unpatched normal run's distribution there.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::Tensor;

use super::positions::PositionSet;
use super::{answers_tensor, check_heads, check_lengths, forward, group_batches, invalid};
use super::{check_count, check_distinct, head_label, last_position, AnalysisError, Head};
use crate::data::pyrandom::PyRandom as Random;
use crate::data::{TokenRoles, TokenizedPair};
use crate::model::{HookName, HookPoint, Hooks, Model, RunOptions, Start};
use crate::patching::metric::{Metric, Readout};

/// Heads kept live at a set of positions.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub name: String,
    pub heads: Vec<Head>,
    pub positions: PositionSet,
}

/// Named groups of heads; a head may sit in several groups (it is then live at the union of
/// their positions).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Circuit {
    pub groups: Vec<Group>,
}

impl Circuit {
    /// M: every head of the model at every position.
    pub fn complete(model: &Model) -> Circuit {
        Circuit {
            groups: vec![Group {
                name: "M".into(),
                heads: super::all_heads(model),
                positions: PositionSet::All,
            }],
        }
    }

    /// The circuit with the heads of `k` removed from every group.
    pub fn without(&self, k: &[Head]) -> Circuit {
        Circuit {
            groups: self
                .groups
                .iter()
                .map(|g| Group {
                    heads: g.heads.iter().filter(|h| !k.contains(h)).copied().collect(),
                    ..g.clone()
                })
                .collect(),
        }
    }

    /// Checks the circuit's shape, without a model: at least one group, group names unique,
    /// each group's heads distinct and not empty, and no head in two groups of the same
    /// positions. A head in two groups of *different* positions is kept: it is then live at
    /// the union of their positions, the only way to keep a head live at, say, every `=` and
    /// at the answers. In two groups of the same positions it adds nothing, so it is a
    /// slip (a head meant for another group) and is refused.
    pub fn check(&self) -> Result<(), AnalysisError> {
        if self.groups.is_empty() {
            return Err(invalid("no groups: a circuit needs at least one"));
        }
        for (i, g) in self.groups.iter().enumerate() {
            if g.heads.is_empty() {
                return Err(invalid(format!("group {} has no heads", g.name)));
            }
            check_distinct(&g.heads).map_err(|e| invalid(format!("group {}: {e}", g.name)))?;
            for other in &self.groups[..i] {
                if other.name == g.name {
                    return Err(invalid(format!(
                        "two groups are named {}: give each group its own name",
                        g.name
                    )));
                }
                if other.positions != g.positions {
                    continue;
                }
                if let Some(h) = g.heads.iter().find(|h| other.heads.contains(h)) {
                    return Err(invalid(format!(
                        "head {} is in group {} and in group {}, both @{}: a head belongs \
                         to one group of given positions",
                        head_label(h),
                        other.name,
                        g.name,
                        g.positions
                    )));
                }
            }
        }
        Ok(())
    }

    /// The distinct heads, in group order.
    pub fn heads(&self) -> Vec<Head> {
        let mut out: Vec<Head> = Vec::new();
        for h in self.groups.iter().flat_map(|g| &g.heads) {
            if !out.contains(h) {
                out.push(*h);
            }
        }
        out
    }
}

/// One batch with the normal run's z of every layer, kept for every evaluation.
struct Prepared {
    rows: Vec<usize>,
    contrast: Tensor,
    /// The metric with its answers and (KL) the normal run's distribution.
    readout: Readout,
    z_normal: Vec<Tensor>,
}

/// Evaluates circuits on fixed examples: the normal-run caches and the baselines are computed
/// once, so each F(X) costs one forward pass per batch.
pub struct Evaluator<'a> {
    model: &'a Model,
    pairs: &'a [TokenizedPair],
    roles: Option<&'a [TokenRoles]>,
    batches: Vec<Prepared>,
    /// What F and the baselines are: the logit difference unless asked otherwise.
    pub metric: Metric,
    /// The baselines M_normal and M_contrast in `metric` (named for the logit difference,
    /// the paper's and the default).
    pub ld_normal: f64,
    pub ld_contrast: f64,
    /// Circuit forward passes run so far (one per batch per F).
    pub evaluations: usize,
}

impl<'a> Evaluator<'a> {
    /// [`Evaluator::with_metric`] by the logit difference (the paper's).
    pub fn new(
        model: &'a Model,
        pairs: &'a [TokenizedPair],
        roles: Option<&'a [TokenRoles]>,
        batch_size: usize,
    ) -> Result<Self, AnalysisError> {
        Self::with_metric(model, pairs, roles, batch_size, Metric::LogitDiff)
    }

    /// Runs the normal prompts (caching z) and the contrast prompts (for M_contrast).
    /// `roles` (aligned with `pairs`) are needed by `@answers` groups only.
    pub fn with_metric(
        model: &'a Model,
        pairs: &'a [TokenizedPair],
        roles: Option<&'a [TokenRoles]>,
        batch_size: usize,
        metric: Metric,
    ) -> Result<Self, AnalysisError> {
        check_lengths(pairs)?;
        if roles.is_some_and(|r| r.len() != pairs.len()) {
            return Err(invalid("internal: token roles do not match the examples"));
        }
        let lens: Vec<usize> = pairs.iter().map(|p| p.len()).collect();
        let (mut ln, mut lc) = (0.0, 0.0);
        let mut batches = Vec::new();
        for rows in group_batches(&lens, batch_size)? {
            let sel: Vec<&TokenizedPair> = rows.iter().map(|&i| &pairs[i]).collect();
            let normal: Vec<Vec<u32>> = sel.iter().map(|p| p.normal_ids.clone()).collect();
            let contrast: Vec<Vec<u32>> = sel.iter().map(|p| p.contrast_ids.clone()).collect();
            let normal = model.tokens_tensor(&normal)?;
            let contrast = model.tokens_tensor(&contrast)?;
            let answers = answers_tensor(model, &sel)?;
            let (logits, z_normal) = forward(model, &normal, true, true)?;
            let last = last_position(&logits)?;
            let readout = Readout::of_rows(metric, answers, &last)?;
            ln += sum(&readout.read_logits(&last)?);
            let (logits, _) = forward(model, &contrast, true, false)?;
            lc += sum(&readout.read_logits(&last_position(&logits)?)?);
            batches.push(Prepared {
                rows,
                contrast,
                readout,
                z_normal,
            });
        }
        let n = pairs.len() as f64;
        Ok(Evaluator {
            model,
            pairs,
            roles,
            batches,
            metric,
            ld_normal: ln / n,
            ld_contrast: lc / n,
            evaluations: 0,
        })
    }

    /// Checks a circuit before it is evaluated: its shape ([`Circuit::check`]), its heads
    /// against the model, and its position sets against the examples. A `tok:TEXT` set that
    /// matches no position of any prompt is an error (its heads would be live nowhere: F(C)
    /// would silently be that of a circuit without them); one that matches in some prompts
    /// only gives a warning, returned for the result's `warnings`.
    pub fn validate(&self, c: &Circuit) -> Result<Vec<String>, AnalysisError> {
        c.check()?;
        for g in &c.groups {
            check_heads(self.model, &g.heads)
                .map_err(|e| invalid(format!("group {}: {e}", g.name)))?;
        }
        let mut warnings = Vec::new();
        for g in &c.groups {
            let mut missing = 0;
            for (i, p) in self.pairs.iter().enumerate() {
                let pos = g
                    .positions
                    .resolve(p, self.roles.map(|r| &r[i]))
                    .map_err(|e| invalid(format!("group {}: {e}", g.name)))?;
                missing += pos.is_empty() as usize;
            }
            let PositionSet::Token { text, .. } = &g.positions else {
                continue;
            };
            let n = self.pairs.len();
            let shown = g.positions.to_string();
            if missing == n {
                return Err(invalid(format!(
                    "group {}: @{shown}: the token {text:?} occurs in no prompt (none of the \
                     {n} contrast prompts), so the group's heads would be live nowhere",
                    g.name
                )));
            }
            if missing > 0 {
                warnings.push(format!(
                    "group {}: @{shown}: the token {text:?} occurs in {} of the {n} prompts; \
                     in the other {missing} the group's heads are live nowhere",
                    g.name,
                    n - missing
                ));
            }
        }
        Ok(warnings)
    }

    /// Positions of every group in the examples `rows` (the same for every batch of a layout,
    /// resolved per example all the same).
    fn keep_masks(&self, c: &Circuit, b: &Prepared) -> Result<Vec<Option<Tensor>>, AnalysisError> {
        let (nl, nh) = (self.model.n_layers(), self.model.n_heads());
        let t = self.pairs[b.rows[0]].len();
        let bs = b.rows.len();
        let mut keep = vec![vec![0u8; bs * t * nh]; nl];
        for g in &c.groups {
            for (bi, &ex) in b.rows.iter().enumerate() {
                let pos = g
                    .positions
                    .resolve(&self.pairs[ex], self.roles.map(|r| &r[ex]))?;
                for &(l, h) in &g.heads {
                    for &p in &pos {
                        keep[l][(bi * t + p) * nh + h] = 1;
                    }
                }
            }
        }
        keep.into_iter()
            .map(|k| {
                if k.iter().all(|&x| x == 1) {
                    return Ok(None);
                }
                Ok(Some(Tensor::from_vec(
                    k,
                    (bs, t, nh, 1),
                    &self.model.device,
                )?))
            })
            .collect()
    }

    /// F(X): the mean metric of the contrast run with z outside `c` from the normal run.
    pub fn f(&mut self, c: &Circuit) -> Result<f64, AnalysisError> {
        for g in &c.groups {
            check_heads(self.model, &g.heads)?;
        }
        let mut sum = 0.0;
        for b in &self.batches {
            let masks = self.keep_masks(c, b)?;
            let z_normal = &b.z_normal;
            let mut hooks = Hooks::none().with_callback(Box::new(move |name, z: Tensor| {
                let HookName::Layer(l, HookPoint::Z) = name else {
                    return Ok(z);
                };
                let Some(mask) = &masks[l] else {
                    return Ok(z);
                };
                // A last-position-only layer sees only the last query position.
                let tz = z.dim(1)?;
                let mask = mask.narrow(1, mask.dim(1)? - tz, tz)?;
                Ok(mask.broadcast_as(z.dims())?.where_cond(&z, &z_normal[l])?)
            }));
            let out = self.model.run(
                Start::Tokens(&b.contrast),
                RunOptions {
                    stop_after: None,
                    last_position_only: true,
                },
                &mut hooks,
            )?;
            let logits = out.logits.expect("a full run has logits");
            sum += self::sum(&b.readout.read_logits(&last_position(&logits)?)?);
            self.evaluations += 1;
        }
        Ok(sum / self.pairs.len() as f64)
    }

    /// (F(X) − M_n)/(M_c − M_n).
    pub fn faithfulness(&self, f: f64) -> f64 {
        (f - self.ld_normal) / (self.ld_contrast - self.ld_normal)
    }

    /// F(C\K), F(M\K) and their gap.
    pub fn completeness(&mut self, c: &Circuit, k: &[Head]) -> Result<Completeness, AnalysisError> {
        check_heads(self.model, k).map_err(|e| invalid(format!("knock-out set: {e}")))?;
        let a = self.f(&c.without(k))?;
        let b = self.f(&Circuit::complete(self.model).without(k))?;
        Ok(Completeness {
            k: k.to_vec(),
            f_c_minus_k: a,
            f_m_minus_k: b,
            gap: (a - b).abs(),
        })
    }

    /// |F(C\K_v) − F(C\(K_v ∪ {v}))|.
    pub fn minimality(
        &mut self,
        c: &Circuit,
        v: Head,
        k: &[Head],
    ) -> Result<Minimality, AnalysisError> {
        check_heads(self.model, [&v])?;
        check_heads(self.model, k)
            .map_err(|e| invalid(format!("minimality set of {}: {e}", head_label(&v))))?;
        let mut kv = k.to_vec();
        let a = self.f(&c.without(&kv))?;
        if !kv.contains(&v) {
            kv.push(v);
        }
        let b = self.f(&c.without(&kv))?;
        Ok(Minimality {
            head: v,
            k: k.to_vec(),
            value: (a - b).abs(),
        })
    }
}

/// The sum of per-row metric values, in f64.
fn sum(values: &[f32]) -> f64 {
    values.iter().map(|&x| x as f64).sum()
}

/// A knock-out set and its two scores.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Completeness {
    #[serde(rename = "K")]
    pub k: Vec<Head>,
    #[serde(rename = "F_C_minus_K")]
    pub f_c_minus_k: f64,
    #[serde(rename = "F_M_minus_K")]
    pub f_m_minus_k: f64,
    pub gap: f64,
}

/// One head's minimality score.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Minimality {
    pub head: Head,
    #[serde(rename = "K")]
    pub k: Vec<Head>,
    pub value: f64,
}

/// The greedy completeness search's counts (the paper's `circuit_eval_offline.py`: 10
/// rollouts, at most 5 iterations, 5 candidate heads per iteration, `random.seed(202505)`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GreedyOptions {
    pub rollouts: usize,
    pub iterations: usize,
    pub samples: usize,
    pub seed: u64,
}

/// At most this many rollouts (the paper: 10). Every rollout keeps its best set in the
/// outcome and costs up to iterations × samples completeness evaluations (two forward passes
/// each), so 10^4 rollouts are already days of compute on a real model; the bound stops a
/// typo (4·10^9) from growing the outcome and the memo of evaluated sets without end.
pub const MAX_GREEDY_ROLLOUTS: usize = 10_000;
/// At most this many iterations per rollout (the paper: 5). K gains one head per iteration,
/// so more iterations than the heads of any model (16,128 in Llama-3.1-405B) change nothing;
/// the bound only catches typos.
pub const MAX_GREEDY_ITERATIONS: usize = 100_000;
/// At most this many candidate heads per iteration (the paper: 5): they are drawn from the
/// circuit's heads, so more than any model has change nothing (see
/// [`MAX_GREEDY_ITERATIONS`]).
pub const MAX_GREEDY_SAMPLES: usize = 100_000;

impl GreedyOptions {
    /// Checks the counts before any work: 0 rollouts, iterations or samples would make the
    /// search report nothing (an empty K, gap 0) as if it had searched; each has an upper
    /// bound (see the constants) so that no count sizes memory without end. The CLI and the
    /// explorer call it before loading the model; [`greedy_search`] calls it too.
    pub fn validate(&self) -> Result<(), AnalysisError> {
        check_count(
            "greedy rollouts",
            self.rollouts,
            (1, MAX_GREEDY_ROLLOUTS),
            "each rollout is a search of its own; the paper runs 10",
        )?;
        check_count(
            "greedy iterations",
            self.iterations,
            (1, MAX_GREEDY_ITERATIONS),
            "K gains one head per iteration; the paper runs 5",
        )?;
        check_count(
            "greedy samples",
            self.samples,
            (1, MAX_GREEDY_SAMPLES),
            "candidate heads drawn per iteration; the paper draws 5",
        )
    }
}

impl Default for GreedyOptions {
    fn default() -> Self {
        GreedyOptions {
            rollouts: 10,
            iterations: 5,
            samples: 5,
            seed: 202505,
        }
    }
}

/// Where a greedy search is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GreedyProgress {
    /// Rollouts finished.
    pub rollouts_done: usize,
    pub rollouts: usize,
    /// Distinct knock-out sets evaluated so far.
    pub sets_evaluated: usize,
}

/// The search's result: each finished rollout's best K, re-scored.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GreedyOutcome {
    pub options: GreedyOptions,
    pub sets: Vec<Completeness>,
    /// False when cancelled: `sets` holds the rollouts finished before.
    pub complete: bool,
}

/// The paper's greedy search for knock-out sets with a large completeness gap:
/// ```text
/// random.seed(seed); for each rollout: K = [], best = 0
///   for each iteration: V = random.sample(C_heads \ K, samples)
///     for v in V: d = |F(C\(K+[v])) − F(M\(K+[v]))|; if d > best: best, best_K = d, K+[v]
///     stop if nothing improved; K = best_K
/// ```
/// C_heads is the circuit's heads in group order (inferred: the paper flattens its dict of
/// groups). Python's `random` is reproduced bit for bit. `progress` is called after every
/// rollout; `cancel` is polled before every set. A set seen before is not evaluated again.
pub fn greedy_search(
    ev: &mut Evaluator,
    c: &Circuit,
    opts: &GreedyOptions,
    progress: &mut dyn FnMut(&GreedyProgress),
    cancel: &AtomicBool,
) -> Result<GreedyOutcome, AnalysisError> {
    opts.validate()?;
    c.check()?;
    let heads = c.heads();
    let mut rng = Random::new(opts.seed as i128);
    let mut memo: HashMap<Vec<Head>, Completeness> = HashMap::new();
    let mut sets = Vec::new();
    for r in 0..opts.rollouts {
        let (mut k, mut best_k, mut best): (Vec<Head>, Vec<Head>, f64) = (vec![], vec![], 0.0);
        for _ in 0..opts.iterations {
            let rest: Vec<Head> = heads.iter().filter(|h| !k.contains(h)).copied().collect();
            if rest.is_empty() {
                break;
            }
            let candidates = rng.sample(&rest, opts.samples.min(rest.len()));
            let mut improved = false;
            for v in candidates {
                if cancel.load(Ordering::Relaxed) {
                    return Ok(GreedyOutcome {
                        options: *opts,
                        sets,
                        complete: false,
                    });
                }
                let mut kv = k.clone();
                kv.push(v);
                let d = scored(ev, c, &mut memo, &kv)?.gap;
                if d > best {
                    (best, best_k, improved) = (d, kv, true);
                }
            }
            if !improved {
                break;
            }
            k = best_k.clone();
        }
        let mut s = scored(ev, c, &mut memo, &best_k)?;
        s.k = best_k;
        sets.push(s);
        progress(&GreedyProgress {
            rollouts_done: r + 1,
            rollouts: opts.rollouts,
            sets_evaluated: memo.len(),
        });
    }
    Ok(GreedyOutcome {
        options: *opts,
        sets,
        complete: true,
    })
}

/// The completeness of `k`, evaluated once per distinct set.
fn scored(
    ev: &mut Evaluator,
    c: &Circuit,
    memo: &mut HashMap<Vec<Head>, Completeness>,
    k: &[Head],
) -> Result<Completeness, AnalysisError> {
    let mut key = k.to_vec();
    key.sort();
    if let Some(s) = memo.get(&key) {
        return Ok(Completeness {
            k: k.to_vec(),
            ..s.clone()
        });
    }
    let s = ev.completeness(c, k)?;
    memo.insert(key, s.clone());
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knock_out_removes_heads_from_every_group() {
        let c = Circuit {
            groups: vec![
                Group {
                    name: "a".into(),
                    heads: vec![(3, 1), (2, 0)],
                    positions: PositionSet::All,
                },
                Group {
                    name: "b".into(),
                    heads: vec![(2, 0), (1, 2)],
                    positions: PositionSet::Last,
                },
            ],
        };
        assert_eq!(c.heads(), vec![(3, 1), (2, 0), (1, 2)]);
        let k = c.without(&[(2, 0)]);
        assert_eq!(k.groups[0].heads, vec![(3, 1)]);
        assert_eq!(k.groups[1].heads, vec![(1, 2)]);
        assert_eq!(k.groups[1].positions, PositionSet::Last);
        // The same head in groups of different positions: live at the union, allowed.
        assert!(c.check().is_ok());
    }

    #[test]
    fn circuit_shape_is_checked() {
        let g = |name: &str, heads: Vec<Head>, positions| Group {
            name: name.into(),
            heads,
            positions,
        };
        let err = |groups| Circuit { groups }.check().unwrap_err().to_string();
        let e = err(vec![g("a", vec![(3, 1), (3, 1)], PositionSet::Last)]);
        assert_eq!(e, "group a: head 3.1 is listed twice; list each head once");
        let e = err(vec![
            g("a", vec![(3, 1)], PositionSet::Last),
            g("b", vec![(2, 0), (3, 1)], PositionSet::Last),
        ]);
        assert!(
            e.starts_with("head 3.1 is in group a and in group b, both @last"),
            "{e}"
        );
        let e = err(vec![
            g("a", vec![(3, 1)], PositionSet::Last),
            g("a", vec![(2, 0)], PositionSet::All),
        ]);
        assert!(e.starts_with("two groups are named a"), "{e}");
        assert!(err(vec![g("a", vec![], PositionSet::All)]).contains("no heads"));
        assert!(err(vec![]).starts_with("no groups"));
    }

    #[test]
    fn greedy_counts_are_checked() {
        let o = GreedyOptions::default();
        assert!(o.validate().is_ok());
        for (bad, field) in [
            (
                GreedyOptions { rollouts: 0, ..o },
                "greedy rollouts 0: expected 1 to",
            ),
            (GreedyOptions { iterations: 0, ..o }, "greedy iterations 0:"),
            (GreedyOptions { samples: 0, ..o }, "greedy samples 0:"),
            (
                GreedyOptions {
                    rollouts: 4_000_000_000,
                    ..o
                },
                "greedy rollouts 4000000000: expected 1 to 10000 (",
            ),
        ] {
            let e = bad.validate().unwrap_err().to_string();
            assert!(e.starts_with(field), "{e}");
        }
    }
}
