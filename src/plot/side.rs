//! Path-patching results of any shapes side by side (`plot --compare A B C …`, `F` on the
//! explorer's side-by-side view): one panel per result, all the same height, each model's
//! layers spread over it (a depth-normalized layer axis: layer l of n fills the band from
//! depth l/n to (l+1)/n, the last layer on top), heads across, one colour scale for all. The
//! difference of two results stays `Heatmap::diff`, which needs equal shapes.

use plotters::prelude::DrawingBackend;

use super::canvas::{self, figure, Anchor, Area, BLACK_TEXT, GREY_TEXT, TICK};
use super::scale::{auto_range, diverging};
use super::PlotError;
use crate::results::RunRecord;

/// Pixels of every panel's grid height, and of one head column at most.
const GRID_H: i32 = 420;
const HEAD_W: f64 = 14.0;
const GAP: i32 = 48;
const MARGIN: i32 = 40;
const TOP: i32 = 90;

/// One result of the figure: its r per [layer][head] in %, and its heading.
#[derive(Debug, Clone)]
pub struct SidePanel {
    pub title: String,
    pub values: Vec<Option<Vec<f64>>>,
    pub n_heads: usize,
}

#[derive(Debug, Clone)]
pub struct SideBySide {
    pub size: (u32, u32),
    pub title: String,
    /// Says what the panels leave out: MLP senders (drawn by the single and pair figures).
    pub subtitle: String,
    pub panels: Vec<SidePanel>,
    /// Half-width of the shared scale, in %.
    pub range: f64,
    /// Left edge of each panel's grid, in pixels.
    pub panel_x: Vec<i32>,
}
figure!(SideBySide);

impl SideBySide {
    /// The figure of `results` (each with the name its panel is headed with); `range`: the
    /// scale's half-width in %, else the largest |r| shown.
    pub fn new(results: &[(&RunRecord, String)], range: Option<f64>) -> Result<Self, PlotError> {
        if results.len() < 2 {
            return Err(PlotError::Invalid(
                "side by side needs two or more results".into(),
            ));
        }
        let mut panels = Vec::new();
        for (rec, name) in results {
            if rec.n_layers == 0 || rec.n_heads == 0 {
                return Err(PlotError::Invalid(format!(
                    "{name}: a result of {} layers × {} heads: nothing to draw",
                    rec.n_layers, rec.n_heads
                )));
            }
            let values = (0..rec.n_layers)
                .map(|l| {
                    rec.relative[l]
                        .as_ref()
                        .map(|r| r.iter().map(|v| 100.0 * v).collect())
                })
                .collect();
            panels.push(SidePanel {
                title: format!(
                    "{name} · {} ({}×{})",
                    rec.receiver_label, rec.n_layers, rec.n_heads
                ),
                values,
                n_heads: rec.n_heads,
            });
        }
        let shown = panels
            .iter()
            .flat_map(|p| p.values.iter().flatten().flat_map(|r| r.iter().copied()));
        let range = range.unwrap_or_else(|| auto_range(shown));
        let mut panel_x = Vec::new();
        let mut x = MARGIN;
        for p in &panels {
            panel_x.push(x);
            let w = panel_w(p).max(canvas::text_size(&p.title, TICK).0 as i32);
            x += w + GAP;
        }
        let title = "Path patching side by side (layers by depth)".to_string();
        let subtitle = if results.iter().any(|(r, _)| r.mlp_relative.is_some()) {
            "heads only: the MLP senders are not drawn side by side (plot each file alone)".into()
        } else {
            String::new()
        };
        let width = (x + 100).max(canvas::headings_width(&title, &subtitle));
        let size = (width as u32, (TOP + GRID_H + 50) as u32);
        canvas::check_size(size.0, size.1)?;
        Ok(SideBySide {
            size,
            title,
            subtitle,
            panels,
            range,
            panel_x,
        })
    }

    fn draw<DB: DrawingBackend>(&self, area: &Area<DB>) -> Result<(), PlotError> {
        canvas::headings(area, self.size.0, &self.title, &self.subtitle)?;
        for (p, &x) in self.panels.iter().zip(&self.panel_x) {
            self.draw_panel(area, p, x)?;
        }
        let x = self.size.0 as i32 - 80;
        let range = self.range;
        canvas::colour_bar(
            area,
            (x, TOP + 10),
            (14, GRID_H - 10),
            (-range, range),
            &|v| diverging(v, range),
            "%",
            "r",
            TICK,
        )
    }

    fn draw_panel<DB: DrawingBackend>(
        &self,
        area: &Area<DB>,
        p: &SidePanel,
        x: i32,
    ) -> Result<(), PlotError> {
        canvas::text(
            area,
            &p.title,
            (x, TOP - 14),
            TICK,
            Anchor::Left,
            BLACK_TEXT,
        )?;
        let n = p.values.len();
        let w = panel_w(p) as f64 / p.n_heads as f64;
        for (l, row) in p.values.iter().enumerate() {
            let (y0, y1) = band(l, n);
            for h in 0..p.n_heads {
                let c = match row.as_ref().map(|r| r[h]) {
                    Some(v) if v.is_finite() => diverging(v, self.range),
                    _ => canvas::MISSING,
                };
                let x0 = x + (h as f64 * w).round() as i32;
                let x1 = x + ((h + 1) as f64 * w).round() as i32;
                canvas::fill(area, (x0, y0), (x1, y1), c)?;
            }
        }
        // The top and bottom layers, and the depth's halfway layer, named at the left.
        for l in [0, n / 2, n - 1] {
            let (y0, y1) = band(l, n);
            let at = (x - 4, (y0 + y1) / 2);
            canvas::text(
                area,
                &format!("L{l}"),
                at,
                TICK * 0.8,
                Anchor::Right,
                GREY_TEXT,
            )?;
        }
        Ok(())
    }
}

/// Grid width of a panel: its heads at `HEAD_W` each, at most 300 pixels.
fn panel_w(p: &SidePanel) -> i32 {
    ((p.n_heads as f64 * HEAD_W).min(300.0)).round() as i32
}

/// The pixel rows (top, bottom exclusive) of layer `l` of `n` on the depth axis: the last
/// layer at the top.
pub fn band(l: usize, n: usize) -> (i32, i32) {
    let y = |d: usize| TOP + GRID_H - (GRID_H as f64 * d as f64 / n as f64).round() as i32;
    (y(l + 1), y(l))
}
