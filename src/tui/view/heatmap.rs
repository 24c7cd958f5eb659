//! The layer × head heatmap of r, its legend, and the cursor readout with the paper's lists.
//!
//! Layout first, then drawing: [`plan`] decides orientation, cell width and scroll position
//! from the state and the area alone, so the keys, the mouse and the drawing all agree on
//! where each cell is.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use crate::patching::matrix::{HeadScore, PatchMatrix};
use crate::plot::number::{fixed, signed};
use crate::results::text::{cell_measure, CellMeasure};
use crate::results::RunRecord;
use crate::tui::app::{App, RunState};
use crate::tui::layout::{HeatmapGeometry, RangeMode};

use crate::tui::color::{contrast_text, diverging, ColorMode};
pub use crate::tui::layout::{
    cell_parts, color_range, largest_value, shown_value, ColorRange, AUTO_FLOOR_R, AUTO_FLOOR_RAW,
    MARKED_CELL_W, NUMBER_CELL_W,
};

/// Colours of the head groups, in order.
pub const GROUP_COLORS: [Color; 6] = [
    Color::Yellow,
    Color::Green,
    Color::Cyan,
    Color::Magenta,
    Color::LightRed,
    Color::LightBlue,
];

/// Marks of the head groups, in order: a group differs by its mark as well as its colour.
pub const GROUP_MARKS: [&str; 6] = ["●", "■", "◆", "★", "✚", "✱"];

/// Drawn instead of a number that does not fit its cell (the legend says so).
pub const TOO_WIDE_POS: &str = "▲";
pub const TOO_WIDE_NEG: &str = "▼";

/// Decimals a cell `tw` characters wide prints (one precision per grid).
pub fn cell_decimals(measure: CellMeasure, tw: usize) -> usize {
    match measure {
        CellMeasure::R if tw >= 5 => 1,
        CellMeasure::R => 0,
        CellMeasure::RawEffect if tw >= 5 => 2,
        CellMeasure::RawEffect if tw >= 4 => 1,
        CellMeasure::RawEffect => 0,
    }
}

/// The text of a cell `tw` characters wide: the value at the grid's precision (r in %), or a
/// saturation glyph when that does not fit — never a clipped digit. Empty when `tw` < 2.
pub fn cell_text(value: f64, measure: CellMeasure, tw: usize) -> String {
    if tw < 2 {
        return String::new();
    }
    let x = measure.shown(value);
    let s = fixed(x, cell_decimals(measure, tw));
    if s.chars().count() <= tw {
        format!("{s:>tw$}")
    } else {
        let glyph = if x > 0.0 { TOO_WIDE_POS } else { TOO_WIDE_NEG };
        format!("{glyph:>tw$}")
    }
}

/// A threshold as a label: exactly the value applied (thresholds move in steps of 0.1%).
pub fn pct_label(x: f64) -> String {
    let tenths = (x * 1000.0).round() / 10.0;
    if tenths.fract() == 0.0 {
        format!("{}%", fixed(tenths, 0))
    } else {
        format!("{}%", fixed(tenths, 1))
    }
}

/// Draws the axis labels, with arrows where rows or columns are scrolled off.
fn draw_axes(buf: &mut Buffer, area: Rect, g: &HeatmapGeometry) {
    let dim = Style::default().fg(Color::DarkGray);
    let arrow = Style::default()
        .fg(Color::Yellow)
        .add_modifier(Modifier::BOLD);
    let cw = g.cell_w as usize;
    buf.set_string(
        area.x,
        area.y,
        if g.layers_as_rows { "L\\H" } else { "H\\L" },
        dim,
    );
    // Header: every index when it fits its cell, else every few.
    let step = if cw >= 3 {
        1
    } else {
        4_usize.div_ceil(cw).max(1)
    };
    for c in 0..g.n_cols as usize {
        let idx = g.col_first + c;
        if idx.is_multiple_of(step) {
            let x = g.x + (c * cw) as u16;
            let (gap, _, _) = cell_parts(g.cell_w);
            buf.set_string(x + gap, area.y, format!("{idx}"), dim);
        }
    }
    let right = g.x + g.n_cols * g.cell_w;
    if g.col_off > 0 {
        buf.set_string(g.x.saturating_sub(1), area.y, "◂", arrow);
    }
    if g.col_off + g.n_cols < g.cols_total && right < area.x + area.width {
        buf.set_string(right, area.y, "▸", arrow);
    }
    for r in 0..g.n_rows as usize {
        let idx = if g.rows_descending {
            g.row_first - r
        } else {
            g.row_first + r
        };
        let y = g.y + r as u16;
        buf.set_string(area.x, y, format!("{idx:>4}"), dim);
        let more_above = r == 0 && g.row_off > 0;
        let more_below = r + 1 == g.n_rows as usize && g.row_off + g.n_rows < g.rows_total;
        if more_above || more_below {
            buf.set_string(area.x, y, if more_above { "↑" } else { "↓" }, arrow);
        }
    }
}

/// Draws the heatmap of `rec` as planned; returns whether some value did not fit its cell
/// (the legend then explains the glyph).
#[allow(clippy::too_many_arguments)]
pub fn draw_heatmap(
    buf: &mut Buffer,
    area: Rect,
    app: &App,
    rec: &RunRecord,
    g: &HeatmapGeometry,
    cursor: Option<(usize, usize)>,
    range: &ColorRange,
    color: ColorMode,
    marks: bool,
) -> bool {
    draw_axes(buf, area, g);
    let mut too_wide = false;
    for r in 0..g.n_rows as usize {
        for c in 0..g.n_cols as usize {
            let (l, h) = g.cell_at(r, c);
            let x = g.x + c as u16 * g.cell_w;
            let cell = Cell {
                value: shown_value(rec, range.measure, l, h),
                noise: rec.holds_zero(l, h),
                is_cursor: cursor == Some((l, h)),
                selected: marks && app.selected.contains(&(l, h)),
                group: app.groups_of((l, h)).first().copied().filter(|_| marks),
            };
            too_wide |= draw_cell(buf, x, g.y + r as u16, g.cell_w, &cell, range, color);
        }
    }
    too_wide
}

/// What one cell shows.
struct Cell {
    value: Option<f64>,
    /// Its bootstrap interval holds 0: drawn dimmed, so noise never looks like signal.
    noise: bool,
    is_cursor: bool,
    selected: bool,
    group: Option<usize>,
}

/// Draws one cell; returns whether its number was too wide for it.
fn draw_cell(
    buf: &mut Buffer,
    x: u16,
    y: u16,
    cw: u16,
    cell: &Cell,
    range: &ColorRange,
    color: ColorMode,
) -> bool {
    let (gap, tw, mark_w) = cell_parts(cw);
    let (mut style, text) = match cell.value {
        Some(v) => {
            let bg = diverging(v, range.range);
            let style = Style::default()
                .bg(color.rgb(bg))
                .fg(color.rgb(contrast_text(bg)));
            (style, cell_text(v, range.measure, tw as usize))
        }
        None => (
            Style::default().fg(Color::DarkGray),
            format!("{:>tw$}", "·", tw = (tw as usize).max(1)),
        ),
    };
    let too_wide = text.contains(TOO_WIDE_POS) || text.contains(TOO_WIDE_NEG);
    let group_color = cell.group.map(|g| GROUP_COLORS[g % GROUP_COLORS.len()]);
    let mark = if cell.selected {
        Some("+")
    } else {
        cell.group.map(|g| GROUP_MARKS[g % GROUP_MARKS.len()])
    };
    if mark_w == 0 && (cell.group.is_some() || cell.selected) {
        // No room for a mark: underlined (`legend_notes` says so), in the group's colour.
        style = style.add_modifier(Modifier::UNDERLINED);
    }
    if cell.noise && cell.value.is_some() {
        style = style.fg(Color::DarkGray).add_modifier(Modifier::DIM);
    }
    if cell.is_cursor {
        style = style.add_modifier(Modifier::REVERSED | Modifier::BOLD);
    }
    buf.set_string(x, y, " ".repeat(cw as usize), style);
    let shown = if text.is_empty() && cw == 1 {
        match (cell.is_cursor, mark) {
            (true, _) => "◆".to_string(),
            (false, Some(m)) => m.to_string(),
            _ => String::new(),
        }
    } else {
        text
    };
    buf.set_stringn(x + gap, y, &shown, tw.max(1) as usize, style);
    if let (1, Some(m)) = (mark_w, mark) {
        let st = style
            .fg(group_color.unwrap_or(Color::White))
            .add_modifier(Modifier::BOLD);
        buf.set_string(x + cw - 1, y, m, st);
    }
    too_wide
}

/// The value of the colour range as text: r in %, raw effects in logits.
fn range_text(x: f64, measure: CellMeasure) -> String {
    let decimals = match measure {
        CellMeasure::R => 1,
        CellMeasure::RawEffect => 2,
    };
    format!("{}{}", fixed(measure.shown(x), decimals), measure.unit())
}

/// The legend: the colour scale with its end values, and the range in force and why.
pub fn legend(range: &ColorRange, color: ColorMode) -> Line<'static> {
    let what = match range.measure {
        CellMeasure::R => "r",
        CellMeasure::RawEffect => "patched−LD_c",
    };
    let end = range_text(range.range, range.measure);
    let mut spans = vec![Span::raw(format!("{what} -{end} "))];
    for i in 0..=10 {
        let v = -range.range + 2.0 * range.range * i as f64 / 10.0;
        spans.push(Span::styled(
            " ",
            Style::default().bg(color.rgb(diverging(v, range.range))),
        ));
    }
    spans.push(Span::raw(format!(" +{end}")));
    let how = match range.mode {
        RangeMode::Auto if range.largest < range.floor() => format!(
            " auto: floor; largest {} (f fixed)",
            range_text(range.largest, range.measure)
        ),
        RangeMode::Auto => " auto: largest (f fixed)".to_string(),
        RangeMode::Fixed20 => " fixed (f auto)".to_string(),
    };
    spans.push(Span::styled(how, Style::default().fg(Color::DarkGray)));
    Line::from(spans)
}

/// The legend's second line: what the glyphs mean and what is scrolled off. `marked`: some
/// head is tagged or selected; cells then have a mark column (`orientation_and_width`) unless
/// the grid is narrower than one such cell: there marked cells are underlined instead, and
/// the legend says so (the readout names the cursor's group). `crop`: the layers `z` kept,
/// named first, since the layers cropped away are not scrolled off but gone from the view.
pub fn legend_notes(
    too_wide: bool,
    marked: bool,
    crop: Option<(usize, usize)>,
    rec: &RunRecord,
    g: &HeatmapGeometry,
    width: u16,
) -> Line<'static> {
    let dimmed = (0..rec.n_layers).any(|l| (0..rec.n_heads).any(|h| rec.holds_zero(l, h)));
    let long = notes(too_wide, marked, crop, dimmed, g, false);
    let width = width as usize;
    if super::line_width(&long) <= width {
        return long;
    }
    super::fit_line(notes(too_wide, marked, crop, dimmed, g, true), width)
}

/// The notes in full, or in their short forms (`short`) for a narrow legend; `dimmed`: some
/// cells are drawn dimmed because their interval holds 0.
fn notes(
    too_wide: bool,
    marked: bool,
    crop: Option<(usize, usize)>,
    dimmed: bool,
    g: &HeatmapGeometry,
    short: bool,
) -> Line<'static> {
    let mut spans = Vec::new();
    if let Some((lo, hi)) = crop {
        let what = if short {
            format!("crop L{lo}..{hi} (Z) ")
        } else {
            format!("cropped to layers {lo}..{hi} (Z uncrops) ")
        };
        spans.push(Span::styled(what, Style::default().fg(Color::Yellow)));
    }
    if dimmed {
        let what = if short {
            "dim: CI holds 0 "
        } else {
            "dim: its 95% interval holds 0 (noise) "
        };
        spans.push(Span::styled(what, Style::default().fg(Color::DarkGray)));
    }
    if marked && cell_parts(g.cell_w).2 == 0 {
        spans.push(Span::styled(
            "underlined: tagged/selected (cells too narrow for marks) ",
            Style::default().fg(Color::Yellow),
        ));
    }
    let wide = too_wide.then(|| {
        let what = if short {
            "too wide (o)"
        } else {
            "too wide for the cell (readout; o)"
        };
        format!("{TOO_WIDE_POS}{TOO_WIDE_NEG} {what} ")
    });
    // Short: what is on screen first (`layers 41..24/42, heads 0..10/16`), then the glyphs.
    let clip = clip_note(g).map(|note| {
        if short {
            note.trim_end_matches(" shown").replace(" of ", "/") + " "
        } else {
            note
        }
    });
    let yellow = Style::default().fg(Color::Yellow);
    let parts = if short { [clip, wide] } else { [wide, clip] };
    spans.extend(parts.into_iter().flatten().map(|t| Span::styled(t, yellow)));
    Line::from(spans)
}

/// Which rows / columns are on screen when some are scrolled off, e.g. "layers 41..22 of 42".
pub fn clip_note(g: &HeatmapGeometry) -> Option<String> {
    let rows_clipped = g.n_rows < g.rows_total;
    let cols_clipped = g.n_cols < g.cols_total;
    if !rows_clipped && !cols_clipped {
        return None;
    }
    let (rows, cols) = if g.layers_as_rows {
        ("layers", "heads")
    } else {
        ("heads", "layers")
    };
    let last_row = if g.rows_descending {
        g.row_first + 1 - g.n_rows as usize
    } else {
        g.row_first + g.n_rows as usize - 1
    };
    let mut parts = Vec::new();
    if rows_clipped {
        parts.push(format!(
            "{rows} {}..{last_row} of {}",
            g.row_first, g.rows_total
        ));
    }
    if cols_clipped {
        let last = g.col_first + g.n_cols as usize - 1;
        parts.push(format!(
            "{cols} {}..{last} of {}",
            g.col_first, g.cols_total
        ));
    }
    Some(format!("{} shown", parts.join(", ")))
}

/// The r line of the readout for the head under the cursor.
fn r_line(rec: &RunRecord, measure: CellMeasure, l: usize, h: usize) -> Line<'static> {
    let dim = Style::default().fg(Color::DarkGray);
    match rec.r(l, h) {
        _ if !rec.receiver.reachable_from(l) => {
            Line::from(Span::styled("r        n/a: cannot reach the receiver", dim))
        }
        None => Line::from(Span::styled("r        not computed", dim)),
        Some(r) if !r.is_finite() => {
            Line::from(Span::styled("r        undefined: LD_c = LD_n", dim))
        }
        Some(_) if measure == CellMeasure::RawEffect => Line::from(Span::styled(
            "r        not shown: ill-conditioned",
            Style::default().fg(Color::Yellow),
        )),
        Some(r) => {
            // The bootstrap interval over the examples, when the run has one; `?` when it
            // holds 0 (the cell is not told from noise).
            match rec.interval(l, h) {
                Some((lo, hi)) => Line::from(format!(
                    "r        {}% [{}, {}]{}",
                    signed(100.0 * r, 2),
                    signed(100.0 * lo, 1),
                    signed(100.0 * hi, 1),
                    if rec.holds_zero(l, h) { " ?" } else { "" }
                )),
                None => Line::from(format!("r        {}%", signed(100.0 * r, 2))),
            }
        }
    }
}

/// Readout of the head under the cursor, baselines, and the paper's two lists.
pub fn draw_readout(buf: &mut Buffer, area: Rect, app: &App, rec: &RunRecord) {
    let (l, h) = app.cursor;
    let measure = cell_measure(rec);
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let mut lines: Vec<Line> = vec![
        Line::from(Span::styled(
            format!("H{l}.{h}  (layer {l}, head {h})"),
            bold,
        )),
        r_line(rec, measure, l, h),
    ];
    // An unreachable sender's stored patched value is only the contrast baseline copied
    // (nothing was patched); printed, it would look computed.
    let reachable = rec.receiver.reachable_from(l);
    if let Some(p) = rec.patched(l, h).filter(|_| reachable) {
        lines.push(Line::from(format!("patched  {}", signed(p, 4))));
    }
    if let (Some(n), Some(c)) = (rec.normal_logit_diff, rec.contrast_logit_diff) {
        // The baselines are of the run's metric (LD, logp, p or KL), named so.
        let x = rec.metric.short();
        // Labels in a column of 9, as the readout's other lines.
        let row = |label: String, v: f64| Line::from(format!("{label:<9}{}", signed(v, 4)));
        if let Some(d) = crate::results::text::raw_effect(rec, l, h).filter(|_| reachable) {
            lines.push(row(format!("− {x}_c"), d));
        }
        lines.push(row(format!("{x}_n"), n));
        lines.push(row(format!("{x}_c"), c));
        if crate::results::text::ill_conditioned(rec) {
            lines.push(Line::from(Span::styled(
                format!(
                    "⚠ |{x}_c−{x}_n| {} < {}: cells show patched − {x}_c",
                    fixed((c - n).abs(), 3),
                    rec.metric.small_gap()
                ),
                Style::default().fg(Color::Yellow),
            )));
        }
    }
    let gs = app.groups_of((l, h));
    if !gs.is_empty() {
        let names: Vec<&str> = gs.iter().map(|&g| app.groups[g].name.as_str()).collect();
        lines.push(Line::from(format!("group    {}", names.join(", "))));
    }
    if let Some(g) = app.groups.get(app.active_group) {
        let i = app.active_group;
        lines.push(Line::from(Span::styled(
            format!(
                "t tags → {} {} ({})",
                GROUP_MARKS[i % 6],
                g.name,
                g.heads.len()
            ),
            Style::default().fg(GROUP_COLORS[i % GROUP_COLORS.len()]),
        )));
    }
    lines.push(Line::from(""));
    let used: usize = lines.iter().map(|l| wrapped_height(l, area.width)).sum();
    let budget = (area.height as usize).saturating_sub(used);
    match measure {
        CellMeasure::R => lines.extend(r_lists(app, rec, budget)),
        CellMeasure::RawEffect => lines.extend(raw_list(rec, budget)),
    }
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .render(area, buf);
}

/// Rows `line` takes when wrapped at `width`.
fn wrapped_height(line: &Line, width: u16) -> usize {
    line.width().div_ceil(width.max(1) as usize).max(1)
}

/// Splits `budget` lines between lists of `lens` items, one line at a time to each list
/// that still has items, so that a long first list does not take every line.
fn share_lines(lens: &[usize], budget: usize) -> Vec<usize> {
    let mut quota = vec![0; lens.len()];
    let mut left = budget;
    while left > 0 && (0..lens.len()).any(|i| quota[i] < lens[i]) {
        for i in 0..lens.len() {
            if left > 0 && quota[i] < lens[i] {
                quota[i] += 1;
                left -= 1;
            }
        }
    }
    quota
}

/// A list in `quota` lines: whole, or as many items as fit and a last line saying how many
/// more there are (a list cut at the screen's edge would look complete).
fn fit_list(items: Vec<Line<'static>>, quota: usize) -> Vec<Line<'static>> {
    if items.len() <= quota {
        return items;
    }
    let keep = quota.saturating_sub(1);
    let more = items.len() - keep;
    let mut out: Vec<Line> = items.into_iter().take(keep).collect();
    let dim = Style::default().fg(Color::DarkGray);
    out.push(Line::from(Span::styled(format!(" +{more} more"), dim)));
    out
}

/// The paper's two head lists, labelled with exactly the thresholds applied, in `budget`
/// lines (each list cut with a "+N more" line where they do not fit).
fn r_lists(app: &App, rec: &RunRecord, budget: usize) -> Vec<Line<'static>> {
    let t = app.thresholds;
    let (strong, weak) = PatchMatrix::head_lists(&rec.relative_filled(), t.hi, t.lo);
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let dim = Style::default().fg(Color::DarkGray);
    let fmt = |s: &HeadScore| {
        let r = signed(100.0 * s.r, 1);
        format!(" {:>2}.{:<2} {r:>6}%", s.layer, s.head)
    };
    let mut lines = Vec::new();
    let titles = [
        format!("|r| > {}:", pct_label(t.hi)),
        format!("{} < |r| ≤ {}:", pct_label(t.lo), pct_label(t.hi)),
    ];
    let items: Vec<Vec<Line<'static>>> = [strong, weak]
        .iter()
        .map(|list| match list.is_empty() {
            true => vec![Line::from(Span::styled(" (none)", dim))],
            false => list.iter().map(|s| Line::from(fmt(s))).collect(),
        })
        .collect();
    let lens: Vec<usize> = items.iter().map(Vec::len).collect();
    let quota = share_lines(&lens, budget.saturating_sub(titles.len()));
    for ((title, list), q) in titles.into_iter().zip(items).zip(quota) {
        lines.push(Line::from(Span::styled(title, bold)));
        lines.extend(fit_list(list, q));
    }
    lines
}

/// Ill-conditioned runs: the heads with the largest raw effects, as the command line lists,
/// in `budget` lines.
fn raw_list(rec: &RunRecord, budget: usize) -> Vec<Line<'static>> {
    let mut all: Vec<(usize, usize, f64)> = (0..rec.n_layers)
        .flat_map(|l| (0..rec.n_heads).map(move |h| (l, h)))
        .filter_map(|(l, h)| shown_value(rec, CellMeasure::RawEffect, l, h).map(|d| (l, h, d)))
        .collect();
    all.sort_by(|a, b| b.2.abs().total_cmp(&a.2.abs()));
    let mut lines = vec![Line::from(Span::styled(
        "largest |patched − LD_c|:",
        Style::default().add_modifier(Modifier::BOLD),
    ))];
    let items = all
        .iter()
        .take(10)
        .map(|(l, h, d)| Line::from(format!(" {l:>2}.{h:<2} {}", signed(*d, 3))))
        .collect();
    lines.extend(fit_list(items, budget.saturating_sub(1)));
    lines
}

/// A one-line description of the run state.
pub fn run_state_text(state: &RunState) -> String {
    match state {
        RunState::Idle => "not run yet: press r".into(),
        RunState::Running {
            done, total, eta, ..
        } => {
            if eta.is_finite() {
                format!("running {done}/{total} layers, ETA {eta:.1} s")
            } else {
                format!("running {done}/{total} layers")
            }
        }
        RunState::Done => "done".into(),
        RunState::Cancelled => "cancelled (partial)".into(),
        RunState::Failed(e) => format!("failed: {e}"),
        RunState::Opened(p) => format!(
            "from {}",
            p.file_name()
                .map_or_else(|| p.display().to_string(), |f| f.to_string_lossy().into())
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cell whose interval holds 0 is drawn dimmed; one whose interval does not, in full.
    #[test]
    fn noise_cells_are_dimmed() {
        let range = ColorRange {
            range: 0.1,
            mode: RangeMode::Auto,
            measure: CellMeasure::R,
            largest: 0.1,
        };
        let draw = |noise: bool| {
            let mut buf = Buffer::empty(Rect::new(0, 0, 8, 1));
            let cell = Cell {
                value: Some(0.05),
                noise,
                is_cursor: false,
                selected: false,
                group: None,
            };
            draw_cell(&mut buf, 0, 0, 6, &cell, &range, ColorMode::TrueColor);
            buf[(1, 0)].modifier
        };
        assert!(draw(true).contains(Modifier::DIM));
        assert!(!draw(false).contains(Modifier::DIM));
        // The legend says why.
        let g = HeatmapGeometry {
            x: 0,
            y: 0,
            cell_w: 6,
            layers_as_rows: true,
            n_rows: 1,
            n_cols: 1,
            row_first: 0,
            col_first: 0,
            rows_descending: false,
            rows_total: 1,
            cols_total: 1,
            row_off: 0,
            col_off: 0,
        };
        let text = |dimmed| {
            notes(false, false, None, dimmed, &g, false)
                .spans
                .iter()
                .map(|s| s.content.to_string())
                .collect::<String>()
        };
        assert!(text(true).contains("interval holds 0"));
        assert!(!text(false).contains("interval"));
    }
}
