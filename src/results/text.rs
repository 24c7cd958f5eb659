//! Plain-text views of a result: the heatmap (layers as rows, heads as columns, r in %) and the
//! paper's head lists.

use std::fmt::Write;

use super::RunRecord;
use crate::patching::matrix::{format_heads, HeadScore, PatchMatrix};

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
    if let Some(d) = rec
        .data
        .as_ref()
        .filter(|d| d.spec.task == crate::data::TaskKind::Pairs)
    {
        let _ = writeln!(
            s,
            "data        {} (prompt pairs, {} examples, answer token: {})",
            d.spec.file.display(),
            d.n_examples,
            match d.spec.answer_token {
                crate::data::AnswerTokenRule::Last => "last",
                crate::data::AnswerTokenRule::First => "first",
            }
        );
    } else if let Some(d) = &rec.data {
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
        "senders     layers {}..={} ({} rows computed{}){}, algorithm {alg}",
        rec.begin_layer,
        rec.receiver.max_layer(),
        rec.rows_computed.len(),
        if rec.complete {
            ""
        } else {
            ", PARTIAL: cancelled"
        },
        rec.sender_positions
            .as_ref()
            .map_or(String::new(), |p| format!(" at @{p}"))
    );
    if let (Some(n), Some(c)) = (rec.normal_logit_diff, rec.contrast_logit_diff) {
        let (m, x) = (rec.metric, rec.metric.short());
        if m != crate::patching::Metric::LogitDiff {
            let _ = writeln!(s, "metric      {m} (r = (patched - {x}_c)/({x}_c - {x}_n))");
        }
        let _ = writeln!(
            s,
            "baselines   {x}_normal {n:+.4}   {x}_contrast {c:+.4}   gap {:+.4}",
            c - n
        );
        if ill_conditioned(rec) {
            let _ = writeln!(
                s,
                "warning     |{x}_contrast - {x}_normal| = {:.3} < {}: the model barely tells the prompts apart (does it follow the contrast rule at all? see `headhunt eval`), so r = (patched - {x}_c)/({x}_c - {x}_n) is ill-conditioned; the raw patched - {x}_c is shown instead",
                (c - n).abs(),
                m.small_gap()
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

/// Whether the baselines are so close that r is ill-conditioned (see `Metric::small_gap`).
pub fn ill_conditioned(rec: &RunRecord) -> bool {
    match (rec.normal_logit_diff, rec.contrast_logit_diff) {
        (Some(n), Some(c)) => rec.metric.ill_conditioned(n, c),
        _ => false,
    }
}

/// patched - LD_c at (layer, head), where r is defined (the raw effect of patching, in logits).
pub fn raw_effect(rec: &RunRecord, l: usize, h: usize) -> Option<f64> {
    rec.r(l, h)?;
    Some(rec.patched(l, h)? - rec.contrast_logit_diff?)
}

/// What the cells of a result show. One rule for every view (the command line's text and the
/// explorer), so that an ill-conditioned r is never drawn anywhere as if it meant something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellMeasure {
    /// r = (patched - LD_c)/(LD_c - LD_n).
    R,
    /// patched - LD_c in logits: the baselines are closer than the metric's small gap, so r is
    /// ill-conditioned, and the patched values are known.
    RawEffect,
}

impl CellMeasure {
    /// `v` (r as a fraction, or logits) in the unit it is shown in: r in %, logits as they are.
    pub fn shown(self, v: f64) -> f64 {
        match self {
            CellMeasure::R => 100.0 * v,
            CellMeasure::RawEffect => v,
        }
    }

    /// The unit after a shown number: `%`, or ` logits`.
    pub fn unit(self) -> &'static str {
        match self {
            CellMeasure::R => "%",
            CellMeasure::RawEffect => " logits",
        }
    }
}

/// The measure the cells of `rec` show: the raw effect when r is ill-conditioned and the
/// patched values are known, else r.
pub fn cell_measure(rec: &RunRecord) -> CellMeasure {
    if ill_conditioned(rec) && rec.patched_logit_diff.is_some() {
        CellMeasure::RawEffect
    } else {
        CellMeasure::R
    }
}

/// The value a cell shows under `measure` (r as a fraction, or the raw effect in logits).
pub fn cell_value(rec: &RunRecord, measure: CellMeasure, l: usize, h: usize) -> Option<f64> {
    match measure {
        CellMeasure::R => rec.r(l, h),
        CellMeasure::RawEffect => raw_effect(rec, l, h),
    }
}

/// The heatmap as text: one row per sender layer (top: the last layer), r in percent. When r
/// is ill-conditioned (close baselines) and the patched values are known, the raw effect
/// patched - LD_c in logits instead.
pub fn heatmap(rec: &RunRecord) -> String {
    let (x, unit) = (rec.metric.short(), rec.metric.unit());
    if cell_measure(rec) == CellMeasure::RawEffect {
        let title = format!(
            "patched - {x}_c in {unit} (r is not shown: its denominator {x}_c - {x}_n is too small)"
        );
        return grid(
            rec,
            &title,
            7,
            |l, h| raw_effect(rec, l, h).map(|d| format!("{d:>+7.3}")),
            |l| mlp_raw_effect(rec, l).map(|d| format!("{d:>+7.3}")),
        );
    }
    grid(
        rec,
        &format!("r = (patched - {x}_c)/({x}_c - {x}_n) in %"),
        6,
        |l, h| rec.r(l, h).map(|r| format!("{:>6.1}", 100.0 * r)),
        |l| rec.mlp_r(l).map(|r| format!("{:>6.1}", 100.0 * r)),
    )
}

/// patched - LD_c of layer `l`'s MLP, where its r is defined.
fn mlp_raw_effect(rec: &RunRecord, l: usize) -> Option<f64> {
    rec.mlp_r(l)?;
    Some(rec.mlp_patched_logit_diff.as_ref()?[l]? - rec.contrast_logit_diff?)
}

/// A layer × head table, top row the last layer; `cell` gives a formatted value or `None` for
/// a row that was not computed; a run with MLP senders gets their column (`mlp`) last.
fn grid(
    rec: &RunRecord,
    title: &str,
    width: usize,
    cell: impl Fn(usize, usize) -> Option<String>,
    mlp: impl Fn(usize) -> Option<String>,
) -> String {
    let with_mlp = rec.mlp_relative.is_some();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{title}; rows: sender layer, columns: head; '·' = not computed"
    );
    let _ = write!(s, "layer");
    for h in 0..rec.n_heads {
        let _ = write!(s, "{h:>width$}");
    }
    if with_mlp {
        let _ = write!(s, "  {:>width$}", "MLP");
    }
    s.push('\n');
    let dot = || format!("{:>width$}", "·");
    for l in (0..rec.n_layers).rev() {
        let _ = write!(s, "{l:>5}");
        for h in 0..rec.n_heads {
            s.push_str(&cell(l, h).unwrap_or_else(dot));
        }
        if with_mlp {
            let _ = write!(s, "  {}", mlp(l).unwrap_or_else(dot));
        }
        s.push('\n');
    }
    s
}

/// The paper's head lists. When r is ill-conditioned they are replaced by the heads with the
/// largest raw effects |patched - LD_c|.
pub fn head_lists(rec: &RunRecord, t: Thresholds) -> String {
    if cell_measure(rec) == CellMeasure::RawEffect {
        let mut all: Vec<(usize, usize, f64)> = (0..rec.n_layers)
            .flat_map(|l| (0..rec.n_heads).map(move |h| (l, h)))
            .filter_map(|(l, h)| raw_effect(rec, l, h).map(|d| (l, h, d)))
            .collect();
        all.sort_by(|a, b| b.2.abs().total_cmp(&a.2.abs()));
        let top: Vec<String> = all
            .iter()
            .take(10)
            .map(|(l, h, d)| format!("({l},{h}) {d:+.3}"))
            .collect();
        return format!(
            "no head lists by r (|r| > {} ...): r is ill-conditioned here\nlargest |patched - {}_c| ({}): {}\n",
            t.hi,
            rec.metric.short(),
            rec.metric.unit(),
            if top.is_empty() {
                "(none)".to_string()
            } else {
                top.join(", ")
            }
        );
    }
    let (strong, weak) = PatchMatrix::head_lists(&rec.relative_filled(), t.hi, t.lo);
    let mut out = format!(
        "|r| > {}: {}\n{} < |r| <= {}: {}\n",
        t.hi,
        with_mlps(rec, &strong, |r| r > t.hi),
        t.lo,
        t.hi,
        with_mlps(rec, &weak, |r| r > t.lo && r <= t.hi)
    );
    if let Some(b) = rec.bootstrap.filter(|_| rec.relative_ci.is_some()) {
        let _ = writeln!(
            out,
            "[..]: {:.0}% bootstrap interval of r over the examples ({} resamples, seed {}); ? marks a head whose interval holds 0 (not told from noise)",
            100.0 * b.level,
            b.samples,
            b.seed
        );
    }
    out
}

/// A head list with the MLPs whose |r| passes `keep` merged in (`MLP 5 +12.0%`), layer-
/// descending, a layer's MLP before its heads (it writes after them); the heads alone for a
/// run without MLP senders.
fn with_mlps(rec: &RunRecord, heads: &[HeadScore], keep: impl Fn(f64) -> bool) -> String {
    let mlps: Vec<(usize, f64)> = (0..rec.n_layers)
        .rev()
        .filter_map(|l| rec.mlp_r(l).map(|r| (l, r)))
        .filter(|&(_, r)| keep(r.abs()))
        .collect();
    if mlps.is_empty() {
        return heads_with_intervals(rec, heads);
    }
    let mut items: Vec<(usize, bool, String)> = mlps
        .iter()
        .map(|&(l, r)| (l, true, mlp_with_interval(rec, l, r)))
        .collect();
    for s in heads {
        let one = heads_with_intervals(rec, std::slice::from_ref(s));
        items.push((s.layer, false, one));
    }
    // Stable: heads keep their head-descending order within a layer.
    items.sort_by_key(|&(l, is_mlp, _)| (std::cmp::Reverse(l), !is_mlp));
    let all: Vec<String> = items.into_iter().map(|(_, _, s)| s).collect();
    all.join(", ")
}

/// `MLP 5 +12.0%`, with its bootstrap interval (and `?` when it holds 0) when the run has them.
fn mlp_with_interval(rec: &RunRecord, l: usize, r: f64) -> String {
    let iv = rec.mlp_relative_ci.as_ref().map(|ci| match ci.get(l) {
        Some(Some([Some(lo), Some(hi)])) => (*lo, *hi),
        _ => (f64::NAN, f64::NAN),
    });
    let Some((lo, hi)) = iv else {
        return format!("MLP {l} {:+.1}%", 100.0 * r);
    };
    let masked = l < rec.begin_layer || !rec.receiver.mlp_reachable_from(l);
    if lo.is_nan() || hi.is_nan() {
        return format!("?MLP {l} {:+.1}% [?, ?]", 100.0 * r);
    }
    let noise = !masked && lo <= 0.0 && hi >= 0.0;
    format!(
        "{}MLP {l} {:+.1}% [{:+.1}, {:+.1}]",
        if noise { "?" } else { "" },
        100.0 * r,
        100.0 * lo,
        100.0 * hi
    )
}

/// The head list with each head's bootstrap interval when the result has them, and `?` before
/// a head whose interval holds 0.
fn heads_with_intervals(rec: &RunRecord, list: &[HeadScore]) -> String {
    if rec.relative_ci.is_none() {
        return format_heads(list);
    }
    if list.is_empty() {
        return "(none)".into();
    }
    list.iter()
        .map(|s| {
            let (l, h) = (s.layer, s.head);
            // No defined interval (every resample's denominator 0) is no evidence either.
            let (bounds, noise) = match rec.interval(l, h) {
                Some((lo, hi)) => (
                    format!("[{:+.1}, {:+.1}]", 100.0 * lo, 100.0 * hi),
                    rec.holds_zero(l, h),
                ),
                None => ("[?, ?]".to_string(), true),
            };
            let r = 100.0 * s.r;
            format!(
                "{}({l},{h}) {r:+.1}% {bounds}",
                if noise { "?" } else { "" }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `s` with every control character shown escaped: C0 and DEL as `\x1b`, C1 as `\u{9b}`.
/// Text that comes from a file (a model label, a token, a group name) is drawn this way in
/// figures, so that an SVG stays valid XML (which allows no control characters) and a
/// figure shows what the file holds.
pub fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    escape_controls_but(s, |_| false)
}

/// Text for the terminal: [`escape_controls`] but for line breaks and tabs, so that a file's
/// text never moves the cursor, retitles or clears the terminal.
pub fn terminal_safe(s: &str) -> std::borrow::Cow<'_, str> {
    escape_controls_but(s, |c| c == '\n' || c == '\t')
}

/// `s` with the control characters that `keep` does not keep shown escaped.
fn escape_controls_but(s: &str, keep: fn(char) -> bool) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| c.is_control() && !keep(c);
    if !s.chars().any(bad) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !bad(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Family, ModelOrigin};
    use crate::patching::{Algorithm, PatchMatrix, Receiver};
    use crate::results::{ModelInfo, RecordParts, Timing};

    fn record(ld_normal: f64, ld_contrast: f64) -> RunRecord {
        let mut m = PatchMatrix::new(2, 2, ld_normal, ld_contrast, 4);
        m.set_row(0, vec![ld_contrast + 0.25, ld_contrast]);
        m.set_row(1, vec![ld_contrast - 0.05, ld_contrast + 0.01]);
        let receiver = Receiver::resid_post(1);
        RunRecord::from_run(RecordParts {
            matrix: &m,
            complete: true,
            receiver: &receiver,
            begin_layer: 0,
            algorithm: Algorithm::Fast,
            batch_size: 4,
            model: ModelInfo {
                origin: ModelOrigin::Local { path: "m".into() },
                label: "m".into(),
                family: Family::Llama,
                n_layers: 2,
                n_heads: 2,
                n_kv_heads: 2,
                d_model: 8,
                d_head: 4,
                d_mlp: 16,
                vocab_size: 10,
                dtype: "f32".into(),
                device: "cpu".into(),
                quantization: None,
                ignored_config_keys: Vec::new(),
                parallel_block: false,
            },
            data: None,
            timing: Timing::default(),
        })
    }

    #[test]
    fn close_baselines_show_raw_effects_not_r() {
        let rec = record(2.0, 1.7);
        assert!(ill_conditioned(&rec));
        let s = summary(&rec);
        assert!(
            s.contains("warning") && s.contains("ill-conditioned"),
            "{s}"
        );
        let h = heatmap(&rec);
        assert!(h.starts_with("patched - LD_c in logits"), "{h}");
        assert!(h.contains("+0.250") && h.contains("-0.050"), "{h}");
        let l = head_lists(&rec, Thresholds::default());
        assert!(l.starts_with("no head lists by r"), "{l}");
        assert!(
            l.contains("(0,0) +0.250, (1,0) -0.050, (1,1) +0.010"),
            "{l}"
        );
    }

    #[test]
    fn distinct_baselines_show_r() {
        let rec = record(4.0, -1.0);
        assert!(!ill_conditioned(&rec));
        assert!(!summary(&rec).contains("warning"));
        assert!(heatmap(&rec).starts_with("r = (patched - LD_c)/(LD_c - LD_n)"));
        // r(0,0) = 0.25 / -5 = -5%.
        assert!(
            head_lists(&rec, Thresholds::default()).starts_with("|r| > 0.05: (0,0) -5.0%")
                || head_lists(&rec, Thresholds::default()).contains("(0,0) -5.0%")
        );
    }

    #[test]
    fn control_characters_are_shown_escaped() {
        assert_eq!(escape_controls("plain · text"), "plain · text");
        assert_eq!(
            escape_controls("\u{1b}]0;x\u{7}\u{1b}[2J"),
            "\\x1b]0;x\\x07\\x1b[2J"
        );
        assert_eq!(escape_controls("a\u{7f}b\u{9b}c"), "a\\x7fb\\u{9b}c");
        assert_eq!(terminal_safe("a\u{1b}\nb\tc\n"), "a\\x1b\nb\tc\n");
        assert_eq!(escape_controls("a\tb\n"), "a\\x09b\\x0a");
    }
}
