//! The attention view: a head's query × key grid with the prompt's tokens as labels, or bars of
//! one query row (by default the final position, e.g. the last `=`).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::model::tokenizer::printable;
use crate::tui::app::App;
use crate::tui::color::{contrast_text, sequential};
use crate::worker::{PromptChoice, RunKind};

/// A token label of at most `w` characters (spaces drawn visibly by `printable`: Qwen's " ="
/// and "=" are different tokens).
pub fn short(tok: &str, w: usize) -> String {
    let p = printable(tok);
    let t: String = p.chars().take(w).collect();
    if t.is_empty() {
        "∅".into()
    } else {
        t
    }
}

/// An attention weight as a grid cell prints it: tenths (".4"), "1.0", or nothing below .05.
pub fn weight_text(p: f64) -> &'static str {
    const TENTHS: [&str; 10] = ["", ".1", ".2", ".3", ".4", ".5", ".6", ".7", ".8", ".9"];
    let t = (p * 10.0).round();
    if t >= 10.0 {
        "1.0"
    } else {
        TENTHS[t.max(0.0) as usize]
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let a = &app.attention;
    let Some(&(l, h)) = a.heads.get(a.current) else {
        frame.render_widget(
            Paragraph::new("no head chosen: press a on the heatmap"),
            area,
        );
        return;
    };
    let [head, body] = Layout::vertical([Constraint::Length(2), Constraint::Min(0)]).areas(area);
    let run = match a.run {
        RunKind::Normal => "normal",
        RunKind::Contrast => "contrast",
    };
    let prompts = match a.prompts {
        PromptChoice::Mean(n) => format!("mean of the first {n} prompts"),
        PromptChoice::One(i) => format!("prompt {} alone", i + 1),
    };
    let mut tabs: Vec<Span> = vec![Span::styled(
        format!("Attention H{l}.{h} · {run} run · {prompts} "),
        Style::default().add_modifier(Modifier::BOLD),
    )];
    if a.heads.len() > 1 {
        for (i, (hl, hh)) in a.heads.iter().enumerate() {
            let s = if i == a.current {
                Style::default().add_modifier(Modifier::REVERSED)
            } else {
                Style::default().fg(Color::Gray)
            };
            tabs.push(Span::styled(format!(" H{hl}.{hh} "), s));
        }
    }
    let sub = if a.waiting.is_some() {
        "computing…".to_string()
    } else {
        let labels = match a.prompts {
            PromptChoice::Mean(n) if n > 1 => {
                format!("values: mean over {n} prompts, labels: prompt 1's tokens")
            }
            _ => "labels: this prompt's tokens".to_string(),
        };
        format!("{labels} · n normal/contrast · +/- prompts · p one · b bars · ↑↓ query · Esc")
    };
    frame.render_widget(
        Paragraph::new(vec![
            super::fit_line(Line::from(tabs), head.width as usize),
            super::fit_line(
                Line::from(Span::styled(sub, Style::default().fg(Color::DarkGray))),
                head.width as usize,
            ),
        ]),
        head,
    );
    let Some(pattern) = a.patterns.get(a.current) else {
        return;
    };
    let n = pattern.len();
    if n == 0 || body.height < 2 || body.width < 10 {
        return;
    }
    let query = a.query.unwrap_or(n - 1).min(n - 1);
    if a.bars {
        draw_bars(frame, body, app, pattern, query);
    } else {
        draw_grid(frame, body, app, pattern, query);
    }
}

/// The narrowest grid cell: a weight (".4") and a space, so neighbours stay apart ("1.0" only
/// when every other weight of the row is below .05 and blank).
const GRID_CW: u16 = 3;
/// The widest grid cell: wider cells only serve labels, and cost keys.
const GRID_CW_MAX: u16 = 9;
/// The most characters a query row's token label takes, however wide the terminal.
const ROW_TOKEN_MAX: usize = 24;

/// Where the grid's parts go: which queries (rows) and keys (columns) are shown, how wide
/// the cells and the labels are. Computed from the area, so that a wide terminal shows whole
/// tokens and a narrow one says, with `▴`/`▾`/`◂`/`▸`, what is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridPlan {
    /// First query row shown, and how many.
    pub q0: usize,
    pub rows: usize,
    /// First key column shown, and how many.
    pub k0: usize,
    pub cols: usize,
    /// Cell width.
    pub cw: u16,
    /// Width of a query row's position number and of its token label.
    pub pos_w: usize,
    pub tok_w: usize,
    /// Key labels in two staggered lines (each label two cells wide) when one cell is too
    /// narrow for them.
    pub staggered: bool,
}

impl GridPlan {
    /// The grid of `n` positions in `width` × `height`, query `query` in view (the bottom row
    /// when the queries do not all fit: the final `=` is what the reader came for).
    pub fn new(width: u16, height: u16, tokens: &[String], n: usize, query: usize) -> Option<Self> {
        let pos_w = digits(n.saturating_sub(1)).max(3);
        let label_min = pos_w + 1 + 4 + 1;
        let longest = (0..n).map(|k| label_len(tokens, k)).max().unwrap_or(1);
        let room = (width as usize).checked_sub(label_min + 1)?;
        let by_width = (room / n.max(1)).min(GRID_CW_MAX as usize) as u16;
        let cw = (longest as u16 + 1).clamp(GRID_CW, GRID_CW_MAX.min(by_width.max(GRID_CW)));
        let cols = (room / cw as usize).min(n);
        let staggered = longest > cw as usize - 1;
        let header = if staggered { 3 } else { 2 };
        let avail = (height as usize).checked_sub(header)?;
        let rows = if n <= avail {
            n
        } else {
            avail.saturating_sub(1)
        };
        if cols == 0 || rows == 0 {
            return None;
        }
        let q0 = (query + 1).saturating_sub(rows).min(n - rows);
        let k0 = (q0 + rows).saturating_sub(cols);
        let spare = width as usize - pos_w - 2 - cols * cw as usize - 1;
        let tok_w = spare.clamp(4, ROW_TOKEN_MAX.max(4)).min(longest.max(4));
        Some(GridPlan {
            q0,
            rows,
            k0,
            cols,
            cw,
            pos_w,
            tok_w,
            staggered,
        })
    }

    /// Width of the query labels left of the grid (position, token, a gap).
    pub fn label_w(&self) -> u16 {
        (self.pos_w + 1 + self.tok_w + 1) as u16
    }

    /// Lines above the grid: key positions, then one or two lines of key labels.
    pub fn header(&self) -> u16 {
        if self.staggered {
            3
        } else {
            2
        }
    }
}

/// Decimal digits of `x`.
fn digits(x: usize) -> usize {
    x.to_string().len()
}

/// Characters of key `k`'s label.
fn label_len(tokens: &[String], k: usize) -> usize {
    tokens
        .get(k)
        .map_or(1, |t| short(t, usize::MAX).chars().count())
}

fn draw_grid(frame: &mut Frame, area: Rect, app: &App, pattern: &[Vec<f32>], query: usize) {
    let n = pattern.len();
    let tokens = &app.attention.tokens;
    let Some(plan) = GridPlan::new(area.width, area.height, tokens, n, query) else {
        return;
    };
    let buf = frame.buffer_mut();
    draw_key_header(buf, area, tokens, &plan, n);
    let dim = Style::default().fg(Color::DarkGray);
    let (x0, y0) = (area.x + plan.label_w(), area.y + plan.header());
    for r in 0..plan.rows {
        let q = plan.q0 + r;
        let y = y0 + r as u16;
        let tok = tokens.get(q).map_or("?".into(), |t| short(t, plan.tok_w));
        let style = if q == query {
            Style::default().add_modifier(Modifier::BOLD)
        } else {
            dim
        };
        let (pw, tw) = (plan.pos_w, plan.tok_w);
        let label = format!("{q:>pw$} {tok:<tw$}");
        buf.set_stringn(area.x, y, label, plan.label_w() as usize, style);
        for c in 0..plan.cols {
            let k = plan.k0 + c;
            if k > q {
                continue;
            }
            let p = pattern[q].get(k).copied().unwrap_or(0.0) as f64;
            let bg = sequential(p);
            let st = Style::default()
                .bg(app.color.rgb(bg))
                .fg(app.color.rgb(contrast_text(bg)));
            let x = x0 + c as u16 * plan.cw;
            buf.set_string(x, y, " ".repeat(plan.cw as usize), st);
            buf.set_string(x, y, weight_text(p), st);
        }
    }
    if plan.q0 + plan.rows < n {
        let below = n - plan.q0 - plan.rows;
        let y = y0 + plan.rows as u16;
        buf.set_string(area.x, y, format!("▾ {below} more rows (↓)"), dim);
    }
}

/// The lines above the grid: each key's position (with `▴` when query rows are cut above,
/// `◂`/`▸` when key columns are cut left/right), then the keys' token labels, in one line
/// when they fit a cell or in two staggered lines, each label two cells wide.
fn draw_key_header(
    buf: &mut ratatui::buffer::Buffer,
    area: Rect,
    tokens: &[String],
    plan: &GridPlan,
    n: usize,
) {
    let dim = Style::default().fg(Color::DarkGray);
    let mark = Style::default().fg(Color::Yellow);
    let x0 = area.x + plan.label_w();
    let cw = plan.cw as usize;
    let every = if digits(n.saturating_sub(1)) < cw {
        1
    } else {
        2
    };
    for c in (0..plan.cols).filter(|c| c % every == 0) {
        let k = plan.k0 + c;
        let x = x0 + (c * cw) as u16;
        buf.set_stringn(x, area.y, k.to_string(), every * cw - 1, dim);
    }
    if plan.q0 > 0 {
        let w = plan.label_w() as usize - 2;
        let above = format!("▴ 0–{}", plan.q0 - 1);
        buf.set_stringn(area.x, area.y, above, w, mark);
    }
    if plan.k0 > 0 {
        buf.set_string(x0 - 1, area.y, "◂", mark);
    }
    if plan.k0 + plan.cols < n.min(plan.q0 + plan.rows) {
        buf.set_string(x0 + (plan.cols * cw) as u16, area.y, "▸", mark);
    }
    let (lines, w) = if plan.staggered {
        (2, 2 * cw - 1)
    } else {
        (1, cw - 1)
    };
    for c in 0..plan.cols {
        let k = plan.k0 + c;
        let t = tokens.get(k).map_or("?".into(), |t| short(t, w));
        let (x, y) = (x0 + (c * cw) as u16, area.y + 1 + (c % lines) as u16);
        buf.set_stringn(x, y, t, w, dim);
    }
}

fn draw_bars(frame: &mut Frame, area: Rect, app: &App, pattern: &[Vec<f32>], query: usize) {
    let tokens = &app.attention.tokens;
    let row = &pattern[query];
    let qtok = tokens.get(query).map_or("?".into(), |t| short(t, 6));
    let mut lines = vec![Line::from(Span::styled(
        format!("query {query} {qtok:?} attends to:"),
        Style::default().add_modifier(Modifier::BOLD),
    ))];
    let mut order: Vec<usize> = (0..=query.min(row.len().saturating_sub(1))).collect();
    let top: Vec<usize> = {
        let mut o = order.clone();
        o.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        o.into_iter().take(5).collect()
    };
    let bar_w = area.width.saturating_sub(22) as f32;
    let max_rows = area.height.saturating_sub(1) as usize;
    if order.len() > max_rows {
        // Too many keys for the height: keep the largest weights, in position order.
        let mut keep: Vec<usize> = order.clone();
        keep.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        keep.truncate(max_rows);
        keep.sort_unstable();
        order = keep;
    }
    for k in order {
        let p = row[k];
        let full = (p * bar_w).max(0.0);
        let n_full = full as usize;
        let bar: String = "█".repeat(n_full)
            + if full - n_full as f32 >= 0.5 {
                "▌"
            } else {
                ""
            };
        let tok = tokens.get(k).map_or("?".into(), |t| short(t, 5));
        let style = if top.contains(&k) && p >= 0.05 {
            Style::default()
                .fg(Color::Magenta)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        };
        lines.push(Line::from(vec![
            Span::styled(
                format!(
                    "{k:>4} {tok:<5} {:>5} ",
                    crate::plot::number::fixed(p.into(), 2)
                ),
                style,
            ),
            Span::styled(bar, Style::default().fg(app.color.rgb(sequential(1.0)))),
        ]));
    }
    frame.render_widget(Paragraph::new(lines), area);
}
