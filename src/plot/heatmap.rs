//! Path-patching heatmaps like the paper's Figure 2(a): 100·r per sender (layer, head) on
//! RdBu centred at 0, a colour bar in %, cells that were not computed in grey, tagged groups
//! outlined. One result, two side by side on one scale, or their difference.
//!
//! Default layout: rows are layers (the last on top, as `headhunt show` prints them), columns
//! heads; `heads_as_rows` gives the paper's layout (x = layer, y = head, head 0 on top).

use plotters::prelude::DrawingBackend;

use super::canvas::{self, figure, group_colour, text_size, Anchor, Area, Rgb, Swatch};
use super::canvas::{BLACK_TEXT, SUBTITLE, TICK};
use super::scale::{auto_range, diverging};
use super::PlotError;
use crate::results::{HeadGroup, RunRecord};

/// Choices of `headhunt plot` for heatmaps.
#[derive(Debug, Clone, Default)]
pub struct HeatmapOptions {
    /// Figure size in pixels; `None`: from the number of cells.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Half-width of the colour scale in %; `None`: the largest |100·r| shown.
    pub range: Option<f64>,
    /// Only sender layers `lo..=hi`.
    pub crop: Option<(usize, usize)>,
    pub heads_as_rows: bool,
    /// Groups to outline besides the record's own.
    pub groups: Vec<HeadGroup>,
}

/// One grid of values (in %) per [layer][head]; `None` rows were not computed.
#[derive(Debug, Clone)]
pub struct Panel {
    pub title: String,
    pub values: Vec<Option<Vec<f64>>>,
    pub groups: Vec<HeadGroup>,
}

/// Pixel positions of everything a test or a caller may want to find.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Layout {
    /// Top-left corner of each panel's grid.
    pub origin_y: i32,
    pub panel_x: [i32; 2],
    pub cell_w: f64,
    pub cell_h: f64,
    pub rows: usize,
    pub cols: usize,
    pub colour_bar_x: i32,
}

#[derive(Debug, Clone)]
pub struct Heatmap {
    pub size: (u32, u32),
    pub title: String,
    pub subtitle: String,
    pub panels: Vec<Panel>,
    pub n_heads: usize,
    /// Sender layers shown, `lo..=hi`.
    pub layers: (usize, usize),
    pub heads_as_rows: bool,
    /// Half-width of the scale (in % for r).
    pub range: f64,
    pub quantity: Quantity,
    pub layout: Layout,
}
figure!(Heatmap);

/// The model and data of a record, for titles.
pub fn describe(rec: &RunRecord) -> String {
    let text = describe_run(rec);
    // Another metric than the paper's says so in every figure of it.
    match rec.metric {
        crate::patching::Metric::LogitDiff => text,
        m => format!("{text} · metric {m}"),
    }
}

fn describe_run(rec: &RunRecord) -> String {
    let model = match (&rec.model, &rec.note) {
        (Some(m), _) => super::model_name(m),
        (None, Some(n)) => {
            super::path_free(n.strip_prefix("imported from the paper: ").unwrap_or(n))
        }
        (None, None) => "unknown model".into(),
    };
    match &rec.data {
        Some(d) => {
            let file = d
                .spec
                .file
                .file_name()
                .map(|f| f.to_string_lossy().to_string())
                .unwrap_or_default();
            // A prompt-pair file has no shots or offset (the fields hold their defaults).
            if d.spec.task == crate::data::TaskKind::Pairs {
                format!("{model} · {file} ({} prompt pairs)", d.n_examples)
            } else {
                format!(
                    "{model} · {file} ({}, {} shots, offset {:+}, {} examples)",
                    d.spec.task, d.spec.shots, d.spec.offset, d.n_examples
                )
            }
        }
        None => model,
    }
}

/// What the cells show: 100·r, or, when r is ill-conditioned (baselines too close, as
/// `headhunt show` decides) and the patched values are known, patched − LD_c in logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    RelativePercent,
    RawLogits,
}

impl Quantity {
    /// Raw effects only when every record needs them, so panels share one unit.
    pub fn of(recs: &[&RunRecord]) -> Self {
        if recs
            .iter()
            .all(|r| crate::results::text::ill_conditioned(r) && r.patched_logit_diff.is_some())
        {
            Quantity::RawLogits
        } else {
            Quantity::RelativePercent
        }
    }

    pub fn suffix(self) -> &'static str {
        match self {
            Quantity::RelativePercent => "%",
            Quantity::RawLogits => "",
        }
    }

    pub fn caption(self) -> &'static str {
        match self {
            Quantity::RelativePercent => "r",
            Quantity::RawLogits => "Δ logits",
        }
    }

    /// The cells of `rec` [layer][head]; `None` rows were not computed, or cannot reach the
    /// receiver (a sender in a head receiver's own layer or above: its 0 carries no
    /// information, and the explorer draws it as not computed too).
    pub fn rows(self, rec: &RunRecord) -> Vec<Option<Vec<f64>>> {
        (0..rec.n_layers)
            .map(|l| {
                rec.relative.get(l)?.as_ref()?;
                if !rec.receiver.reachable_from(l) {
                    return None;
                }
                Some(
                    (0..rec.n_heads)
                        .map(|h| match self {
                            Quantity::RelativePercent => 100.0 * rec.r(l, h).unwrap_or(f64::NAN),
                            Quantity::RawLogits => {
                                match (rec.patched(l, h), rec.contrast_logit_diff) {
                                    (Some(p), Some(c)) => p - c,
                                    _ => f64::NAN,
                                }
                            }
                        })
                        .collect(),
                )
            })
            .collect()
    }
}

/// Checks that every head of `groups` lies inside an `n_layers × n_heads` model.
pub fn check_groups(
    groups: &[HeadGroup],
    n_layers: usize,
    n_heads: usize,
) -> Result<(), PlotError> {
    for g in groups {
        if let Some(&(l, h)) = g
            .heads
            .iter()
            .find(|&&(l, h)| l >= n_layers || h >= n_heads)
        {
            return Err(PlotError::Invalid(format!(
                "group {:?}: head {l}.{h} is outside the result ({n_layers} layers × {n_heads} heads)",
                g.name
            )));
        }
    }
    Ok(())
}

impl Heatmap {
    /// The figure of one result.
    pub fn single(rec: &RunRecord, opts: &HeatmapOptions) -> Result<Self, PlotError> {
        let q = Quantity::of(&[rec]);
        let panel = Panel {
            title: String::new(),
            values: q.rows(rec),
            groups: [rec.groups.clone(), opts.groups.clone()].concat(),
        };
        let title = format!("Path patching to {}", rec.receiver_label);
        Heatmap::build(title, describe(rec), vec![panel], rec, q, opts)
    }

    /// Two results side by side on one scale.
    pub fn pair(a: &RunRecord, b: &RunRecord, opts: &HeatmapOptions) -> Result<Self, PlotError> {
        same_shape(a, b)?;
        let q = Quantity::of(&[a, b]);
        let panel = |r: &RunRecord| Panel {
            title: format!("{} — {}", r.receiver_label, describe(r)),
            values: q.rows(r),
            groups: [r.groups.clone(), opts.groups.clone()].concat(),
        };
        let title = format!(
            "Path patching to {} and to {}",
            a.receiver_label, b.receiver_label
        );
        Heatmap::build(title, String::new(), vec![panel(a), panel(b)], a, q, opts)
    }

    /// The difference `a − b` (in percentage points) where both were computed.
    pub fn diff(a: &RunRecord, b: &RunRecord, opts: &HeatmapOptions) -> Result<Self, PlotError> {
        same_shape(a, b)?;
        let q = Quantity::of(&[a, b]);
        let values = q
            .rows(a)
            .into_iter()
            .zip(q.rows(b))
            .map(|(x, y)| match (x, y) {
                (Some(x), Some(y)) => Some(x.iter().zip(&y).map(|(p, q)| p - q).collect()),
                _ => None,
            })
            .collect();
        let panel = Panel {
            title: String::new(),
            values,
            groups: opts.groups.clone(),
        };
        let title = format!(
            "Difference: {} minus {}",
            a.receiver_label, b.receiver_label
        );
        let sub = format!("{}  minus  {}", describe(a), describe(b));
        Heatmap::build(title, sub, vec![panel], a, q, opts)
    }

    fn build(
        title: String,
        subtitle: String,
        panels: Vec<Panel>,
        rec: &RunRecord,
        quantity: Quantity,
        opts: &HeatmapOptions,
    ) -> Result<Self, PlotError> {
        let (n_layers, n_heads) = (rec.n_layers, rec.n_heads);
        // The reader refuses such files; a record built in memory must not panic either.
        if n_layers == 0 || n_heads == 0 {
            return Err(PlotError::Invalid(format!(
                "a result of {n_layers} layers × {n_heads} heads: nothing to draw"
            )));
        }
        if let Some(p) = panels.iter().find(|p| {
            p.values.len() != n_layers || p.values.iter().flatten().any(|r| r.len() != n_heads)
        }) {
            return Err(PlotError::Invalid(format!(
                "{}: the cells are not {n_layers} layers × {n_heads} heads",
                if p.title.is_empty() {
                    "the result"
                } else {
                    &p.title
                }
            )));
        }
        let layers = match opts.crop {
            Some((lo, hi)) if lo > hi || hi >= n_layers => {
                return Err(PlotError::Invalid(format!(
                    "crop {lo}-{hi}: expected LO-HI with LO ≤ HI < {n_layers} (the result's layers)"
                )))
            }
            Some(c) => c,
            None => (0, n_layers - 1),
        };
        for p in &panels {
            check_groups(&p.groups, n_layers, n_heads)?;
        }
        let shown = panels.iter().flat_map(|p| {
            p.values[layers.0..=layers.1]
                .iter()
                .flatten()
                .flat_map(|r| r.iter().copied())
        });
        let range = opts.range.unwrap_or_else(|| auto_range(shown));
        let subtitle = match quantity {
            Quantity::RawLogits => {
                let (x, unit) = (rec.metric.short(), rec.metric.unit());
                format!(
                    "{subtitle} · cells: patched − {x}_c in {unit} (r is ill-conditioned: {x}_c ≈ {x}_n)"
                )
            }
            Quantity::RelativePercent => subtitle,
        };
        let n_shown = layers.1 - layers.0 + 1;
        let (rows, cols) = if opts.heads_as_rows {
            (n_heads, n_shown)
        } else {
            (n_shown, n_heads)
        };
        let heads_w = (
            canvas::headings_width(&title, &subtitle),
            canvas::headings_min_width(&title, &subtitle),
        );
        let (size, layout) = lay_out((rows, cols), panels.len(), &panels, opts, heads_w)?;
        Ok(Heatmap {
            size,
            title,
            subtitle,
            panels,
            n_heads,
            layers,
            heads_as_rows: opts.heads_as_rows,
            range,
            quantity,
            layout,
        })
    }

    /// The (row, column) of sender (layer, head), if shown.
    pub fn cell_index(&self, layer: usize, head: usize) -> Option<(usize, usize)> {
        let (lo, hi) = self.layers;
        if layer < lo || layer > hi || head >= self.n_heads {
            return None;
        }
        Some(if self.heads_as_rows {
            (head, layer - lo)
        } else {
            (hi - layer, head)
        })
    }

    /// Pixel rectangle `[(x0, y0), (x1, y1))` of sender (layer, head) in panel `p`.
    pub fn cell_rect(
        &self,
        p: usize,
        layer: usize,
        head: usize,
    ) -> Option<((i32, i32), (i32, i32))> {
        let (r, c) = self.cell_index(layer, head)?;
        let l = &self.layout;
        let x = |c: usize| l.panel_x[p] + (c as f64 * l.cell_w).round() as i32;
        let y = |r: usize| l.origin_y + (r as f64 * l.cell_h).round() as i32;
        Some(((x(c), y(r)), (x(c + 1), y(r + 1))))
    }

    /// The colour of a cell value in % (`None`: not computed).
    pub fn colour(&self, v: Option<f64>) -> Rgb {
        match v {
            Some(x) if x.is_finite() => diverging(x, self.range),
            _ => canvas::MISSING,
        }
    }

    fn draw<DB: DrawingBackend>(&self, area: &Area<DB>) -> Result<(), PlotError> {
        canvas::headings(area, self.size.0, &self.title, &self.subtitle)?;
        for p in 0..self.panels.len() {
            self.draw_panel(area, p)?;
        }
        let l = &self.layout;
        let h = (l.rows as f64 * l.cell_h).round() as i32;
        let bar_h = h.clamp(60, 400);
        let range = self.range;
        canvas::colour_bar(
            area,
            (l.colour_bar_x, l.origin_y + (h - bar_h) / 2 + 10),
            (14, bar_h - 10),
            (-range, range),
            &|v| diverging(v, range),
            self.quantity.suffix(),
            self.quantity.caption(),
            TICK,
        )
    }

    fn draw_panel<DB: DrawingBackend>(&self, area: &Area<DB>, p: usize) -> Result<(), PlotError> {
        let panel = &self.panels[p];
        let (lo, hi) = self.layers;
        for l in lo..=hi {
            for h in 0..self.n_heads {
                let v = panel.values[l].as_ref().map(|r| r[h]);
                let (a, b) = self.cell_rect(p, l, h).expect("shown cell");
                canvas::fill(area, a, b, self.colour(v))?;
            }
        }
        for (g, group) in panel.groups.iter().enumerate() {
            let c = group_colour(g);
            for &(l, h) in &group.heads {
                if let Some((a, b)) = self.cell_rect(p, l, h) {
                    canvas::outline(area, a, (b.0 - 1, b.1 - 1), c, 2)?;
                }
            }
        }
        self.draw_ticks(area, p)?;
        self.draw_legend(area, p)
    }

    /// Tick labels every `step` rows and columns, `step` chosen so they never overlap.
    fn draw_ticks<DB: DrawingBackend>(&self, area: &Area<DB>, p: usize) -> Result<(), PlotError> {
        let l = &self.layout;
        let x0 = l.panel_x[p];
        let grid_h = (l.rows as f64 * l.cell_h).round() as i32;
        let grid_w = (l.cols as f64 * l.cell_w).round() as i32;
        let (row_name, col_name) = if self.heads_as_rows {
            ("head", "layer")
        } else {
            ("layer", "head")
        };
        let label_of = |axis_is_row: bool, i: usize| -> usize {
            match (self.heads_as_rows, axis_is_row) {
                (true, true) => i,
                (true, false) => self.layers.0 + i,
                (false, true) => self.layers.1 - i,
                (false, false) => i,
            }
        };
        let tick_h = text_size("0", TICK).1 as f64 + 2.0;
        let row_step = canvas::tick_step(l.cell_h, tick_h);
        for r in (0..l.rows).filter(|r| label_of(true, *r) % row_step == 0) {
            let y = l.origin_y + ((r as f64 + 0.5) * l.cell_h).round() as i32;
            let s = label_of(true, r).to_string();
            canvas::text(area, &s, (x0 - 4, y), TICK, Anchor::Right, BLACK_TEXT)?;
        }
        let widest = text_size(&(self.layers.1.max(self.n_heads)).to_string(), TICK).0 as f64;
        let col_step = canvas::tick_step(l.cell_w, widest + 4.0);
        let ty = l.origin_y + grid_h + 4;
        for c in (0..l.cols).filter(|c| label_of(false, *c) % col_step == 0) {
            let x = x0 + ((c as f64 + 0.5) * l.cell_w).round() as i32;
            let s = label_of(false, c).to_string();
            canvas::text(area, &s, (x, ty), TICK, Anchor::Top, BLACK_TEXT)?;
        }
        let axis_y = ty + tick_h as i32 + 4;
        canvas::text(
            area,
            col_name,
            (x0 + grid_w / 2, axis_y),
            SUBTITLE,
            Anchor::Top,
            BLACK_TEXT,
        )?;
        canvas::text_up(
            area,
            row_name,
            (x0 - 34, l.origin_y + grid_h / 2 - 14),
            SUBTITLE,
            BLACK_TEXT,
        )?;
        if !self.panels[p].title.is_empty() {
            let t = &self.panels[p].title;
            // Its share of the width: the grid and half a gap each side, within the figure.
            let (centre, half) = (x0 + grid_w / 2, (grid_w + 60) / 2);
            let room = half
                .min(centre - canvas::EDGE)
                .min(self.size.0 as i32 - canvas::EDGE - centre);
            let size = canvas::fitted(t, SUBTITLE, 2 * room);
            canvas::text(
                area,
                t,
                (centre, l.origin_y - 20),
                size,
                Anchor::Top,
                BLACK_TEXT,
            )?;
        }
        Ok(())
    }

    /// Under the axis title: each group's colour and name, and what grey means.
    fn draw_legend<DB: DrawingBackend>(&self, area: &Area<DB>, p: usize) -> Result<(), PlotError> {
        let l = &self.layout;
        let grid_h = (l.rows as f64 * l.cell_h).round() as i32;
        let (lo, hi) = self.layers;
        let missing = self.panels[p].values[lo..=hi].iter().any(|r| match r {
            None => true,
            Some(r) => r.iter().any(|v| !v.is_finite()),
        });
        let mut items: Vec<(String, Rgb, Swatch)> = self.panels[p]
            .groups
            .iter()
            .enumerate()
            .map(|(g, grp)| (grp.name.clone(), group_colour(g), Swatch::Outlined))
            .collect();
        if missing {
            items.push(("not computed".into(), canvas::MISSING, Swatch::Filled));
        }
        canvas::legend(area, (l.panel_x[p], l.origin_y + grid_h + 48), &items)
    }
}

fn same_shape(a: &RunRecord, b: &RunRecord) -> Result<(), PlotError> {
    if (a.n_layers, a.n_heads) != (b.n_layers, b.n_heads) {
        return Err(PlotError::Invalid(format!(
            "the results differ in shape: {}×{} and {}×{} (layers × heads)",
            a.n_layers, a.n_heads, b.n_layers, b.n_heads
        )));
    }
    Ok(())
}

/// Margins around each grid (title above, ticks and legend below, colour bar at the right),
/// then cells: square ones of a legible size by default, or whatever fills a given size.
/// A figure that sizes itself is at least `heads_w.0` wide (its headings at full size, see
/// [`canvas::headings_width`]); one of a given width at least `heads_w.1` (at the smallest
/// legible size, [`canvas::headings_min_width`]).
fn lay_out(
    (rows, cols): (usize, usize),
    n_panels: usize,
    panels: &[Panel],
    opts: &HeatmapOptions,
    (heads_w, heads_min_w): (i32, i32),
) -> Result<((u32, u32), Layout), PlotError> {
    let top = if panels.iter().any(|p| !p.title.is_empty()) {
        84
    } else {
        64
    };
    let (left, bottom, gap, right) = (56, 70, 70, 80);
    let default_cell = (720.0 / rows.max(cols * n_panels) as f64)
        .clamp(12.0, 40.0)
        .round();
    let fixed_w = left + right + (n_panels as i32 - 1) * gap;
    // A given size is bounded before the arithmetic below (2^31 would wrap to negative).
    for (what, v) in [("width", opts.width), ("height", opts.height)] {
        if let Some(v) = v.filter(|&v| v > canvas::MAX_PIXELS) {
            return Err(PlotError::Invalid(format!(
                "figure {what} {v}: at most {} pixels",
                canvas::MAX_PIXELS
            )));
        }
    }
    let (cell_w, width) = match opts.width {
        Some(w) if (w as i32) < heads_min_w => {
            return Err(PlotError::Invalid(format!(
                "figure width {w} is too narrow for the title and subtitle: at least \
                 {heads_min_w} pixels (or no width, and the figure sizes itself)"
            )))
        }
        Some(w) => ((w as i32 - fixed_w) as f64 / (cols * n_panels) as f64, w),
        None => {
            let min_w = text_size("0000", TICK).0 as f64 / 2.0;
            let c = default_cell.max(min_w);
            let total = fixed_w + (c * (cols * n_panels) as f64).round() as i32;
            // Long titles need room too.
            (c, total.max(560).max(heads_w) as u32)
        }
    };
    let (cell_h, height) = match opts.height {
        Some(h) => ((h as i32 - top - bottom) as f64 / rows as f64, h),
        None => (
            default_cell,
            (top + bottom + (default_cell * rows as f64) as i32) as u32,
        ),
    };
    if cell_w < 2.0 || cell_h < 2.0 {
        return Err(PlotError::Invalid(format!(
            "figure size {width}×{height} is too small for {rows}×{cols} cells"
        )));
    }
    // Centre the grids when the width was raised for the title.
    let grids_w = (cell_w * (cols * n_panels) as f64).round() as i32 + (n_panels as i32 - 1) * gap;
    let x0 = left.max((width as i32 - right - grids_w + left) / 2);
    let panel_w = (cell_w * cols as f64).round() as i32;
    let panel_x = [x0, x0 + panel_w + gap];
    let last = panel_x[n_panels.saturating_sub(1).min(1)];
    let layout = Layout {
        origin_y: top,
        panel_x,
        cell_w,
        cell_h,
        rows,
        cols,
        colour_bar_x: last + panel_w + 20,
    };
    Ok(((width, height), layout))
}
