//! Results side by side: one panel per result, each with its readout (receiver, shape, the
//! value under its own cursor), a colour grid on a depth-normalized layer axis (every panel's
//! layers spread over the same rows, the last layer on top), and its largest heads. Where the
//! panels do not all fit the width, the view pages: the page holding the focused panel.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget};
use ratatui::Frame;

use crate::plot::number::signed;
use crate::results::RunRecord;
use crate::tui::app::{largest, App, SidePanel};
use crate::tui::color::{contrast_text, diverging, ColorMode};

use super::other::{ellipsize, ellipsize_middle};

/// Narrowest panel: below it, the view pages instead of squeezing the panels.
pub const MIN_PANEL_W: u16 = 28;

/// Panels shown at once in `width` columns, of `n`.
pub fn per_page(width: u16, n: usize) -> usize {
    ((width / MIN_PANEL_W) as usize).clamp(1, n.max(1))
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let panels = &app.side.panels;
    if panels.is_empty() || area.height < 4 {
        return;
    }
    let per = per_page(area.width, panels.len());
    let first = app.side.focus / per * per;
    let shown = first..(first + per).min(panels.len());
    let mut area = area;
    if per < panels.len() {
        let note = format!(
            "panels {}–{} of {} · Tab / S-Tab page through them",
            shown.start + 1,
            shown.end,
            panels.len()
        );
        let line = Line::from(Span::styled(note, Style::default().fg(Color::Yellow)));
        frame.render_widget(
            Paragraph::new(super::fit_line(line, area.width as usize)),
            area,
        );
        area.y += 1;
        area.height -= 1;
    }
    let range = shared_range(panels);
    let w = area.width / per as u16;
    for (k, i) in shown.enumerate() {
        let r = Rect {
            x: area.x + k as u16 * w,
            width: w,
            ..area
        };
        draw_panel(
            frame.buffer_mut(),
            r,
            &panels[i],
            i == app.side.focus,
            range,
            app.color,
        );
    }
}

/// The colour scale's half-width: the largest |r| over every panel, so that one colour means
/// one value in all of them.
fn shared_range(panels: &[SidePanel]) -> f64 {
    panels
        .iter()
        .flat_map(|p| largest(&p.record, 1))
        .map(|(_, _, v)| v.abs())
        .fold(0.0, f64::max)
        .max(1e-9)
}

/// One panel: border titled with the model, readout, grid and largest heads.
fn draw_panel(
    buf: &mut Buffer,
    area: Rect,
    p: &SidePanel,
    focused: bool,
    range: f64,
    color: ColorMode,
) {
    let border = if focused {
        Style::default()
            .fg(Color::Cyan)
            .add_modifier(Modifier::BOLD)
    } else {
        Style::default().fg(Color::DarkGray)
    };
    let title = ellipsize(
        &format!(" {} ", p.model),
        area.width.saturating_sub(2) as usize,
    );
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(border)
        .title(title);
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.height < 5 || inner.width < 8 {
        return;
    }
    let w = inner.width as usize;
    let rec = &p.record;
    let (l, h) = p.cursor;
    let value = match p.value() {
        Some(v) => format!("{}%", signed(100.0 * v, 2)),
        None => "n/a".into(),
    };
    let name = p
        .path
        .file_name()
        .map_or(String::new(), |f| f.to_string_lossy().to_string());
    let readout = vec![
        Line::from(ellipsize(&format!("→ {}", rec.receiver_label), w)),
        Line::from(ellipsize_middle(
            &format!("{}×{} · {name}", rec.n_layers, rec.n_heads),
            w,
        )),
        Line::from(Span::styled(
            ellipsize(&format!("H{l}.{h}  r {value}"), w),
            Style::default().add_modifier(Modifier::BOLD),
        )),
    ];
    let n_list = ((inner.height as usize).saturating_sub(4) / 3).clamp(1, 5);
    let grid_h = (inner.height as usize).saturating_sub(3 + 1 + n_list) as u16;
    Paragraph::new(readout).render(Rect { height: 3, ..inner }, buf);
    let grid = Rect {
        y: inner.y + 3,
        height: grid_h,
        ..inner
    };
    draw_grid(buf, grid, p, range, color);
    let mut list = vec![Line::from(Span::styled(
        "largest |r|:",
        Style::default().fg(Color::Gray),
    ))];
    for (l, h, v) in largest(rec, n_list) {
        list.push(Line::from(format!(
            " {l:>2}.{h:<2} {:>8}%",
            signed(100.0 * v, 2)
        )));
    }
    let list_area = Rect {
        y: grid.y + grid_h,
        height: inner.height.saturating_sub(3 + grid_h),
        ..inner
    };
    Paragraph::new(list).render(list_area, buf);
}

/// The layers that grid row `row` (counted from the bottom) of `rows` covers in a result of
/// `n` layers: the layers of that depth band, or the one layer at its depth where the rows
/// outnumber the layers.
pub fn row_layers(row: usize, rows: usize, n: usize) -> Vec<usize> {
    if n >= rows {
        (0..n).filter(|&l| l * rows / n == row).collect()
    } else {
        vec![(row * n / rows).min(n - 1)]
    }
}

/// The heads that grid column `col` of `cols` covers, of `n` heads.
fn col_heads(col: usize, cols: usize, n: usize) -> Vec<usize> {
    (0..n).filter(|&h| h * cols / n == col).collect()
}

/// The colour grid: one cell per (depth band, head band), coloured by the value of largest
/// |r| in it; the cell holding the cursor is marked. A 3-column gutter numbers the top and
/// bottom rows and the cursor's row with their first layer.
fn draw_grid(buf: &mut Buffer, area: Rect, p: &SidePanel, range: f64, color: ColorMode) {
    let rec = &p.record;
    if area.height == 0 || area.width < 5 || rec.n_layers == 0 || rec.n_heads == 0 {
        return;
    }
    let rows = area.height as usize;
    let cols = (area.width as usize - 4).min(rec.n_heads);
    for y in 0..rows {
        let band = rows - 1 - y;
        let layers = row_layers(band, rows, rec.n_layers);
        let holds_cursor = layers.contains(&p.cursor.0);
        if y == 0 || y + 1 == rows || holds_cursor {
            let label = format!("{:>3}", layers.first().copied().unwrap_or(0));
            buf.set_string(
                area.x,
                area.y + y as u16,
                label,
                Style::default().fg(Color::Gray),
            );
        }
        for c in 0..cols {
            let heads = col_heads(c, cols, rec.n_heads);
            let v = strongest(rec, &layers, &heads);
            let cell = &mut buf[(area.x + 4 + c as u16, area.y + y as u16)];
            let bg = v.map_or((40, 40, 40), |v| diverging(v, range));
            cell.set_bg(color.rgb(bg));
            if holds_cursor && heads.contains(&p.cursor.1) {
                cell.set_symbol("◆");
                cell.set_fg(color.rgb(contrast_text(bg)));
            } else {
                cell.set_symbol(" ");
            }
        }
    }
}

/// The value of largest |r| among `layers` × `heads` of `rec`, if any is computed.
fn strongest(rec: &RunRecord, layers: &[usize], heads: &[usize]) -> Option<f64> {
    layers
        .iter()
        .flat_map(|&l| heads.iter().map(move |&h| (l, h)))
        .filter_map(|(l, h)| rec.r(l, h).filter(|v| v.is_finite()))
        .max_by(|a, b| a.abs().total_cmp(&b.abs()))
}
