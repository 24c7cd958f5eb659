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

/// A token label of at most `w` characters.
fn short(tok: &str, w: usize) -> String {
    let p = printable(tok);
    let t: String = p.chars().take(w).collect();
    if t.is_empty() {
        "∅".into()
    } else {
        t
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
        "digits: tenths of attention · n normal/contrast · +/- prompts · p one prompt · b bars · ↑↓ query · Esc".into()
    };
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(tabs),
            Line::from(Span::styled(sub, Style::default().fg(Color::DarkGray))),
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

fn draw_grid(frame: &mut Frame, area: Rect, app: &App, pattern: &[Vec<f32>], query: usize) {
    let tokens = &app.attention.tokens;
    let n = pattern.len();
    let label_w: u16 = 9;
    let cw: u16 = if (area.width.saturating_sub(label_w)) as usize >= 2 * n {
        2
    } else {
        1
    };
    let cols = (((area.width.saturating_sub(label_w)) / cw) as usize).min(n);
    let rows = (area.height.saturating_sub(1) as usize).min(n);
    // Show the last queries (the final `=` matters most) and the keys they can see.
    let q0 = if query + 1 > rows {
        query + 1 - rows
    } else {
        n.saturating_sub(rows).min(query)
    };
    let q0 = q0.min(n - rows);
    let k0 = if cols < n {
        (q0 + rows).saturating_sub(cols)
    } else {
        0
    };
    let buf = frame.buffer_mut();
    let dim = Style::default().fg(Color::DarkGray);
    for c in 0..cols {
        let k = k0 + c;
        let t = tokens.get(k).map_or("?".into(), |t| short(t, cw as usize));
        buf.set_stringn(
            area.x + label_w + c as u16 * cw,
            area.y,
            t,
            cw as usize,
            dim,
        );
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
            let p = pattern[q].get(k).copied().unwrap_or(0.0) as f64;
            let bg = sequential(p);
            let mut st = Style::default()
                .bg(app.color.rgb(bg))
                .fg(app.color.rgb(contrast_text(bg)));
            if k > q {
                st = Style::default();
            }
            let txt = if cw == 2 && p >= 0.995 {
                "1."
            } else if cw == 2 && p >= 0.095 {
                &format!("{:>2}", (p * 10.0).round() as u32 % 10)[..]
            } else {
                ""
            };
            buf.set_string(
                area.x + label_w + c as u16 * cw,
                y,
                " ".repeat(cw as usize),
                st,
            );
            if !txt.is_empty() && k <= q {
                buf.set_stringn(area.x + label_w + c as u16 * cw, y, txt, cw as usize, st);
            }
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
            Span::styled(format!("{k:>4} {tok:<5} {p:>5.2} "), style),
            Span::styled(bar, Style::default().fg(app.color.rgb(sequential(1.0)))),
        ]));
    }
    frame.render_widget(Paragraph::new(lines), area);
}
