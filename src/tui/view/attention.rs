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

/// Grid cells: 3 characters, a label or weight left-aligned in the first two or three, so
/// labels and digits line up and neighbours stay apart (".4" then a space; "1.0" only when
/// every other weight of the row is below .05 and blank).
const GRID_CW: u16 = 3;

fn draw_grid(frame: &mut Frame, area: Rect, app: &App, pattern: &[Vec<f32>], query: usize) {
    let tokens = &app.attention.tokens;
    let n = pattern.len();
    let label_w: u16 = 9;
    let cw = GRID_CW;
    let cols = (((area.width.saturating_sub(label_w)) / cw) as usize).min(n);
    let rows = (area.height.saturating_sub(1) as usize).min(n);
    if cols == 0 || rows == 0 {
        return;
    }
    // Show the last queries (the final `=` matters most) and the keys they can see.
    let q0 = (query + 1).saturating_sub(rows).min(n - rows);
    let k0 = (q0 + rows).saturating_sub(cols);
    let buf = frame.buffer_mut();
    let dim = Style::default().fg(Color::DarkGray);
    for c in 0..cols {
        let k = k0 + c;
        let t = tokens.get(k).map_or("?".into(), |t| short(t, 2));
        buf.set_stringn(area.x + label_w + c as u16 * cw, area.y, t, 2, dim);
    }
    for r in 0..rows {
        let q = q0 + r;
        let y = area.y + 1 + r as u16;
        let tok = tokens.get(q).map_or("?".into(), |t| short(t, 4));
        let style = if q == query {
            Style::default().add_modifier(Modifier::BOLD)
        } else {
            dim
        };
        buf.set_stringn(
            area.x,
            y,
            format!("{q:>3} {tok:<4}"),
            label_w as usize,
            style,
        );
        for c in 0..cols {
            let k = k0 + c;
            if k > q {
                continue;
            }
            let p = pattern[q].get(k).copied().unwrap_or(0.0) as f64;
            let bg = sequential(p);
            let st = Style::default()
                .bg(app.color.rgb(bg))
                .fg(app.color.rgb(contrast_text(bg)));
            let x = area.x + label_w + c as u16 * cw;
            buf.set_string(x, y, " ".repeat(cw as usize), st);
            buf.set_string(x, y, weight_text(p), st);
        }
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
