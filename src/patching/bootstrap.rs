//! Uncertainty of r from the examples: a seeded, paired bootstrap over examples. Each resample
//! draws n examples with replacement and recomputes r = (M_p − M_c)/(M_c − M_n) from the same
//! examples' patched values and baselines; the interval is the resamples' 2.5th and 97.5th
//! percentiles. Twelve examples give wide intervals, and that is the point: a cell whose
//! interval holds 0 is not told from noise.

/// How the intervals were made (recorded in results).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Bootstrap {
    pub samples: usize,
    pub seed: u64,
    /// The central coverage of the interval (0.95).
    pub level: f64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Bootstrap {
            samples: 1000,
            seed: 0,
            level: 0.95,
        }
    }
}

/// splitmix64: small, seeded, the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

impl Bootstrap {
    /// The resamples' example counts: `counts[s][e]` is how often example e is drawn in
    /// resample s (so every cell of a run uses the same resamples).
    fn counts(&self, n: usize) -> Vec<Vec<u32>> {
        let mut rng = Rng(self.seed);
        (0..self.samples)
            .map(|_| {
                let mut c = vec![0u32; n];
                for _ in 0..n {
                    c[rng.below(n)] += 1;
                }
                c
            })
            .collect()
    }

    /// The interval of r for every cell: `patched[l]` is `None` for rows not computed (then
    /// `None`), else [head][example]; `normal` and `contrast` are the baselines per example.
    /// A resample whose denominator is 0 gives no r and is left out.
    pub fn intervals(
        &self,
        patched: &[Option<Vec<Vec<f32>>>],
        normal: &[f32],
        contrast: &[f32],
    ) -> Vec<Option<Vec<(f64, f64)>>> {
        let n = normal.len();
        if n == 0 || self.samples == 0 {
            return vec![None; patched.len()];
        }
        let counts = self.counts(n);
        let weighted = |c: &[u32], v: &[f32]| -> f64 {
            c.iter()
                .zip(v)
                .map(|(&k, &x)| k as f64 * x as f64)
                .sum::<f64>()
                / n as f64
        };
        let base: Vec<(f64, f64)> = counts
            .iter()
            .map(|c| (weighted(c, normal), weighted(c, contrast)))
            .collect();
        patched
            .iter()
            .map(|row| {
                row.as_ref().map(|heads| {
                    heads
                        .iter()
                        .map(|v| {
                            let rs: Vec<f64> = counts
                                .iter()
                                .zip(&base)
                                .map(|(c, &(mn, mc))| (weighted(c, v) - mc) / (mc - mn))
                                .filter(|r| r.is_finite())
                                .collect();
                            self.percentiles(rs)
                        })
                        .collect()
                })
            })
            .collect()
    }

    /// The central `level` interval of `rs` (NaN when there is none).
    fn percentiles(&self, mut rs: Vec<f64>) -> (f64, f64) {
        if rs.is_empty() {
            return (f64::NAN, f64::NAN);
        }
        rs.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let i = (q * (rs.len() - 1) as f64).round() as usize;
            rs[i.min(rs.len() - 1)]
        };
        let tail = (1.0 - self.level) / 2.0;
        (at(tail), at(1.0 - tail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_examples_give_a_point_and_noise_gives_an_interval_around_the_mean() {
        let b = Bootstrap::default();
        let normal = vec![0.0f32; 12];
        let contrast = vec![2.0f32; 12];
        // Every example moves the contrast run halfway: r = -0.5 exactly, in every resample.
        let same = vec![Some(vec![vec![1.0f32; 12]])];
        let iv = b.intervals(&same, &normal, &contrast);
        assert_eq!(iv[0].as_ref().unwrap()[0], (-0.5, -0.5));
        // Half the examples move it fully, half not at all: r = -0.5 on average, the
        // interval wide and around it, and the same with the same seed.
        let noisy: Vec<f32> = (0..12)
            .map(|i| if i % 2 == 0 { 0.0 } else { 2.0 })
            .collect();
        let rows = vec![Some(vec![noisy]), None];
        let iv = b.intervals(&rows, &normal, &contrast);
        let (lo, hi) = iv[0].as_ref().unwrap()[0];
        assert!(
            lo < -0.6 && hi > -0.4 && lo >= -1.0 && hi <= 0.0,
            "{lo} {hi}"
        );
        assert!(iv[1].is_none());
        assert_eq!(b.intervals(&rows, &normal, &contrast), iv);
    }
}
