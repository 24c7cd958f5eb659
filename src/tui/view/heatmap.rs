//! The layer × head heatmap of r, its legend, and the cursor readout with the paper's lists.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use crate::patching::matrix::PatchMatrix;
use crate::results::RunRecord;
use crate::tui::app::{App, HeatmapGeometry, Orientation, RangeMode, RunState};
use crate::tui::color::{contrast_text, diverging, ColorMode};

/// Colours of the head groups, in order.
pub const GROUP_COLORS: [Color; 6] = [
    Color::Yellow,
    Color::Green,
    Color::Cyan,
    Color::Magenta,
    Color::LightRed,
    Color::LightBlue,
];

/// Colour range of a record: ± the largest |r| shown, or ±20%.
pub fn color_range(rec: &RunRecord, mode: RangeMode, layers: (usize, usize)) -> f64 {
    match mode {
        RangeMode::Fixed20 => 0.2,
        RangeMode::Auto => {
            let mut m: f64 = 0.0;
            for l in layers.0..=layers.1 {
                for h in 0..rec.n_heads {
                    if let Some(r) = rec.r(l, h) {
                        if r.is_finite() {
                            m = m.max(r.abs());
                        }
                    }
                }
            }
            if m > 0.0 {
                m
            } else {
                0.01
            }
        }
    }
}

/// Decides the orientation and cell width for `area`.
fn layout(app: &App, area: Rect, n_layers: usize, n_heads: usize) -> (bool, u16) {
    let width = area.width.saturating_sub(5) as usize;
    let height = area.height.saturating_sub(1) as usize; // header row
    let fits_cols = |cw: usize| n_layers * cw <= width && n_heads <= height;
    let fits_rows = |cw: usize| n_heads * cw <= width && n_layers <= height;
    let best_w = |n: usize| (width / n.max(1)).clamp(1, 6) as u16;
    match app.orientation {
        Orientation::LayersAsColumns => (false, best_w(n_layers)),
        Orientation::LayersAsRows => (true, best_w(n_heads)),
        Orientation::Auto => {
            if fits_cols(2) {
                (false, best_w(n_layers))
            } else if fits_rows(2) {
                (true, best_w(n_heads))
            } else if fits_cols(1) {
                (false, 1)
            } else {
                (true, best_w(n_heads))
            }
        }
    }
}

/// Draws the heatmap of `rec` into `area`, returning where its cells are.
pub fn draw_heatmap(
    buf: &mut Buffer,
    area: Rect,
    app: &App,
    rec: &RunRecord,
    cursor: Option<(usize, usize)>,
    range: f64,
    color: ColorMode,
) -> Option<HeatmapGeometry> {
    if area.width < 8 || area.height < 3 || rec.n_layers == 0 || rec.n_heads == 0 {
        return None;
    }
    let (lo, hi) = {
        let (lo, hi) = app.layer_range();
        (lo.min(rec.n_layers - 1), hi.min(rec.n_layers - 1))
    };
    let n_layers = hi - lo + 1;
    let (layers_as_rows, cw) = layout(app, area, n_layers, rec.n_heads);
    let label_w: u16 = 5;
    let grid_x = area.x + label_w;
    let grid_y = area.y + 1;
    let avail_rows = area.height.saturating_sub(1) as usize;
    let avail_cols = ((area.width.saturating_sub(label_w)) / cw.max(1)) as usize;
    // Rows: layers descending (top = last layer) or heads ascending.
    let (n_rows_total, n_cols_total) = if layers_as_rows {
        (n_layers, rec.n_heads)
    } else {
        (rec.n_heads, n_layers)
    };
    let n_rows = n_rows_total.min(avail_rows);
    let n_cols = n_cols_total.min(avail_cols);
    // Scroll so the cursor stays visible.
    let (cur_row_idx, cur_col_idx) = match cursor {
        Some((l, h)) if layers_as_rows => (hi.saturating_sub(l), h),
        Some((l, h)) => (h, l.saturating_sub(lo)),
        None => (0, 0),
    };
    let row_off = if cur_row_idx >= n_rows {
        cur_row_idx + 1 - n_rows
    } else {
        0
    };
    let col_off = if cur_col_idx >= n_cols {
        cur_col_idx + 1 - n_cols
    } else {
        0
    };
    let dim = Style::default().fg(Color::DarkGray);
    // Axis labels.
    if layers_as_rows {
        buf.set_string(area.x, area.y, "L\\H", dim);
        for c in 0..n_cols {
            let h = col_off + c;
            let text = if cw >= 3 || h % 2 == 0 {
                format!("{h}")
            } else {
                String::new()
            };
            let x = grid_x + c as u16 * cw;
            if h % ((3 / cw as usize).max(1)) == 0 {
                buf.set_stringn(x, area.y, &text, (cw as usize).max(2), dim);
            }
        }
    } else {
        buf.set_string(area.x, area.y, "H\\L", dim);
        let step = 4_usize.div_ceil(cw as usize).max(1);
        for c in (0..n_cols).filter(|c| (lo + col_off + c) % step == 0) {
            let l = lo + col_off + c;
            buf.set_string(grid_x + c as u16 * cw, area.y, format!("{l}"), dim);
        }
    }
    for r in 0..n_rows {
        let idx = row_off + r;
        let y = grid_y + r as u16;
        let label = if layers_as_rows {
            format!("{:>4}", hi - idx)
        } else {
            format!("{:>4}", idx)
        };
        buf.set_string(area.x, y, label, dim);
        for c in 0..n_cols {
            let cidx = col_off + c;
            let (l, h) = if layers_as_rows {
                (hi - idx, cidx)
            } else {
                (lo + cidx, idx)
            };
            let x = grid_x + c as u16 * cw;
            draw_cell(
                buf,
                x,
                y,
                cw,
                app,
                rec,
                (l, h),
                cursor == Some((l, h)),
                range,
                color,
            );
        }
    }
    Some(HeatmapGeometry {
        x: grid_x,
        y: grid_y,
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
    })
}

#[allow(clippy::too_many_arguments)]
fn draw_cell(
    buf: &mut Buffer,
    x: u16,
    y: u16,
    cw: u16,
    app: &App,
    rec: &RunRecord,
    (l, h): (usize, usize),
    is_cursor: bool,
    range: f64,
    color: ColorMode,
) {
    let groups = app.groups_of((l, h));
    let selected = app.selected.contains(&(l, h));
    // Senders that cannot reach the receiver (its own layer and above, for a head) carry no
    // information: drawn like rows that were not computed, never as a computed 0.
    let value = rec
        .r(l, h)
        .filter(|r| r.is_finite() && rec.receiver.reachable_from(l));
    // Wide cells keep their last character for a marker: a group's dot or the selection's +.
    let marker_w: u16 = if cw > 2 { 1 } else { 0 };
    let tw = (cw - marker_w) as usize;
    let (mut style, mut text) = match value {
        Some(r) => {
            let bg = diverging(r, range);
            let style = Style::default()
                .bg(color.rgb(bg))
                .fg(color.rgb(contrast_text(bg)));
            // No "-0.0" for an exact zero.
            let pct = if (100.0 * r).abs() < 0.05 {
                0.0
            } else {
                100.0 * r
            };
            let text = match tw {
                0..=1 => String::new(),
                2 => format!("{:>2.0}", pct.clamp(-9.0, 9.0)),
                3 => format!("{:>3.0}", pct.clamp(-99.0, 99.0)),
                4 => format!("{:>4.0}", pct.clamp(-999.0, 999.0)),
                _ => format!("{:>tw$.1}", pct),
            };
            (style, text)
        }
        None => (
            Style::default().fg(Color::DarkGray),
            format!("{:>tw$}", "·", tw = tw.max(1)),
        ),
    };
    let group_color = groups
        .first()
        .map(|&g| GROUP_COLORS[g % GROUP_COLORS.len()]);
    if marker_w == 0 {
        // Narrow cells: the marker replaces the (empty) text.
        if let Some(gc) = group_color {
            text = "●".into();
            style = style.fg(gc);
        }
        if selected {
            text = "+".into();
        }
    }
    if is_cursor {
        style = style.add_modifier(Modifier::REVERSED | Modifier::BOLD);
        if cw <= 2 {
            text = "◆".into();
        }
    }
    buf.set_string(x, y, " ".repeat(cw as usize), style);
    let t: String = text.chars().take(tw.max(1)).collect();
    let tx = x + (cw - marker_w).saturating_sub(t.chars().count() as u16) / 2;
    buf.set_string(tx, y, &t, style);
    if marker_w == 1 {
        let mark = if selected {
            "+"
        } else if group_color.is_some() {
            "●"
        } else {
            ""
        };
        if !mark.is_empty() {
            buf.set_string(
                x + cw - 1,
                y,
                mark,
                style
                    .fg(group_color.unwrap_or(Color::White))
                    .add_modifier(Modifier::BOLD),
            );
        }
    }
}

/// The legend: the colour scale with its end values.
pub fn legend(range: f64, mode: RangeMode, color: ColorMode) -> Line<'static> {
    let mut spans = vec![Span::raw(format!("{:+.0}% ", -100.0 * range))];
    for i in 0..=16 {
        let v = -range + 2.0 * range * i as f64 / 16.0;
        spans.push(Span::styled(
            " ",
            Style::default().bg(color.rgb(diverging(v, range))),
        ));
    }
    spans.push(Span::raw(format!(" {:+.0}%", 100.0 * range)));
    spans.push(Span::styled(
        match mode {
            RangeMode::Auto => "  auto range (f: ±20%)",
            RangeMode::Fixed20 => "  fixed ±20% (f: auto)",
        },
        Style::default().fg(Color::DarkGray),
    ));
    Line::from(spans)
}

/// Readout of the head under the cursor, baselines, and the paper's two lists.
pub fn draw_readout(buf: &mut Buffer, area: Rect, app: &App, rec: &RunRecord) {
    let (l, h) = app.cursor;
    let mut lines: Vec<Line> = Vec::new();
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let dim = Style::default().fg(Color::DarkGray);
    lines.push(Line::from(Span::styled(
        format!("H{l}.{h}  (layer {l}, head {h})"),
        bold,
    )));
    match rec.r(l, h) {
        _ if !rec.receiver.reachable_from(l) => lines.push(Line::from(Span::styled(
            "r        n/a: cannot reach the receiver",
            dim,
        ))),
        Some(r) if !r.is_finite() => lines.push(Line::from(Span::styled(
            "r        undefined: LD_c = LD_n",
            dim,
        ))),
        Some(r) => lines.push(Line::from(format!("r        {:+.2}%", 100.0 * r))),
        None => lines.push(Line::from(Span::styled("r        not computed", dim))),
    }
    if let Some(p) = rec.patched(l, h) {
        lines.push(Line::from(format!("patched  {p:+.4}")));
    }
    if let (Some(n), Some(c)) = (rec.normal_logit_diff, rec.contrast_logit_diff) {
        lines.push(Line::from(format!("LD_n     {n:+.4}")));
        lines.push(Line::from(format!("LD_c     {c:+.4}")));
        if crate::patching::matrix::ill_conditioned(n, c) {
            lines.push(Line::from(Span::styled(
                format!("⚠ gap {:.3}: r ill-conditioned", (c - n).abs()),
                Style::default().fg(Color::Yellow),
            )));
        }
    }
    let gs = app.groups_of((l, h));
    if !gs.is_empty() {
        let names: Vec<&str> = gs.iter().map(|&g| app.groups[g].name.as_str()).collect();
        lines.push(Line::from(format!("group    {}", names.join(", "))));
    }
    let g = &app.groups[app.active_group.min(app.groups.len().saturating_sub(1))];
    lines.push(Line::from(Span::styled(
        format!("t tags → {} ({})", g.name, g.heads.len()),
        Style::default().fg(GROUP_COLORS[app.active_group % GROUP_COLORS.len()]),
    )));
    lines.push(Line::from(""));
    let (strong, weak) =
        PatchMatrix::head_lists(&rec.relative_filled(), app.thresholds.hi, app.thresholds.lo);
    let t = app.thresholds;
    lines.push(Line::from(Span::styled(
        format!("|r| > {:.0}%:", 100.0 * t.hi),
        bold,
    )));
    let fmt = |s: &crate::patching::matrix::HeadScore| {
        format!(" {:>2}.{:<2} {:+6.1}%", s.layer, s.head, 100.0 * s.r)
    };
    if strong.is_empty() {
        lines.push(Line::from(Span::styled(" (none)", dim)));
    }
    for s in &strong {
        lines.push(Line::from(fmt(s)));
    }
    lines.push(Line::from(Span::styled(
        format!("{:.0}% < |r| ≤ {:.0}%:", 100.0 * t.lo, 100.0 * t.hi),
        bold,
    )));
    if weak.is_empty() {
        lines.push(Line::from(Span::styled(" (none)", dim)));
    }
    for s in &weak {
        lines.push(Line::from(fmt(s)));
    }
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .render(area, buf);
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
        RunState::Opened(p) => format!("from {}", p.display()),
    }
}
