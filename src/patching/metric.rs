//! The metric a run is scored by, read at the last position of each prompt, and the one place
//! every algorithm and the baselines read it (`Readout`), so that the literal and the fast
//! algorithm cannot disagree on it.
//!
//! - `logit-diff` (the paper's): logit[normal answer] − logit[contrast answer];
//! - `logprob`: log p(normal answer);
//! - `prob`: p(normal answer);
//! - `kl`: KL(P_normal ‖ P_run) = Σ_v p_normal(v) (log p_normal(v) − log p_run(v)), P_normal
//!   the unpatched normal run's next-token distribution on the same example.
//!
//! The score stays r = (M_patched − M_contrast) / (M_contrast − M_normal) for every metric.

use candle_core::{DType, Tensor, D};

use super::batch::{logit_diffs, Batch};
use super::PatchError;
use crate::model::Model;

/// What a patched run is scored by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    #[default]
    LogitDiff,
    Logprob,
    Prob,
    Kl,
}

impl Metric {
    pub const ALL: [Metric; 4] = [Metric::LogitDiff, Metric::Logprob, Metric::Prob, Metric::Kl];

    /// The name on the command line and in result files.
    pub fn name(self) -> &'static str {
        match self {
            Metric::LogitDiff => "logit-diff",
            Metric::Logprob => "logprob",
            Metric::Prob => "prob",
            Metric::Kl => "kl",
        }
    }

    /// The name in result fields (`normal_logit_diff`, `normal_kl` ...).
    pub fn key(self) -> &'static str {
        match self {
            Metric::LogitDiff => "logit_diff",
            Metric::Logprob => "logprob",
            Metric::Prob => "prob",
            Metric::Kl => "kl",
        }
    }

    /// Short label for tables and the explorer (`LD`, `logp`, `p`, `KL`).
    pub fn short(self) -> &'static str {
        match self {
            Metric::LogitDiff => "LD",
            Metric::Logprob => "logp",
            Metric::Prob => "p",
            Metric::Kl => "KL",
        }
    }

    pub fn parse(s: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == s)
    }

    /// Below this gap |M_contrast − M_normal| the score r divides by a small number: the model
    /// barely tells the prompts apart by this metric (1 logit for the logit difference; half a
    /// nat of log-probability; 0.05 of probability or of KL in nats).
    pub fn small_gap(self) -> f64 {
        match self {
            Metric::LogitDiff => super::matrix::SMALL_GAP,
            Metric::Logprob => 0.5,
            Metric::Prob | Metric::Kl => 0.05,
        }
    }

    /// Whether baselines this close make r ill-conditioned: the one rule behind every
    /// warning and raw-effect view about it.
    pub fn ill_conditioned(self, normal: f64, contrast: f64) -> bool {
        (contrast - normal).abs() < self.small_gap()
    }

    /// The unit of its values, for messages.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::LogitDiff => "logits",
            Metric::Logprob | Metric::Kl => "nats",
            Metric::Prob => "probability",
        }
    }

    /// Whether reading it needs the full vocabulary (every metric but the logit difference).
    pub fn needs_vocab(self) -> bool {
        self != Metric::LogitDiff
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the metric reads for a set of rows: each row's answers [R, 2] (normal, contrast) and,
/// for KL, the normal run's log-probabilities [R, V], repeated as the rows are.
#[derive(Debug, Clone)]
pub struct Readout {
    pub metric: Metric,
    pub answers: Tensor,
    pub reference: Option<Tensor>,
}

impl Readout {
    /// The readout of one batch's prompts; `reference` is the normal run's log-probabilities
    /// [B, V] (needed for KL only).
    pub fn of_batch(metric: Metric, batch: &Batch, reference: Option<&Tensor>) -> Self {
        Readout {
            metric,
            answers: batch.answers.clone(),
            reference: reference.cloned(),
        }
    }

    /// The same rows repeated `g` times (the senders of a chunk, prompts innermost).
    pub fn repeated(&self, g: usize) -> Result<Readout, PatchError> {
        Ok(Readout {
            metric: self.metric,
            answers: repeat_rows(&self.answers, g)?,
            reference: self
                .reference
                .as_ref()
                .map(|r| repeat_rows(r, g))
                .transpose()?,
        })
    }

    /// Per-row metric from final residual rows `x` [R, D]: the logit difference needs only
    /// the two answer logits, the others the full vocabulary.
    pub fn read(&self, model: &Model, x: &Tensor) -> Result<Vec<f32>, PatchError> {
        if self.metric == Metric::LogitDiff {
            return logit_diffs(&model.answer_logits(x, &self.answers)?);
        }
        self.read_logits(&model.unembed(x)?)
    }

    /// Per-row metric from last-position logits [R, V].
    pub fn read_logits(&self, logits: &Tensor) -> Result<Vec<f32>, PatchError> {
        let logits = logits.to_dtype(DType::F32)?.contiguous()?;
        let answers = self.answers.contiguous()?;
        let values = match self.metric {
            Metric::LogitDiff => return logit_diffs(&logits.gather(&answers, 1)?),
            Metric::Logprob | Metric::Prob => {
                let lp =
                    log_softmax(&logits)?.gather(&answers.narrow(1, 0, 1)?.contiguous()?, 1)?;
                if self.metric == Metric::Prob {
                    lp.exp()?
                } else {
                    lp
                }
            }
            Metric::Kl => {
                let reference = self.reference.as_ref().ok_or_else(|| {
                    PatchError::Invalid("internal: KL without the normal run's distribution".into())
                })?;
                let lp = log_softmax(&logits)?;
                let r = reference.to_dtype(DType::F32)?;
                (r.exp()? * (r - lp)?)?.sum_keepdim(1)?
            }
        };
        Ok(values.flatten_all()?.to_vec1()?)
    }
}

impl Readout {
    /// The readout of rows whose unpatched normal run gave `normal_last` [R, V] (its
    /// last-position logits): what the circuit analyses score by, so that they read every
    /// metric exactly as path patching does.
    pub fn of_rows(
        metric: Metric,
        answers: Tensor,
        normal_last: &Tensor,
    ) -> Result<Readout, PatchError> {
        let reference = match metric {
            Metric::Kl => Some(log_softmax(&normal_last.to_dtype(DType::F32)?)?),
            _ => None,
        };
        Ok(Readout {
            metric,
            answers,
            reference,
        })
    }

    /// Per-row metric of a teacher-forced run: `logits` [R, k, V] at the k positions that
    /// predict the normal answer's tokens `targets` [R, k] (the prompt's last position, then
    /// each appended answer token but the last). `logprob` is Σ_j log p(target_j | prompt,
    /// target_<j), `prob` its exponential, so an answer of several tokens is scored in full;
    /// the logit difference and KL read the first of the k positions (the answer position,
    /// where the normal and contrast answers compete). With k = 1 this is [`Readout::read_logits`].
    pub fn read_forced(&self, logits: &Tensor, targets: &Tensor) -> Result<Vec<f32>, PatchError> {
        let first = logits.narrow(1, 0, 1)?.squeeze(1)?;
        if !matches!(self.metric, Metric::Logprob | Metric::Prob) || logits.dim(1)? == 1 {
            return self.read_logits(&first);
        }
        let lp = log_softmax(&logits.to_dtype(DType::F32)?.contiguous()?)?;
        let picked = lp.gather(&targets.unsqueeze(2)?.contiguous()?, 2)?; // [R, k, 1]
        let sum = picked.sum(1)?.flatten_all()?;
        let sum = if self.metric == Metric::Prob {
            sum.exp()?
        } else {
            sum
        };
        Ok(sum.to_vec1()?)
    }
}

/// log_softmax over the vocabulary, computed in f32 with the maximum subtracted.
pub fn log_softmax(logits: &Tensor) -> Result<Tensor, PatchError> {
    let max = logits.max_keepdim(D::Minus1)?;
    let shifted = logits.broadcast_sub(&max)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    Ok(shifted.broadcast_sub(&lse)?)
}

/// Repeats a per-prompt tensor [B, ...] `g` times: [G*B, ...], prompts innermost.
pub fn repeat_rows(x: &Tensor, g: usize) -> Result<Tensor, PatchError> {
    let mut shape = x.dims().to_vec();
    let b = shape[0];
    let mut expanded = vec![g];
    expanded.extend_from_slice(&shape);
    let y = x.unsqueeze(0)?.broadcast_as(expanded)?.contiguous()?;
    shape[0] = g * b;
    Ok(y.reshape(shape)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn every_metric_from_logits() {
        let logits = Tensor::new(&[[1.0f32, 2.0, 0.5], [0.0, 0.0, 3.0]], &Device::Cpu).unwrap();
        let answers = Tensor::new(&[[1u32, 0], [2, 1]], &Device::Cpu).unwrap();
        let lp = |row: &[f64], i: usize| {
            let z: f64 = row.iter().map(|x| x.exp()).sum();
            row[i] - z.ln()
        };
        let rows = [[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]];
        let read = |metric, reference: Option<Tensor>| {
            Readout {
                metric,
                answers: answers.clone(),
                reference,
            }
            .read_logits(&logits)
            .unwrap()
        };
        let ld = read(Metric::LogitDiff, None);
        assert_eq!(ld, vec![1.0, 3.0]);
        let logp = read(Metric::Logprob, None);
        assert!((logp[0] as f64 - lp(&rows[0], 1)).abs() < 1e-6);
        assert!((logp[1] as f64 - lp(&rows[1], 2)).abs() < 1e-6);
        let p = read(Metric::Prob, None);
        assert!((p[1] as f64 - lp(&rows[1], 2).exp()).abs() < 1e-6);
        // KL of a distribution to itself is 0; to another one, positive.
        let own = log_softmax(&logits).unwrap();
        let kl = read(Metric::Kl, Some(own.clone()));
        assert!(kl.iter().all(|x| x.abs() < 1e-6), "{kl:?}");
        let swapped = Tensor::cat(
            &[own.narrow(0, 1, 1).unwrap(), own.narrow(0, 0, 1).unwrap()],
            0,
        )
        .unwrap();
        let kl = read(Metric::Kl, Some(swapped));
        assert!(kl.iter().all(|&x| x > 0.1), "{kl:?}");
    }

    #[test]
    fn teacher_forced_logprob_sums_every_answer_token() {
        let dev = &Device::Cpu;
        let rows = [
            [[1.0f32, 2.0, 0.5], [0.0, 1.0, 0.0]],
            [[0.0, 0.0, 3.0], [2.0, 0.0, 0.0]],
        ];
        let logits = Tensor::new(&rows, dev).unwrap(); // [2 rows, 2 positions, 3]
        let targets = Tensor::new(&[[1u32, 0], [2, 0]], dev).unwrap();
        let lp = |row: &[f32; 3], i: usize| {
            let z: f64 = row.iter().map(|&x| (x as f64).exp()).sum();
            row[i] as f64 - z.ln()
        };
        let readout = |metric| Readout {
            metric,
            answers: Tensor::new(&[[1u32, 0], [2, 1]], dev).unwrap(),
            reference: None,
        };
        let got = readout(Metric::Logprob)
            .read_forced(&logits, &targets)
            .unwrap();
        for (r, t) in [(0, [1, 0]), (1, [2, 0])] {
            let want = lp(&rows[r][0], t[0]) + lp(&rows[r][1], t[1]);
            assert!((got[r] as f64 - want).abs() < 1e-6, "{got:?}");
        }
        let p = readout(Metric::Prob)
            .read_forced(&logits, &targets)
            .unwrap();
        assert!((p[0] - got[0].exp()).abs() < 1e-6);
        // The logit difference reads the answer position (the first) only.
        let ld = readout(Metric::LogitDiff)
            .read_forced(&logits, &targets)
            .unwrap();
        assert_eq!(ld, vec![1.0, 3.0]);
        // One position: the answer token, as read_logits reads it.
        let one = logits.narrow(1, 0, 1).unwrap();
        let first = readout(Metric::Logprob)
            .read_forced(&one, &targets.narrow(1, 0, 1).unwrap())
            .unwrap();
        assert!((first[1] as f64 - lp(&rows[1][0], 2)).abs() < 1e-6);
    }

    #[test]
    fn names_round_trip() {
        for m in Metric::ALL {
            assert_eq!(Metric::parse(m.name()), Some(m));
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.name()));
        }
    }
}
