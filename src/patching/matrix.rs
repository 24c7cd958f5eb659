//! The layer × head result of a sweep, its normalised scores and the paper's head lists.

use super::metric::Metric;
use super::receiver::Receiver;

/// Below this gap |LD_contrast - LD_normal| (in logits) the score r divides by a small number
/// and is ill-conditioned: the model barely tells the two prompts apart.
pub const SMALL_GAP: f64 = 1.0;

/// Whether baselines this close make r ill-conditioned (|LD_contrast - LD_normal| < [`SMALL_GAP`]):
/// the one check behind every warning about it.
pub fn ill_conditioned(ld_normal: f64, ld_contrast: f64) -> bool {
    Metric::LogitDiff.ill_conditioned(ld_normal, ld_contrast)
}

/// Patched logit differences per sender, with the baselines they are normalised by.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PatchMatrix {
    pub n_layers: usize,
    pub n_heads: usize,
    /// Mean patched logit difference per [layer][head]; 0 in rows that were not computed,
    /// except rows of senders in the sweep's range that cannot reach the receiver, which
    /// hold LD_contrast ([`PatchMatrix::fill_unreached`]).
    pub patched: Vec<Vec<f64>>,
    /// Which layers' rows were computed.
    pub computed: Vec<bool>,
    /// The baselines: the metric's means on the unpatched normal and contrast runs (named
    /// after the default metric, the logit difference).
    pub ld_normal: f64,
    pub ld_contrast: f64,
    pub n_examples: usize,
    /// What the values are of.
    #[serde(default)]
    pub metric: Metric,
    /// The baselines per example (in the data's order).
    #[serde(skip)]
    pub normal_each: Vec<f32>,
    #[serde(skip)]
    pub contrast_each: Vec<f32>,
    /// Per computed layer, the patched metric per [head][example] (the means are `patched`).
    #[serde(skip)]
    pub each: Vec<Option<Vec<Vec<f32>>>>,
    /// The MLP senders' column, when the sweep patched MLPs (`Senders::mlp`); `None` for a
    /// heads-only sweep, so its matrix is what it always was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlp: Option<MlpColumn>,
}

/// Patched values of each sender layer's MLP: one more column beside the heads.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct MlpColumn {
    /// Mean patched metric per layer; 0 where not computed, except layers in the sweep's range
    /// whose MLP cannot reach the receiver, which hold LD_contrast (as `fill_unreached`).
    pub patched: Vec<f64>,
    /// Which layers' MLPs were computed.
    pub computed: Vec<bool>,
    /// Per computed layer, the patched metric per example.
    #[serde(skip)]
    pub each: Vec<Option<Vec<f32>>>,
}

/// One head and its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadScore {
    pub layer: usize,
    pub head: usize,
    pub r: f64,
}

impl PatchMatrix {
    pub fn new(
        n_layers: usize,
        n_heads: usize,
        ld_normal: f64,
        ld_contrast: f64,
        n_examples: usize,
    ) -> Self {
        PatchMatrix {
            n_layers,
            n_heads,
            patched: vec![vec![0.0; n_heads]; n_layers],
            computed: vec![false; n_layers],
            ld_normal,
            ld_contrast,
            n_examples,
            metric: Metric::default(),
            normal_each: Vec::new(),
            contrast_each: Vec::new(),
            each: vec![None; n_layers],
            mlp: None,
        }
    }

    /// Adds the MLP column (nothing computed yet), with its unreachable layers from
    /// `begin_layer` on filled with LD_contrast ([`Receiver::mlp_reachable_from`]: an MLP
    /// writes after resid_mid, so a `resid_mid:L` receiver's layer L is one of them).
    pub fn add_mlp(&mut self, receiver: &Receiver, begin_layer: usize) {
        let mut c = MlpColumn {
            patched: vec![0.0; self.n_layers],
            computed: vec![false; self.n_layers],
            each: vec![None; self.n_layers],
        };
        let top = receiver.max_layer().min(self.n_layers.saturating_sub(1));
        for l in begin_layer..=top {
            if !receiver.mlp_reachable_from(l) {
                c.patched[l] = self.ld_contrast;
            }
        }
        self.mlp = Some(c);
    }

    /// Layer `layer`'s MLP: its mean and per-example values. A matrix without the MLP column
    /// gets one first (nothing else computed in it).
    pub fn set_mlp(&mut self, layer: usize, mean: f64, each: Vec<f32>) {
        let n = self.n_layers;
        let c = self.mlp.get_or_insert_with(|| MlpColumn {
            patched: vec![0.0; n],
            computed: vec![false; n],
            each: vec![None; n],
        });
        c.patched[layer] = mean;
        c.computed[layer] = true;
        c.each[layer] = Some(each);
    }

    /// r of each layer's MLP, masked as [`PatchMatrix::relative`] masks heads (with the MLP's
    /// reachability); `None` without the MLP column, `None` cells not computed.
    pub fn mlp_relative(
        &self,
        receiver: &Receiver,
        begin_layer: usize,
    ) -> Option<Vec<Option<f64>>> {
        let c = self.mlp.as_ref()?;
        let gap = self.gap();
        Some(
            (0..self.n_layers)
                .map(|l| {
                    let masked = l < begin_layer || !receiver.mlp_reachable_from(l);
                    c.computed[l].then(|| match masked {
                        true => 0.0,
                        false => (c.patched[l] - self.ld_contrast) / gap,
                    })
                })
                .collect(),
        )
    }

    /// Fills the rows of senders from `begin_layer` to the receiver's last layer that cannot
    /// reach it ([`Receiver::reachable_from`]: a `resid_pre:L` receiver's layer L, a head
    /// receiver's own layer) with LD_contrast: patching a sender the receiver cannot hear
    /// reproduces the contrast run exactly, so the value is known without running anything.
    /// They stay marked not computed (results record them so), as the sweep skips them.
    pub fn fill_unreached(&mut self, receiver: &Receiver, begin_layer: usize) {
        let top = receiver.max_layer().min(self.n_layers.saturating_sub(1));
        for l in begin_layer..=top {
            if !receiver.reachable_from(l) {
                self.patched[l] = vec![self.ld_contrast; self.n_heads];
            }
        }
    }

    /// The per-example values [head][example] of a computed row.
    pub fn set_row_each(&mut self, layer: usize, each: Vec<Vec<f32>>) {
        assert_eq!(each.len(), self.n_heads);
        self.each[layer] = Some(each);
    }

    pub fn set_row(&mut self, layer: usize, row: Vec<f64>) {
        assert_eq!(row.len(), self.n_heads);
        self.patched[layer] = row;
        self.computed[layer] = true;
    }

    /// LD_contrast - LD_normal, the denominator of r.
    pub fn gap(&self) -> f64 {
        self.ld_contrast - self.ld_normal
    }

    /// Whether r is ill-conditioned because the baselines are close.
    pub fn ill_conditioned(&self) -> bool {
        self.metric
            .ill_conditioned(self.ld_normal, self.ld_contrast)
    }

    /// r = (patched - LD_c) / (LD_c - LD_n), masked as the paper does: 0 below begin_layer, in
    /// layers whose senders cannot reach the receiver ([`Receiver::reachable_from`]: at and
    /// above a head receiver's or a resid_pre receiver's last layer, above a resid_mid/post
    /// receiver's), and in rows that were not computed.
    pub fn relative(&self, receiver: &Receiver, begin_layer: usize) -> Vec<Vec<f64>> {
        let gap = self.gap();
        (0..self.n_layers)
            .map(|l| {
                let masked = !self.computed[l] || l < begin_layer || !receiver.reachable_from(l);
                (0..self.n_heads)
                    .map(|h| {
                        if masked {
                            0.0
                        } else {
                            (self.patched[l][h] - self.ld_contrast) / gap
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// The paper's lists: |r| > `hi`, then `lo` < |r| <= `hi`, each layer-descending then
    /// head-descending.
    pub fn head_lists(relative: &[Vec<f64>], hi: f64, lo: f64) -> (Vec<HeadScore>, Vec<HeadScore>) {
        let mut strong = Vec::new();
        let mut weak = Vec::new();
        for (l, row) in relative.iter().enumerate().rev() {
            for (h, &r) in row.iter().enumerate().rev() {
                let s = HeadScore {
                    layer: l,
                    head: h,
                    r,
                };
                if r.abs() > hi {
                    strong.push(s);
                } else if r.abs() > lo {
                    weak.push(s);
                }
            }
        }
        (strong, weak)
    }
}

/// `(41,4) +17.0%` style list.
pub fn format_heads(list: &[HeadScore]) -> String {
    if list.is_empty() {
        return "(none)".into();
    }
    list.iter()
        .map(|s| format!("({},{}) {:+.1}%", s.layer, s.head, 100.0 * s.r))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HeadInput;

    #[test]
    fn relative_masks_like_the_paper() {
        let mut m = PatchMatrix::new(4, 2, 2.0, -1.0, 8);
        for l in 0..4 {
            m.set_row(l, vec![-1.0 + 0.3 * l as f64, -1.3]);
        }
        let head = Receiver::head(2, 0, HeadInput::V);
        let r = m.relative(&head, 1);
        assert_eq!(r[0], vec![0.0, 0.0]);
        assert!((r[1][0] - (-0.1)).abs() < 1e-12 && (r[1][1] - 0.1).abs() < 1e-12);
        assert_eq!(r[2], vec![0.0, 0.0]);
        assert_eq!(r[3], vec![0.0, 0.0]);
        let resid = Receiver::resid_post(2);
        let r = m.relative(&resid, 0);
        assert!(r[2][0] != 0.0 && r[3] == vec![0.0, 0.0]);
    }

    #[test]
    fn head_lists_are_layer_descending() {
        let rel = vec![vec![0.06, 0.03], vec![-0.01, -0.2]];
        let (a, b) = PatchMatrix::head_lists(&rel, 0.05, 0.02);
        assert_eq!(
            a.iter().map(|s| (s.layer, s.head)).collect::<Vec<_>>(),
            vec![(1, 1), (0, 0)]
        );
        assert_eq!(
            b.iter().map(|s| (s.layer, s.head)).collect::<Vec<_>>(),
            vec![(0, 1)]
        );
        assert_eq!(format_heads(&a), "(1,1) -20.0%, (0,0) +6.0%");
    }
}
