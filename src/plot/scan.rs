//! Activation-patching scans (`headhunt scan`, `results::scan::ScanRecord`) as heatmaps: the
//! path-patching grid of `plot::heatmap` with the scan's columns (heads, the one MLP column,
//! or positions labelled with their tokens), the same scale, legend and dots (cells whose
//! 95% interval holds 0).

use super::heatmap::NOISE_NOTE;
use super::heatmap::{describe_source, Columns, Heatmap, HeatmapOptions, Panel, Quantity};
use super::PlotError;
use crate::patching::scan::ScanKind;
use crate::results::scan::ScanRecord;

/// The most characters of a token in a position label: a longer one is cut, and ends in `…`
/// so the cut shows.
pub const TOKEN_CHARS: usize = 12;

/// A position column's label: its index and its token, escaped as the explorer prints
/// tokens (space `·`, newline `↵`, tab `⇥`, other control characters `�`) and cut visibly.
pub fn position_label(i: usize, token: Option<&str>) -> String {
    match token {
        None => i.to_string(),
        Some(t) => {
            let p = crate::model::tokenizer::printable(t);
            let shown = if p.chars().count() > TOKEN_CHARS {
                format!("{}…", p.chars().take(TOKEN_CHARS - 1).collect::<String>())
            } else {
                p
            };
            format!("{i}:{shown}")
        }
    }
}

/// The columns of a scan of `kind`.
pub fn scan_columns(rec: &ScanRecord) -> Columns {
    match rec.kind {
        ScanKind::Heads => Columns::heads(rec.n_columns, false),
        ScanKind::Mlp => Columns {
            labels: vec!["MLP".into(); rec.n_columns],
            axis: "MLP".into(),
            n_heads: 0,
            mlp: (rec.n_columns == 1).then_some(0),
            tokens: false,
        },
        ScanKind::Resid | ScanKind::MlpPos => Columns {
            labels: (0..rec.n_columns)
                .map(|i| position_label(i, rec.tokens.get(i).map(String::as_str)))
                .collect(),
            axis: "position".into(),
            n_heads: 0,
            mlp: None,
            tokens: !rec.tokens.is_empty(),
        },
    }
}

/// Per [layer][column], whether the cell's interval holds 0 (empty without intervals).
fn scan_noise(rec: &ScanRecord) -> Vec<Vec<bool>> {
    if rec.relative_ci.is_none() {
        return Vec::new();
    }
    (0..rec.n_layers)
        .map(|l| {
            (0..rec.n_columns)
                .map(|c| {
                    rec.interval(l, c)
                        .is_some_and(|(lo, hi)| lo <= 0.0 && hi >= 0.0)
                })
                .collect()
        })
        .collect()
}

impl Heatmap {
    /// The heatmap of a scan: 100·r per [layer][column].
    pub fn scan(rec: &ScanRecord, opts: &HeatmapOptions) -> Result<Self, PlotError> {
        let values = rec
            .relative
            .iter()
            .map(|r| r.as_ref().map(|r| r.iter().map(|v| 100.0 * v).collect()))
            .collect();
        let panel = Panel {
            title: String::new(),
            values,
            noise: scan_noise(rec),
            groups: opts.groups.clone(),
        };
        let title = format!(
            "Activation patching scan: {} ({}, the {} run patched)",
            rec.kind,
            rec.direction,
            if rec.direction.base_is_normal() {
                "normal"
            } else {
                "contrast"
            }
        );
        let source = describe_source(rec.model.as_ref(), rec.data.as_ref(), None, rec.metric);
        let noise = match rec.relative_ci {
            Some(_) => NOISE_NOTE,
            None => "no intervals in the file: noise not marked",
        };
        let sub = format!("{source} · {noise}");
        let shape = (rec.n_layers, scan_columns(rec));
        Heatmap::build(
            title,
            sub,
            vec![panel],
            shape,
            Quantity::RelativePercent,
            opts,
        )
    }
}
