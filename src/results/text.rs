//! Plain-text views of a result: the heatmap (layers as rows, heads as columns, r in %) and the
//! paper's head lists.

use std::fmt::Write;

use super::RunRecord;
use crate::patching::matrix::{format_heads, PatchMatrix, SMALL_GAP};

/// Thresholds of the paper's two head lists.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub hi: f64,
    pub lo: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { hi: 0.05, lo: 0.02 }
    }
}

/// A one-paragraph description of the run.
pub fn summary(rec: &RunRecord) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "receiver    {}", rec.receiver_label);
    if let Some(m) = &rec.model {
        let _ = writeln!(
            s,
            "model       {} ({}, {} layers × {} heads, {} on {})",
            m.label, m.family, m.n_layers, m.n_heads, m.dtype, m.device
        );
    }
    if let Some(d) = &rec.data {
        let _ = writeln!(
            s,
            "data        {} ({}, {} shots, offset {:+}, {} examples, answer token: {})",
            d.spec.file.display(),
            d.spec.task,
            d.spec.shots,
            d.spec.offset,
            d.n_examples,
            match d.spec.answer_token {
                crate::data::AnswerTokenRule::Last => "last",
                crate::data::AnswerTokenRule::First => "first",
            }
        );
    }
    if let Some(src) = &rec.source {
        let _ = writeln!(s, "source      {src}");
    }
    if let Some(note) = &rec.note {
        let _ = writeln!(s, "note        {note}");
    }
    let alg = rec.algorithm.map_or("?", |a| a.name());
    let _ = writeln!(
        s,
        "senders     layers {}..={} ({} rows computed{}), algorithm {alg}",
        rec.begin_layer,
        rec.receiver.max_layer(),
        rec.rows_computed.len(),
        if rec.complete {
            ""
        } else {
            ", PARTIAL: cancelled"
        }
    );
    if let (Some(n), Some(c)) = (rec.normal_logit_diff, rec.contrast_logit_diff) {
        let _ = writeln!(
            s,
            "baselines   LD_normal {n:+.4}   LD_contrast {c:+.4}   gap {:+.4}",
            c - n
        );
        if (c - n).abs() < SMALL_GAP {
            let _ = writeln!(
                s,
                "warning     |LD_contrast - LD_normal| = {:.3} < {SMALL_GAP}: the model barely tells the prompts apart, so r = (patched - LD_c)/(LD_c - LD_n) is ill-conditioned; read the raw patched logit differences instead",
                (c - n).abs()
            );
        }
    }
    if let Some(t) = rec.timing {
        let _ = writeln!(
            s,
            "timing      load {:.2} s, caches {:.3} s, sweep {:.3} s",
            t.load_seconds, t.cache_seconds, t.sweep_seconds
        );
    }
    s
}

/// The heatmap as text: one row per sender layer (top: the last layer), r in percent.
pub fn heatmap(rec: &RunRecord) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "r = (patched - LD_c)/(LD_c - LD_n) in %; rows: sender layer, columns: head; '·' = not computed"
    );
    let _ = write!(s, "layer");
    for h in 0..rec.n_heads {
        let _ = write!(s, "{h:>6}");
    }
    s.push('\n');
    for l in (0..rec.n_layers).rev() {
        let _ = write!(s, "{l:>5}");
        for h in 0..rec.n_heads {
            match rec.r(l, h) {
                Some(r) => {
                    let _ = write!(s, "{:>6.1}", 100.0 * r);
                }
                None => {
                    let _ = write!(s, "{:>6}", "·");
                }
            }
        }
        s.push('\n');
    }
    s
}

/// The paper's head lists.
pub fn head_lists(rec: &RunRecord, t: Thresholds) -> String {
    let (strong, weak) = PatchMatrix::head_lists(&rec.relative_filled(), t.hi, t.lo);
    format!(
        "|r| > {}: {}\n{} < |r| <= {}: {}\n",
        t.hi,
        format_heads(&strong),
        t.lo,
        t.hi,
        format_heads(&weak)
    )
}
