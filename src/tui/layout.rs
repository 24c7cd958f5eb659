//! Where things go on screen, computed before anything is drawn: the screens' areas, the
//! heatmap's cell geometry, the help's columns, and the colour range a grid is drawn with.
//! Pure functions of sizes, settings and records. The state (`app`) reads them to move
//! cursors and scroll as the screen shows them, and the view draws by them; this module sits
//! below both and names neither (`tests/layering.rs`), so the two cannot drift apart and the
//! state never calls into the drawing.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};

use crate::results::text::{cell_measure, cell_value, CellMeasure};
use crate::results::RunRecord;

/// Colour range of the heatmap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeMode {
    /// ± the largest |r| shown.
    Auto,
    /// ±20%, as the paper's cropped figures.
    Fixed20,
}

/// How layers and heads map to the screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Orientation {
    /// Whichever fits the terminal (layers as columns, like the paper, when it fits).
    Auto,
    LayersAsRows,
    LayersAsColumns,
}

/// Where the heatmap's cells are on screen (computed from the state and the terminal size by
/// [`plan`], the same for drawing, keys and the mouse).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeatmapGeometry {
    pub x: u16,
    pub y: u16,
    pub cell_w: u16,
    pub layers_as_rows: bool,
    /// Layers / heads shown, in screen order along each axis.
    pub n_rows: u16,
    pub n_cols: u16,
    /// Index (layer or head) of the first row and first column.
    pub row_first: usize,
    pub col_first: usize,
    /// Rows count down (top = highest layer).
    pub rows_descending: bool,
    /// Rows / columns in all (shown or scrolled off), and how many are scrolled off before.
    pub rows_total: u16,
    pub cols_total: u16,
    pub row_off: u16,
    pub col_off: u16,
}

impl HeatmapGeometry {
    /// (layer, head) of the cell at screen row `r`, column `c` of the grid.
    pub fn cell_at(&self, r: usize, c: usize) -> (usize, usize) {
        let row = if self.rows_descending {
            self.row_first - r
        } else {
            self.row_first + r
        };
        let col = self.col_first + c;
        if self.layers_as_rows {
            (row, col)
        } else {
            (col, row)
        }
    }
}

/// The smallest auto colour range: r (fraction) and raw effects (logits). Below it, noise
/// would be drawn as saturated as a real effect.
pub const AUTO_FLOOR_R: f64 = 0.05;
pub const AUTO_FLOOR_RAW: f64 = 0.5;

/// The colour range in force, and why.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColorRange {
    /// Colours saturate at ±range (fraction for r, logits for raw effects).
    pub range: f64,
    pub mode: RangeMode,
    pub measure: CellMeasure,
    /// The largest |value| shown (before the floor).
    pub largest: f64,
}

impl ColorRange {
    /// One range for several grids (side by side: equal colours mean equal values).
    pub fn max(self, other: ColorRange) -> ColorRange {
        ColorRange {
            range: self.range.max(other.range),
            largest: self.largest.max(other.largest),
            ..self
        }
    }

    pub fn floor(&self) -> f64 {
        match self.measure {
            CellMeasure::R => AUTO_FLOOR_R,
            CellMeasure::RawEffect => AUTO_FLOOR_RAW,
        }
    }
}

/// The largest |value| of `rec` in `layers`, under its measure.
pub fn largest_value(rec: &RunRecord, layers: (usize, usize)) -> f64 {
    let measure = cell_measure(rec);
    let mut m: f64 = 0.0;
    for l in layers.0..=layers.1.min(rec.n_layers.saturating_sub(1)) {
        for h in 0..rec.n_heads {
            if let Some(v) = shown_value(rec, measure, l, h) {
                m = m.max(v.abs());
            }
        }
    }
    m
}

/// Colour range of a record: ± the largest |value| shown (never below the floor), or fixed.
pub fn color_range(rec: &RunRecord, mode: RangeMode, layers: (usize, usize)) -> ColorRange {
    let measure = cell_measure(rec);
    let largest = largest_value(rec, layers);
    let mut c = ColorRange {
        range: 0.0,
        mode,
        measure,
        largest,
    };
    c.range = match (mode, measure) {
        (RangeMode::Fixed20, CellMeasure::R) => 0.2,
        (RangeMode::Fixed20, CellMeasure::RawEffect) => 1.0,
        (RangeMode::Auto, _) => largest.max(c.floor()),
    };
    c
}

/// The value a cell shows, if any: senders that cannot reach the receiver carry no
/// information and are drawn like rows that were not computed, never as a computed 0.
pub fn shown_value(rec: &RunRecord, measure: CellMeasure, l: usize, h: usize) -> Option<f64> {
    cell_value(rec, measure, l, h).filter(|v| v.is_finite() && rec.receiver.reachable_from(l))
}

/// Characters of a cell `cw` wide: (leading gap, number width, trailing mark). Cells of 4 or
/// more keep a gap before the number and a column for the group / selection mark after it,
/// so a mark never runs into the next cell's number.
pub fn cell_parts(cw: u16) -> (u16, u16, u16) {
    match cw {
        0..=2 => (0, cw, 0),
        3 => (1, 2, 0),
        _ => (1, cw - 2, 1),
    }
}

/// Width of the row labels left of the grid.
pub const LABEL_W: u16 = 5;

/// The narrowest cell with a column for a group or selection mark (`cell_parts`).
pub const MARKED_CELL_W: u16 = 4;

/// The narrowest cell that prints a number (a gap and two characters, `cell_parts`):
/// narrower cells would be colour only, so a grid that large scrolls instead.
pub const NUMBER_CELL_W: u16 = 3;

/// How a grid is laid out, besides its area and record: what the view's settings say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridView {
    pub orientation: Orientation,
    /// The layers shown of the record (the crop within it, or all).
    pub layers: (usize, usize),
    /// Whether group or selection marks are drawn on it (cells then keep a mark column).
    pub marked: bool,
}

/// Orientation and cell width for `area`. In Auto: the orientation whose cells print the
/// most precision, then the one that needs no scrolling, then layers as columns (the paper's).
/// Cells are at least `NUMBER_CELL_W` wide, so that every cell prints its number (a 32×32
/// grid at 80×24 scrolls, with arrows, instead of drawing colour-only cells). Once a head is
/// marked, at least `MARKED_CELL_W`, so that every group shows its own mark and not only a
/// colour: a 3-column cell prints the same two characters as a 4-column one, minus the mark.
/// The orientation is chosen on the unwidened cells and as if nothing were marked, so that
/// tagging a head never turns the grid. (Only a grid narrower than one cell has narrower
/// cells.)
fn orientation_and_width(
    orientation: Orientation,
    area: Rect,
    n_layers: usize,
    n_heads: usize,
    marked: bool,
) -> (bool, u16) {
    let width = area.width.saturating_sub(LABEL_W) as usize;
    let height = area.height.saturating_sub(1) as usize; // header row
    let w = |n: usize| (width / n.max(1)).clamp(1, 7) as u16;
    let (layers_as_rows, cw) = match orientation {
        Orientation::LayersAsColumns => (false, w(n_layers)),
        Orientation::LayersAsRows => (true, w(n_heads)),
        Orientation::Auto => {
            let (cols_w, rows_w) = (w(n_layers), w(n_heads));
            let score = |cw: u16, fits: bool| (cell_parts(cw).1, fits);
            if score(rows_w, n_layers <= height) > score(cols_w, n_heads <= height) {
                (true, rows_w)
            } else {
                (false, cols_w)
            }
        }
    };
    let least = if marked { MARKED_CELL_W } else { NUMBER_CELL_W };
    if width >= least as usize {
        (layers_as_rows, cw.max(least))
    } else {
        (layers_as_rows, cw)
    }
}

/// Where the cells of `rec` go in `area`: orientation, cell width, and the scroll position
/// that keeps `cursor` on screen. `None` when the area is too small for a grid.
/// `view.marked`: whether groups or a selection are drawn on `rec` (they are the model's
/// they were tagged on: a comparison of another model's results draws none).
pub fn plan(
    rec: &RunRecord,
    area: Rect,
    cursor: Option<(usize, usize)>,
    view: GridView,
) -> Option<HeatmapGeometry> {
    if area.width < 8 || area.height < 3 || rec.n_layers == 0 || rec.n_heads == 0 {
        return None;
    }
    let (lo, hi) = view.layers;
    let n_layers = hi - lo + 1;
    let (layers_as_rows, cw) =
        orientation_and_width(view.orientation, area, n_layers, rec.n_heads, view.marked);
    let avail_rows = area.height.saturating_sub(1) as usize;
    let avail_cols = (area.width.saturating_sub(LABEL_W) / cw.max(1)) as usize;
    let (rows_total, cols_total) = if layers_as_rows {
        (n_layers, rec.n_heads)
    } else {
        (rec.n_heads, n_layers)
    };
    let (n_rows, n_cols) = (rows_total.min(avail_rows), cols_total.min(avail_cols));
    // Rows: layers descending (top = last layer) or heads ascending.
    let (cur_row, cur_col) = match cursor {
        Some((l, h)) if layers_as_rows => (hi.saturating_sub(l), h),
        Some((l, h)) => (h, l.saturating_sub(lo)),
        None => (0, 0),
    };
    let off = |cur: usize, n: usize| if cur >= n { cur + 1 - n } else { 0 };
    let (row_off, col_off) = (off(cur_row, n_rows), off(cur_col, n_cols));
    Some(HeatmapGeometry {
        x: area.x + LABEL_W,
        y: area.y + 1,
        cell_w: cw,
        layers_as_rows,
        n_rows: n_rows as u16,
        n_cols: n_cols as u16,
        row_first: if layers_as_rows {
            hi - row_off
        } else {
            row_off
        },
        col_first: if layers_as_rows {
            col_off
        } else {
            lo + col_off
        },
        rows_descending: layers_as_rows,
        rows_total: rows_total as u16,
        cols_total: cols_total as u16,
        row_off: row_off as u16,
        col_off: col_off as u16,
    })
}

/// The parts of the heatmap screen: info line, grid, legend, and the readout on the right
/// (when the terminal is wide enough).
pub struct HeatmapAreas {
    pub info: Rect,
    pub grid: Rect,
    pub legend: Rect,
    pub side: Option<Rect>,
}

/// The screen without its title line and status bar.
pub fn main_area(full: Rect) -> Option<Rect> {
    if full.width < 4 || full.height < 2 {
        return None;
    }
    let [_, main, _] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(full);
    Some(main)
}

/// The heatmap screen's layout for a terminal of `full` size.
pub fn heatmap_areas(full: Rect) -> Option<HeatmapAreas> {
    let area = main_area(full)?;
    let side = if area.width >= 64 {
        30.min(area.width / 3)
    } else {
        0
    };
    let [left, right] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(side)]).areas(area);
    let [info, grid, legend] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(2),
    ])
    .areas(left);
    Some(HeatmapAreas {
        info,
        grid,
        legend,
        side: (side > 0).then_some(right),
    })
}

/// The help box for a screen in `area`: its columns of rows (a key, or blank on a
/// description's continuation, and the text), wrapped to the column so that no description is
/// cut. An entry is never split between columns, and columns are `HELP_GAP` apart so that one
/// column's text never touches the next column's keys. The key handler uses the plan too, so
/// that scrolling stops where the last row shows.
pub struct HelpPlan {
    pub title: &'static str,
    pub columns: Vec<Vec<(String, String)>>,
    /// Rows of the longest column.
    pub per_col: usize,
    /// Rows shown per column.
    pub shown: usize,
    pub key_w: usize,
    pub col_w: usize,
    pub width: u16,
}

/// Columns between two help columns.
pub const HELP_GAP: usize = 3;

/// The help's `table` is a screen's title and (keys, what they do) lines.
pub fn help_plan(table: (&'static str, Vec<(&'static str, &'static str)>), area: Rect) -> HelpPlan {
    let (title, keys) = table;
    let width = area.width.min(100);
    let rows_avail = area.height.saturating_sub(2) as usize;
    // Two spaces between the longest key and its text.
    let key_w = keys
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0)
        + 2;
    let inner = width.saturating_sub(2) as usize;
    let entries = |col_w: usize| -> Vec<Vec<(String, String)>> {
        keys.iter()
            .map(|(k, d)| {
                let parts = wrap_words(d, col_w.saturating_sub(key_w));
                let key = |i: usize| if i == 0 { k.to_string() } else { String::new() };
                parts
                    .into_iter()
                    .enumerate()
                    .map(|(i, t)| (key(i), t))
                    .collect()
            })
            .collect()
    };
    // One column when the keys fit the height (or the box is narrow), else two.
    let one = entries(inner.max(key_w + 8));
    let one_rows: usize = one.iter().map(Vec::len).sum();
    let columns = if one_rows <= rows_avail || width < 60 {
        vec![one.concat()]
    } else {
        let col_w = ((inner.saturating_sub(HELP_GAP)) / 2).max(key_w + 8);
        split_in_two(entries(col_w))
    };
    let col_w = if columns.len() == 1 {
        inner.max(key_w + 8)
    } else {
        ((inner.saturating_sub(HELP_GAP)) / 2).max(key_w + 8)
    };
    let per_col = columns.iter().map(Vec::len).max().unwrap_or(0);
    HelpPlan {
        title,
        columns,
        per_col,
        shown: per_col.min(rows_avail),
        key_w,
        col_w,
        width,
    }
}

/// Whole entries in two columns, split where the longer column is shortest.
fn split_in_two(entries: Vec<Vec<(String, String)>>) -> Vec<Vec<(String, String)>> {
    let total: usize = entries.iter().map(Vec::len).sum();
    let mut best = (usize::MAX, 0);
    let mut first = 0;
    for k in 0..=entries.len() {
        let longer = first.max(total - first);
        if longer < best.0 {
            best = (longer, k);
        }
        if k < entries.len() {
            first += entries[k].len();
        }
    }
    let mut left = entries;
    let right = left.split_off(best.1);
    vec![left.concat(), right.concat()]
}

/// `text` in lines of at most `w` characters, broken at spaces (a word longer than `w` is
/// broken inside).
pub fn wrap_words(text: &str, w: usize) -> Vec<String> {
    let w = w.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let mut word = word.to_string();
        while word.chars().count() > w {
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            let head: String = word.chars().take(w).collect();
            word = word.chars().skip(w).collect();
            lines.push(head);
        }
        let n = line.chars().count();
        if n > 0 && n + 1 + word.chars().count() > w {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// The furthest the help of `table` can scroll at the terminal size `viewport`.
pub fn help_max_scroll(
    table: (&'static str, Vec<(&'static str, &'static str)>),
    viewport: (u16, u16),
) -> usize {
    let p = help_plan(table, Rect::new(0, 0, viewport.0, viewport.1));
    p.per_col.saturating_sub(p.shown)
}

/// The setup form's area and the details' area beside or under it.
pub fn setup_areas(area: Rect, n_fields: usize) -> (Rect, Rect, usize) {
    // Wide terminals: the form beside the details; narrow ones: the form in two columns above.
    let wide = area.width >= 90;
    let cols: usize = if wide { 1 } else { 2 };
    let per_col = n_fields.div_ceil(cols);
    let [form, info] = if wide {
        Layout::horizontal([Constraint::Length(44), Constraint::Min(0)]).areas(area)
    } else {
        Layout::vertical([Constraint::Length(per_col as u16 + 2), Constraint::Min(0)]).areas(area)
    };
    (form, info, cols)
}

/// r of `a` minus r of `b`, where both were computed.
pub fn difference(a: &RunRecord, b: &RunRecord) -> RunRecord {
    let mut d = a.clone();
    d.relative = (0..a.n_layers)
        .map(|l| match (&a.relative[l], &b.relative[l]) {
            (Some(x), Some(y)) => Some(x.iter().zip(y).map(|(p, q)| p - q).collect()),
            _ => None,
        })
        .collect();
    d.patched_logit_diff = None;
    d.rows_computed = (0..a.n_layers)
        .filter(|&l| d.relative[l].is_some())
        .collect();
    d.receiver_label = format!("{} − {}", a.receiver_label, b.receiver_label);
    d
}

/// The comparison's panels, (title, grid, legend) each: the difference's one, or one per
/// side. Both sides have one shape, so one layout: the keys read it (`compare_geometry`).
pub fn compare_panels(area: Rect, diff: bool) -> Vec<[Rect; 3]> {
    let split = |r: Rect| {
        Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(0),
            Constraint::Length(2),
        ])
        .areas(r)
    };
    if diff {
        vec![split(area)]
    } else {
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(area);
        vec![split(left), split(right)]
    }
}

/// The colour range the comparison is drawn with: the difference's own, or one range for
/// both sides so that equal colours mean equal r. `F` draws its figure with the same range,
/// so the file shows what the screen showed.
pub fn compare_range(
    (a, b): (&RunRecord, &RunRecord),
    diff: bool,
    mode: RangeMode,
    layers: (usize, usize),
) -> ColorRange {
    if diff {
        color_range(&difference(a, b), mode, layers)
    } else {
        color_range(a, mode, layers).max(color_range(b, mode, layers))
    }
}

/// The text of `s` in at most `w` characters: whole, or cut with a final `…` so that a cut
/// is never silent.
pub fn ellipsize(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        s.to_string()
    } else if w == 0 {
        String::new()
    } else {
        let mut t: String = s.chars().take(w - 1).collect();
        t.push('…');
        t
    }
}

/// The text of `s` in at most `w` characters: whole, or its start and its end with `…`
/// between them.
pub fn ellipsize_middle(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n <= w || w < 3 {
        return ellipsize(s, w);
    }
    let head = (w - 1) / 2;
    let tail = w - 1 - head;
    let start: String = s.chars().take(head).collect();
    let end: String = s.chars().skip(n - tail).collect();
    format!("{start}…{end}")
}

/// Characters of a line (the glyphs drawn are one column each).
pub fn line_width(line: &Line) -> usize {
    line.spans.iter().map(|s| s.content.chars().count()).sum()
}

/// `line` in at most `width` characters: whole, or cut with a final `…`, so that a title,
/// status or legend never loses its end silently at the panel's edge.
pub fn fit_line(line: Line<'static>, width: usize) -> Line<'static> {
    if line_width(&line) <= width {
        return line;
    }
    let mut left = width.saturating_sub(1);
    let mut spans = Vec::new();
    for s in line.spans {
        let n = s.content.chars().count();
        if n <= left {
            left -= n;
            spans.push(s);
        } else {
            let cut: String = s.content.chars().take(left).collect();
            spans.push(Span::styled(format!("{cut}…"), s.style));
            break;
        }
    }
    Line::from(spans)
}

/// Lines for a panel `width` wide: a line of one span (prose) that is too wide wraps at
/// spaces, in its style; any other (tables, bars, styled parts) ends in `…` where it is cut.
pub fn fit_lines(lines: Vec<Line<'static>>, width: usize) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    for l in lines {
        if l.spans.len() == 1 && line_width(&l) > width {
            let style = l.spans[0].style;
            for part in wrap_words(&l.spans[0].content, width) {
                out.push(Line::from(Span::styled(part, style)));
            }
        } else {
            out.push(fit_line(l, width));
        }
    }
    out
}
