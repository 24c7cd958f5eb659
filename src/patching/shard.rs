//! Shards of a sweep: which sender layers shard K of N computes.
//!
//! A sweep is embarrassingly parallel over sender layers, so a cluster array job gives each
//! task a shard and a merge puts the rows back together. The split must be the same in every
//! task without them talking to each other (so it is a pure function of the spec and the
//! model's depth), and balanced by *cost*, not by count: with the fast algorithm a sender layer
//! far from the receiver runs a long MLP chain, one next to it almost none, so N equal counts
//! of layers can differ several-fold in time.

use super::PatchSpec;

/// Shard `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

/// What is wrong with a shard given as text or read from the environment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("{given:?}: expected K/N with 0 <= K < N (shard K of N, counted from 0), or `slurm`")]
    Syntax { given: String },
    #[error("{index}/{count}: K must be below N (shards are counted from 0)")]
    Range { index: usize, count: usize },
    #[error("{var} is {value:?}: {why}")]
    Env {
        var: &'static str,
        value: String,
        why: &'static str,
    },
    #[error("{var} is not set: not inside a Slurm array job (submit with sbatch --array)")]
    NoEnv { var: &'static str },
}

impl Shard {
    pub fn new(index: usize, count: usize) -> Result<Self, ShardError> {
        if count == 0 || index >= count {
            return Err(ShardError::Range { index, count });
        }
        Ok(Shard { index, count })
    }

    /// `K/N`, or `slurm` for the array task this process is ([`Shard::from_slurm`]).
    pub fn parse(s: &str, env: impl Fn(&str) -> Option<String>) -> Result<Self, ShardError> {
        if s.trim() == "slurm" {
            return Shard::from_slurm(env);
        }
        let syntax = || ShardError::Syntax { given: s.into() };
        let (k, n) = s.split_once('/').ok_or_else(syntax)?;
        let k: usize = k.trim().parse().map_err(|_| syntax())?;
        let n: usize = n.trim().parse().map_err(|_| syntax())?;
        Shard::new(k, n)
    }

    /// The shard of a Slurm array task: `SLURM_ARRAY_TASK_ID` less `SLURM_ARRAY_TASK_MIN`
    /// (arrays may start at 1) of `SLURM_ARRAY_TASK_COUNT`. An array with gaps or steps
    /// (`--array=0,4,9`, `0-9:2`) has ids that are not 0..N; that is refused, since a shard
    /// would then be computed twice or never.
    pub fn from_slurm(env: impl Fn(&str) -> Option<String>) -> Result<Self, ShardError> {
        let num = |var: &'static str| -> Result<usize, ShardError> {
            let value = env(var).ok_or(ShardError::NoEnv { var })?;
            value.trim().parse().map_err(|_| ShardError::Env {
                var,
                value,
                why: "expected a whole number",
            })
        };
        let (id, count) = (num("SLURM_ARRAY_TASK_ID")?, num("SLURM_ARRAY_TASK_COUNT")?);
        let min = match env("SLURM_ARRAY_TASK_MIN") {
            Some(_) => num("SLURM_ARRAY_TASK_MIN")?,
            None => 0,
        };
        if let Some(step) = env("SLURM_ARRAY_TASK_STEP") {
            if step.trim() != "1" {
                return Err(ShardError::Env {
                    var: "SLURM_ARRAY_TASK_STEP",
                    value: step,
                    why: "array ids must be consecutive (--array=0-N-1 without a step)",
                });
            }
        }
        let max = env("SLURM_ARRAY_TASK_MAX").and_then(|v| v.trim().parse::<usize>().ok());
        if max.is_some_and(|max| max + 1 - min != count) {
            return Err(ShardError::Env {
                var: "SLURM_ARRAY_TASK_COUNT",
                value: count.to_string(),
                why: "the array ids are not consecutive (--array=0-N-1 without gaps)",
            });
        }
        if id < min {
            return Err(ShardError::Env {
                var: "SLURM_ARRAY_TASK_ID",
                value: id.to_string(),
                why: "below SLURM_ARRAY_TASK_MIN",
            });
        }
        Shard::new(id - min, count)
    }

    pub fn label(&self) -> String {
        format!("{}/{}", self.index, self.count)
    }

    /// This shard's sender layers, in the order the sweep computes them (from the receiver
    /// down). See [`split`].
    pub fn layers(&self, spec: &PatchSpec, n_layers: usize) -> Vec<usize> {
        split(spec, n_layers, self.count).swap_remove(self.index)
    }
}

/// The sender layers of `spec` dealt to `count` shards by cost ([`deal`]). Each shard lists
/// its layers from the receiver down, as an unsharded sweep computes them. Shards beyond the
/// number of layers are empty.
pub fn split(spec: &PatchSpec, n_layers: usize, count: usize) -> Vec<Vec<usize>> {
    let layers = spec.sender_layers();
    let costs: Vec<f64> = layers
        .iter()
        .map(|&l| spec.layer_cost(l, n_layers))
        .collect();
    deal(&costs, count)
        .into_iter()
        .map(|items| {
            let mut ls: Vec<usize> = items.into_iter().map(|i| layers[i]).collect();
            ls.sort_unstable_by(|a, b| b.cmp(a));
            ls
        })
        .collect()
}

/// Items (by index into `costs`) dealt to `count` shards: the costliest first (ties: the
/// higher index), each to the shard with the least cost so far (ties: the lower shard), which
/// keeps the largest shard within one item's cost of the mean. Each shard's items ascend.
pub fn deal(costs: &[f64], count: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..costs.len()).collect();
    order.sort_by(|&a, &b| costs[b].total_cmp(&costs[a]).then(b.cmp(&a)));
    let mut shards = vec![(0.0f64, Vec::new()); count.max(1)];
    for i in order {
        let least = (0..shards.len())
            .min_by(|&a, &b| shards[a].0.total_cmp(&shards[b].0).then(a.cmp(&b)))
            .expect("at least one shard");
        shards[least].0 += costs[i];
        shards[least].1.push(i);
    }
    shards
        .into_iter()
        .map(|(_, mut items)| {
            items.sort_unstable();
            items
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patching::{Algorithm, Metric, Receiver};

    fn spec(r: &str, algorithm: Algorithm) -> PatchSpec {
        PatchSpec {
            receiver: Receiver::parse_one(r).unwrap(),
            begin_layer: 0,
            batch_size: 4,
            algorithm,
            chunk_rows: 0,
            metric: Metric::LogitDiff,
            senders: Default::default(),
        }
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let v: Vec<(String, String)> = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        move |k| v.iter().find(|(a, _)| a == k).map(|(_, b)| b.clone())
    }

    #[test]
    fn shards_cover_every_layer_once_and_balance_cost() {
        let s = spec("resid_post:41", Algorithm::Fast);
        for count in [1, 2, 3, 4, 7, 42, 50] {
            let parts = split(&s, 42, count);
            assert_eq!(parts.len(), count);
            let mut all: Vec<usize> = parts.concat();
            all.sort_unstable();
            assert_eq!(all, (0..42).collect::<Vec<_>>(), "count {count}");
            let costs: Vec<f64> = parts
                .iter()
                .map(|p| p.iter().map(|&l| s.layer_cost(l, 42)).sum())
                .collect();
            let mean = costs.iter().sum::<f64>() / count as f64;
            let biggest = (0..42).map(|l| s.layer_cost(l, 42)).fold(0.0, f64::max);
            let max = costs.iter().cloned().fold(0.0, f64::max);
            assert!(max <= mean + biggest, "count {count}: {costs:?}");
        }
        // By cost, not by count: the fast chain makes low layers dear, so the two halves of
        // the layers by count differ far more in cost than the two shards do.
        let two = split(&s, 42, 2);
        let cost = |p: &[usize]| p.iter().map(|&l| s.layer_cost(l, 42)).sum::<f64>();
        let (low, high): (Vec<usize>, Vec<usize>) = (0..42).partition(|&l| l < 21);
        let by_count = (cost(&low) - cost(&high)).abs();
        let by_cost = (cost(&two[0]) - cost(&two[1])).abs();
        assert!(
            by_cost * 10.0 < by_count,
            "{two:?}: {by_cost} vs {by_count}"
        );
    }

    #[test]
    fn the_split_is_the_same_in_every_process_and_ordered_like_a_sweep() {
        let s = spec("3.1.q", Algorithm::Reference);
        assert_eq!(split(&s, 6, 2), split(&s, 6, 2));
        for p in split(&spec("resid_post:5", Algorithm::Fast), 6, 3) {
            assert!(p.windows(2).all(|w| w[0] > w[1]), "{p:?}");
        }
    }

    #[test]
    fn parses_k_of_n_and_slurm() {
        let none = env(&[]);
        assert_eq!(
            Shard::parse("1/4", &none).unwrap(),
            Shard::new(1, 4).unwrap()
        );
        for bad in ["4/4", "1", "a/2", "1/0", "-1/2", ""] {
            assert!(Shard::parse(bad, &none).is_err(), "{bad}");
        }
        let e = Shard::parse("slurm", &none).unwrap_err().to_string();
        assert!(e.contains("SLURM_ARRAY_TASK_ID is not set"), "{e}");
        let one_based = env(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_MAX", "3"),
        ]);
        assert_eq!(
            Shard::parse("slurm", one_based).unwrap(),
            Shard::new(2, 3).unwrap()
        );
        let gaps = env(&[
            ("SLURM_ARRAY_TASK_ID", "4"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_MAX", "9"),
        ]);
        let e = Shard::parse("slurm", gaps).unwrap_err().to_string();
        assert!(e.contains("not consecutive"), "{e}");
        let stepped = env(&[
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
        ]);
        assert!(Shard::parse("slurm", stepped).is_err());
    }
}
