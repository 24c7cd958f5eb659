//! Path-patching heatmaps like the paper's Figure 2(a): 100·r per sender (layer, head) on
//! RdBu centred at 0, a colour bar in %, cells that were not computed in grey, tagged groups
//! outlined, and a dot on every cell whose 95% interval holds 0 (its effect is not told from
//! noise). A run with MLP senders has one more column, `MLP`, on the same scale. One result,
//! two side by side on one scale, or their difference; activation-patching scans are drawn
//! by the same grid (`plot::scan`).
//!
//! Default layout: rows are layers (the last on top, as `headhunt show` prints them), columns
//! heads (or positions, or the MLP); `heads_as_rows` gives the paper's layout (x = layer,
//! y = head, head 0 on top).

use plotters::prelude::DrawingBackend;

use super::canvas::{self, figure, fill, group_colour, text_size, Anchor, Area, Rgb, Swatch};
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

/// One grid of values (in %) per [layer][column]; `None` rows were not computed.
#[derive(Debug, Clone)]
pub struct Panel {
    pub title: String,
    pub values: Vec<Option<Vec<f64>>>,
    /// Per [layer][column], whether the cell's 95% interval holds 0 (drawn with a dot); empty
    /// when the result has no intervals or they do not apply (a difference, raw effects).
    pub noise: Vec<Vec<bool>>,
    pub groups: Vec<HeadGroup>,
}

/// What the columns of a grid are: heads (a run with MLP senders has the MLP as one more
/// column), positions of a scan (labelled with their tokens), or a scan's one MLP column.
#[derive(Debug, Clone, PartialEq)]
pub struct Columns {
    /// The tick label of each column, in order.
    pub labels: Vec<String>,
    /// The axis name.
    pub axis: String,
    /// Heads among the columns (the first `n_heads`): what groups may name.
    pub n_heads: usize,
    /// The MLP column, labelled whatever the tick step.
    pub mlp: Option<usize>,
    /// Labels are tokens: under the columns they are drawn turned a quarter, so that a label
    /// wider than its column still has a column of its own.
    pub tokens: bool,
}

impl Columns {
    /// `n_heads` heads, and the MLP after them when `mlp`.
    pub fn heads(n_heads: usize, mlp: bool) -> Self {
        let mut labels: Vec<String> = (0..n_heads).map(|h| h.to_string()).collect();
        if mlp {
            labels.push("MLP".into());
        }
        Columns {
            labels,
            axis: if mlp { "head · MLP" } else { "head" }.into(),
            n_heads,
            mlp: mlp.then_some(n_heads),
            tokens: false,
        }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
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
    /// The widest row label, and how far the column labels reach below the grid.
    pub row_label_w: i32,
    pub col_label_h: i32,
}

#[derive(Debug, Clone)]
pub struct Heatmap {
    pub size: (u32, u32),
    pub title: String,
    pub subtitle: String,
    pub panels: Vec<Panel>,
    /// What a column is, and its labels.
    pub columns: Columns,
    /// Sender layers shown, `lo..=hi`.
    pub layers: (usize, usize),
    pub heads_as_rows: bool,
    /// Half-width of the scale (in % for r).
    pub range: f64,
    pub quantity: Quantity,
    pub layout: Layout,
}
figure!(Heatmap);

/// The words of the legend and subtitle for the dots.
pub const NOISE_NOTE: &str = "dot: 95% interval holds 0";

/// The model and data of a record, for titles.
pub fn describe(rec: &RunRecord) -> String {
    let note = rec
        .note
        .as_deref()
        .map(|n| n.strip_prefix("imported from the paper: ").unwrap_or(n));
    let text = describe_source(rec.model.as_ref(), rec.data.as_ref(), note, rec.metric);
    // Senders patched at some positions only: a figure must not read as the paper's sweep.
    match &rec.sender_positions {
        Some(set) => format!("{text} · senders at {set}"),
        None => text,
    }
}

/// The model (its name, else `note`, cut to its last component) and the data, and another
/// metric than the paper's, which says so in every figure of it.
pub fn describe_source(
    model: Option<&crate::results::ModelInfo>,
    data: Option<&crate::results::DataInfo>,
    note: Option<&str>,
    metric: crate::patching::Metric,
) -> String {
    let model = match (model, note) {
        (Some(m), _) => super::model_name(m),
        (None, Some(n)) => super::path_free(n),
        (None, None) => "unknown model".into(),
    };
    let text = match data {
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
    };
    match metric {
        crate::patching::Metric::LogitDiff => text,
        m => format!("{text} · metric {m}"),
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

    /// The MLP senders' cells of `rec` [layer]: `None` where not computed or unreachable (an
    /// MLP cannot reach its own layer's resid_mid), and for a run without MLP senders.
    pub fn mlp(self, rec: &RunRecord) -> Vec<Option<f64>> {
        (0..rec.n_layers)
            .map(|l| {
                let r = rec.mlp_r(l)?;
                if !rec.receiver.mlp_reachable_from(l) {
                    return None;
                }
                Some(match self {
                    Quantity::RelativePercent => 100.0 * r,
                    Quantity::RawLogits => {
                        let p = rec.mlp_patched_logit_diff.as_ref()?.get(l).copied()??;
                        p - rec.contrast_logit_diff?
                    }
                })
            })
            .collect()
    }

    /// The cells of `rec` [layer][column]: its heads, and its MLP as one more column when
    /// `mlp` (NaN, drawn as not computed, where the record has none at that layer).
    pub fn cells(self, rec: &RunRecord, mlp: bool) -> Vec<Option<Vec<f64>>> {
        let heads = self.rows(rec);
        if !mlp {
            return heads;
        }
        heads
            .into_iter()
            .zip(self.mlp(rec))
            .map(|(row, m)| match (row, m) {
                (None, None) => None,
                (row, m) => {
                    let mut v = row.unwrap_or_else(|| vec![f64::NAN; rec.n_heads]);
                    v.push(m.unwrap_or(f64::NAN));
                    Some(v)
                }
            })
            .collect()
    }

    /// Per [layer][column] of [`Quantity::cells`], whether the cell's 95% interval holds 0;
    /// empty where no dot can be drawn: a record without intervals, or raw effects (the
    /// intervals are of r, which is ill-conditioned there).
    pub fn noise(self, rec: &RunRecord, mlp: bool) -> Vec<Vec<bool>> {
        if self == Quantity::RawLogits || !has_intervals(rec) {
            return Vec::new();
        }
        (0..rec.n_layers)
            .map(|l| {
                let mut row: Vec<bool> = (0..rec.n_heads).map(|h| rec.holds_zero(l, h)).collect();
                if mlp {
                    row.push(mlp_holds_zero(rec, l));
                }
                row
            })
            .collect()
    }
}

/// Whether `rec` carries intervals (the paper's imported files hold r only).
pub fn has_intervals(rec: &RunRecord) -> bool {
    rec.relative_ci.is_some() || rec.mlp_relative_ci.is_some()
}

/// [`RunRecord::holds_zero`] for layer `l`'s MLP: its interval holds 0 and it is not masked.
pub fn mlp_holds_zero(rec: &RunRecord, l: usize) -> bool {
    let masked = l < rec.begin_layer || !rec.receiver.mlp_reachable_from(l);
    let iv = rec.mlp_relative_ci.as_ref().and_then(|c| *c.get(l)?);
    !masked && matches!(iv, Some([Some(lo), Some(hi)]) if lo <= 0.0 && hi >= 0.0)
}

/// What the subtitle says of the dots, for a figure of `recs` in `q`: that they mark cells
/// whose interval holds 0, or why no cell is marked.
pub fn noise_note(recs: &[&RunRecord], q: Quantity) -> String {
    let with = recs.iter().filter(|r| has_intervals(r)).count();
    if with == 0 {
        let files = if recs.len() > 1 {
            "the files"
        } else {
            "the file"
        };
        format!("no intervals in {files}: noise not marked")
    } else if q == Quantity::RawLogits {
        "noise not marked (intervals are of r)".into()
    } else if with < recs.len() {
        format!("{NOISE_NOTE} (where a file has intervals)")
    } else {
        NOISE_NOTE.into()
    }
}

/// Whether any of `recs` has MLP senders: its figure then has the MLP column.
pub fn has_mlp(recs: &[&RunRecord]) -> bool {
    recs.iter().any(|r| r.mlp_relative.is_some())
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
        let mlp = has_mlp(&[rec]);
        let panel = Panel {
            title: String::new(),
            values: q.cells(rec, mlp),
            noise: q.noise(rec, mlp),
            groups: [rec.groups.clone(), opts.groups.clone()].concat(),
        };
        let title = format!("Path patching to {}", rec.receiver_label);
        let sub = with_raw_note(describe(rec), rec, q);
        let sub = format!("{sub} · {}", noise_note(&[rec], q));
        let cols = Columns::heads(rec.n_heads, mlp);
        Heatmap::build(title, sub, vec![panel], (rec.n_layers, cols), q, opts)
    }

    /// Two results side by side on one scale. When either has MLP senders both panels have
    /// the MLP column (not computed in the one without).
    pub fn pair(a: &RunRecord, b: &RunRecord, opts: &HeatmapOptions) -> Result<Self, PlotError> {
        same_shape(a, b)?;
        let q = Quantity::of(&[a, b]);
        let mlp = has_mlp(&[a, b]);
        let panel = |r: &RunRecord| Panel {
            title: format!("{} — {}", r.receiver_label, describe(r)),
            values: q.cells(r, mlp),
            noise: q.noise(r, mlp),
            groups: [r.groups.clone(), opts.groups.clone()].concat(),
        };
        let title = format!(
            "Path patching to {} and to {}",
            a.receiver_label, b.receiver_label
        );
        let sub = with_raw_note(noise_note(&[a, b], q), a, q);
        let cols = Columns::heads(a.n_heads, mlp);
        let panels = vec![panel(a), panel(b)];
        Heatmap::build(title, sub, panels, (a.n_layers, cols), q, opts)
    }

    /// The difference `a − b` (in percentage points) where both were computed, the MLP
    /// column too when either has MLP senders. A difference has no interval (the two runs'
    /// intervals do not give one), so no cell is dotted and the subtitle says so.
    pub fn diff(a: &RunRecord, b: &RunRecord, opts: &HeatmapOptions) -> Result<Self, PlotError> {
        same_shape(a, b)?;
        let q = Quantity::of(&[a, b]);
        let mlp = has_mlp(&[a, b]);
        let values = q
            .cells(a, mlp)
            .into_iter()
            .zip(q.cells(b, mlp))
            .map(|(x, y)| match (x, y) {
                (Some(x), Some(y)) => Some(x.iter().zip(&y).map(|(p, q)| p - q).collect()),
                _ => None,
            })
            .collect();
        let panel = Panel {
            title: String::new(),
            values,
            noise: Vec::new(),
            groups: opts.groups.clone(),
        };
        let title = format!(
            "Difference: {} minus {}",
            a.receiver_label, b.receiver_label
        );
        let sub = format!("{}  minus  {}", describe(a), describe(b));
        let sub = format!(
            "{} · no intervals for a difference: noise not marked",
            with_raw_note(sub, a, q)
        );
        let cols = Columns::heads(a.n_heads, mlp);
        Heatmap::build(title, sub, vec![panel], (a.n_layers, cols), q, opts)
    }

    /// The figure of `panels`, each `n_layers` rows of `columns`, checked against that shape
    /// (a record built in memory must fail in words, never panic).
    pub fn build(
        title: String,
        subtitle: String,
        panels: Vec<Panel>,
        (n_layers, columns): (usize, Columns),
        quantity: Quantity,
        opts: &HeatmapOptions,
    ) -> Result<Self, PlotError> {
        let n_cols = columns.len();
        if n_layers == 0 || n_cols == 0 {
            return Err(PlotError::Invalid(format!(
                "a result of {n_layers} layers × {n_cols} columns: nothing to draw"
            )));
        }
        let bad = |p: &Panel| {
            p.values.len() != n_layers
                || p.values.iter().flatten().any(|r| r.len() != n_cols)
                || !(p.noise.is_empty()
                    || p.noise.len() == n_layers && p.noise.iter().all(|r| r.len() == n_cols))
        };
        if let Some(p) = panels.iter().find(|p| bad(p)) {
            let name = if p.title.is_empty() {
                "the result"
            } else {
                &p.title
            };
            return Err(PlotError::Invalid(format!(
                "{name}: the cells are not {n_layers} layers × {n_cols} columns ({})",
                columns.axis
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
            check_groups(&p.groups, n_layers, columns.n_heads)?;
        }
        let shown = panels.iter().flat_map(|p| {
            p.values[layers.0..=layers.1]
                .iter()
                .flatten()
                .flat_map(|r| r.iter().copied())
        });
        let range = opts.range.unwrap_or_else(|| auto_range(shown));
        let mut fig = Heatmap {
            size: (0, 0),
            title,
            subtitle,
            panels,
            columns,
            layers,
            heads_as_rows: opts.heads_as_rows,
            range,
            quantity,
            layout: Layout::default(),
        };
        fig.lay_out(opts)?;
        Ok(fig)
    }

    /// Sizes the figure and places its grids (see [`lay_out`]).
    fn lay_out(&mut self, opts: &HeatmapOptions) -> Result<(), PlotError> {
        let n_shown = self.layers.1 - self.layers.0 + 1;
        let n_cols = self.columns.len();
        let (rows, cols) = if self.heads_as_rows {
            (n_cols, n_shown)
        } else {
            (n_shown, n_cols)
        };
        let heads_w = (
            canvas::headings_width(&self.title, &self.subtitle),
            canvas::headings_min_width(&self.title, &self.subtitle),
        );
        let widest = |labels: &[(usize, String, bool)]| {
            labels
                .iter()
                .map(|t| text_size(&t.1, TICK).0)
                .max()
                .unwrap_or(0) as i32
        };
        let tick_h = text_size("0", TICK).1 as i32;
        let row_label_w = widest(&self.ticks(true));
        let col_label_h = if self.columns.tokens && !self.heads_as_rows {
            widest(&self.ticks(false)).max(tick_h)
        } else {
            tick_h
        };
        let labels = (row_label_w, col_label_h);
        let (size, layout) = lay_out((rows, cols), &self.panels, opts, heads_w, labels)?;
        self.size = size;
        self.layout = layout;
        Ok(())
    }

    /// The (row, column) of sender (layer, column), if shown.
    pub fn cell_index(&self, layer: usize, col: usize) -> Option<(usize, usize)> {
        let (lo, hi) = self.layers;
        if layer < lo || layer > hi || col >= self.columns.len() {
            return None;
        }
        Some(if self.heads_as_rows {
            (col, layer - lo)
        } else {
            (hi - layer, col)
        })
    }

    /// Pixel rectangle `[(x0, y0), (x1, y1))` of sender (layer, column) in panel `p`: a head,
    /// or with `col` the MLP column's index ([`Columns::mlp`]), the layer's MLP.
    pub fn cell_rect(
        &self,
        p: usize,
        layer: usize,
        col: usize,
    ) -> Option<((i32, i32), (i32, i32))> {
        let (r, c) = self.cell_index(layer, col)?;
        let l = &self.layout;
        let x = |c: usize| l.panel_x[p] + (c as f64 * l.cell_w).round() as i32;
        let y = |r: usize| l.origin_y + (r as f64 * l.cell_h).round() as i32;
        Some(((x(c), y(r)), (x(c + 1), y(r + 1))))
    }

    /// The centre and radius of the dot drawn on cell (layer, column) of panel `p` when its
    /// interval holds 0: small enough to leave the cell's colour readable around it.
    pub fn dot(&self, p: usize, layer: usize, col: usize) -> Option<((i32, i32), i32)> {
        let ((x0, y0), (x1, y1)) = self.cell_rect(p, layer, col)?;
        let r = (((x1 - x0).min(y1 - y0) as f64) / 7.0)
            .round()
            .clamp(1.0, 4.0) as i32;
        Some((((x0 + x1) / 2, (y0 + y1) / 2), r))
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
            for c in 0..self.columns.len() {
                let v = panel.values[l].as_ref().map(|r| r[c]);
                let (a, b) = self.cell_rect(p, l, c).expect("shown cell");
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
        for (l, c) in self.noise_cells(p) {
            if let Some((centre, r)) = self.dot(p, l, c) {
                dot(area, centre, r)?;
            }
        }
        self.draw_ticks(area, p)?;
        self.draw_legend(area, p)
    }

    /// The shown cells of panel `p` drawn with a dot: coloured (computed, finite) cells whose
    /// interval holds 0.
    pub fn noise_cells(&self, p: usize) -> Vec<(usize, usize)> {
        let panel = &self.panels[p];
        let (lo, hi) = self.layers;
        let mut out = Vec::new();
        for (l, row) in panel.noise.iter().enumerate().take(hi + 1).skip(lo) {
            for (c, &noisy) in row.iter().enumerate() {
                let v = panel.values[l].as_ref().map(|r| r[c]);
                if noisy && v.is_some_and(f64::is_finite) {
                    out.push((l, c));
                }
            }
        }
        out
    }

    /// The tick labels of the rows (`rows`) or the columns, in display order: (the number a
    /// tick step is tested on, the text, drawn whatever the step).
    fn ticks(&self, rows: bool) -> Vec<(usize, String, bool)> {
        let (lo, hi) = self.layers;
        if rows != self.heads_as_rows {
            let layers: Vec<usize> = if rows {
                (lo..=hi).rev().collect()
            } else {
                (lo..=hi).collect()
            };
            return layers
                .into_iter()
                .map(|l| (l, l.to_string(), false))
                .collect();
        }
        let c = &self.columns;
        c.labels
            .iter()
            .enumerate()
            .map(|(i, s)| (i, s.clone(), Some(i) == c.mlp))
            .collect()
    }

    /// Tick labels every `step` rows and columns, `step` chosen so they never overlap (a
    /// label drawn whatever the step, the MLP's, takes the place of a neighbour it would
    /// overlap).
    fn draw_ticks<DB: DrawingBackend>(&self, area: &Area<DB>, p: usize) -> Result<(), PlotError> {
        let l = &self.layout;
        let x0 = l.panel_x[p];
        let grid_h = (l.rows as f64 * l.cell_h).round() as i32;
        let grid_w = (l.cols as f64 * l.cell_w).round() as i32;
        let tick_h = text_size("0", TICK).1 as f64 + 2.0;
        let rows = self.ticks(true);
        let row_step = canvas::tick_step(l.cell_h, tick_h);
        let row_extent = |_: &str| tick_h;
        for (r, s) in spaced(&rows, row_step, l.cell_h, &row_extent) {
            let y = l.origin_y + ((r as f64 + 0.5) * l.cell_h).round() as i32;
            canvas::text(area, &s, (x0 - 4, y), TICK, Anchor::Right, BLACK_TEXT)?;
        }
        let cols = self.ticks(false);
        let turned = self.columns.tokens && !self.heads_as_rows;
        let width = |s: &str| text_size(s, TICK).0 as f64 + 4.0;
        let col_extent: &dyn Fn(&str) -> f64 = if turned { &row_extent } else { &width };
        let widest = cols
            .iter()
            .filter(|t| !t.2)
            .map(|t| col_extent(&t.1))
            .fold(0.0, f64::max);
        let col_step = canvas::tick_step(l.cell_w, widest);
        let ty = l.origin_y + grid_h + 4;
        for (c, s) in spaced(&cols, col_step, l.cell_w, col_extent) {
            let x = x0 + ((c as f64 + 0.5) * l.cell_w).round() as i32;
            if turned {
                canvas::text_up(area, &s, (x, ty), TICK, BLACK_TEXT)?;
            } else {
                canvas::text(area, &s, (x, ty), TICK, Anchor::Top, BLACK_TEXT)?;
            }
        }
        let (row_name, col_name) = if self.heads_as_rows {
            (self.columns.axis.as_str(), "layer")
        } else {
            ("layer", self.columns.axis.as_str())
        };
        let axis_y = ty + l.col_label_h + 6;
        let at = (x0 + grid_w / 2, axis_y);
        canvas::text(area, col_name, at, SUBTITLE, Anchor::Top, BLACK_TEXT)?;
        let axis_x = x0 - 34.max(l.row_label_w + 18);
        let at = (axis_x, l.origin_y + grid_h / 2 - 14);
        canvas::text_up(area, row_name, at, SUBTITLE, BLACK_TEXT)?;
        self.draw_panel_title(area, p)
    }

    /// A panel's heading over its grid, drawn smaller where it would not fit its share.
    fn draw_panel_title<DB: DrawingBackend>(
        &self,
        area: &Area<DB>,
        p: usize,
    ) -> Result<(), PlotError> {
        let t = &self.panels[p].title;
        if t.is_empty() {
            return Ok(());
        }
        let l = &self.layout;
        let (x0, grid_w) = (l.panel_x[p], (l.cols as f64 * l.cell_w).round() as i32);
        // Its share of the width: the grid and half a gap each side, within the figure.
        let (centre, half) = (x0 + grid_w / 2, (grid_w + 60) / 2);
        let room = half
            .min(centre - canvas::EDGE)
            .min(self.size.0 as i32 - canvas::EDGE - centre);
        let size = canvas::fitted(t, SUBTITLE, 2 * room);
        let at = (centre, l.origin_y - 20);
        canvas::text(area, t, at, size, Anchor::Top, BLACK_TEXT)
    }

    /// Under the axis title: what the dot means (when a cell has one), each group's colour
    /// and name, and what grey means.
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
        let deeper = l.col_label_h - text_size("0", TICK).1 as i32;
        let (mut x, y) = (l.panel_x[p], l.origin_y + grid_h + 48 + deeper.max(0));
        if !self.noise_cells(p).is_empty() {
            fill(area, (x, y - 6), (x + 12, y + 6), diverging(0.0, 1.0))?;
            dot(area, (x + 6, y), 3)?;
            let s = "95% interval holds 0";
            canvas::text(area, s, (x + 16, y), TICK, Anchor::Left, BLACK_TEXT)?;
            x += 16 + text_size(s, TICK).0 as i32 + 14;
        }
        canvas::legend(area, (x, y), &items)
    }
}

/// The dot on a cell whose interval holds 0: dark, in a white ring, so that it reads on the
/// darkest red and blue as on the palest cells.
pub fn dot<DB: DrawingBackend>(area: &Area<DB>, c: (i32, i32), r: i32) -> Result<(), PlotError> {
    use plotters::prelude::{Circle, Color};
    let ring = Circle::new(c, r + 1, canvas::color(DOT_RING).filled());
    area.draw(&ring).map_err(canvas::draw_err)?;
    let centre = Circle::new(c, r, canvas::color(DOT).filled());
    area.draw(&centre).map_err(canvas::draw_err)
}

/// The dot's colours.
pub const DOT: Rgb = (30, 30, 30);
pub const DOT_RING: Rgb = (255, 255, 255);

/// Of `ticks` (display order, one per `pitch` pixels), those drawn: each whose number is a
/// multiple of `step`, and each marked always; a stepped one that would overlap an always
/// one (`extent` pixels along the axis each) is left out.
fn spaced(
    ticks: &[(usize, String, bool)],
    step: usize,
    pitch: f64,
    extent: &dyn Fn(&str) -> f64,
) -> Vec<(usize, String)> {
    let centre = |i: usize| (i as f64 + 0.5) * pitch;
    let always: Vec<(f64, f64)> = ticks
        .iter()
        .enumerate()
        .filter(|(_, t)| t.2)
        .map(|(i, t)| (centre(i), extent(&t.1) / 2.0))
        .collect();
    ticks
        .iter()
        .enumerate()
        .filter(|(i, t)| {
            t.2 || (t.0 % step == 0
                && always
                    .iter()
                    .all(|&(c, h)| (centre(*i) - c).abs() >= h + extent(&t.1) / 2.0))
        })
        .map(|(i, t)| (i, t.1.clone()))
        .collect()
}

/// `subtitle`, and for raw effects what the cells are instead of r.
fn with_raw_note(subtitle: String, rec: &RunRecord, q: Quantity) -> String {
    match q {
        Quantity::RawLogits => {
            let (x, unit) = (rec.metric.short(), rec.metric.unit());
            format!(
                "{subtitle} · cells: patched − {x}_c in {unit} (r is ill-conditioned: {x}_c ≈ {x}_n)"
            )
        }
        Quantity::RelativePercent => subtitle,
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

impl Default for Layout {
    fn default() -> Self {
        Layout {
            origin_y: 0,
            panel_x: [0, 0],
            cell_w: 1.0,
            cell_h: 1.0,
            rows: 0,
            cols: 0,
            colour_bar_x: 0,
            row_label_w: 0,
            col_label_h: 0,
        }
    }
}

/// Margins around each grid (title above, ticks and legend below, colour bar at the right),
/// then cells: square ones of a legible size by default, or whatever fills a given size.
/// A figure that sizes itself is at least `heads_w.0` wide (its headings at full size, see
/// [`canvas::headings_width`]); one of a given width at least `heads_w.1` (at the smallest
/// legible size, [`canvas::headings_min_width`]). The margins widen for wide row labels and
/// deepen for turned column labels (`labels`: their width and depth).
fn lay_out(
    (rows, cols): (usize, usize),
    panels: &[Panel],
    opts: &HeatmapOptions,
    (heads_w, heads_min_w): (i32, i32),
    (row_label_w, col_label_h): (i32, i32),
) -> Result<((u32, u32), Layout), PlotError> {
    let n_panels = panels.len();
    let top = if panels.iter().any(|p| !p.title.is_empty()) {
        84
    } else {
        64
    };
    let tick_h = text_size("0", TICK).1 as i32;
    let left = 56.max(row_label_w + 18 + 22);
    let (bottom, right) = (70 + (col_label_h - tick_h).max(0), 80);
    let gap = 70.max(left);
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
        row_label_w,
        col_label_h,
    };
    Ok(((width, height), layout))
}
