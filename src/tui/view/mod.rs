//! Drawing: the title line with breadcrumbs, one full-screen view per `Screen`, the status bar,
//! and the help and input overlays. Every function copes with any terminal size, down to a few
//! cells (it then draws less, never panics).

pub mod circuit;
pub mod heatmap;
pub mod other;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget, Wrap};
use ratatui::Frame;

pub use super::app::{data_words, help_table};
pub use super::layout::{fit_line, fit_lines, line_width};
pub use super::layout::{heatmap_areas, help_plan, main_area, HeatmapAreas, HelpPlan};

use super::app::{App, Level, Screen};
use super::layout::{self, HELP_GAP};

const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App) {
    draw_screen(frame, app);
    no_control_characters(frame.buffer_mut());
}

/// Text from files (a model label, a data path, token texts) can hold terminal control
/// sequences. ratatui drops control characters from spans, but a widget that sets cell
/// symbols itself would pass them on: every cell is checked once here, after all drawing.
fn no_control_characters(buf: &mut ratatui::buffer::Buffer) {
    for cell in buf.content.iter_mut() {
        if cell.symbol().contains(char::is_control) {
            cell.set_symbol("?");
        }
    }
}

fn draw_screen(frame: &mut Frame, app: &App) {
    let area = frame.area();
    if area.width < 4 || area.height < 2 {
        return;
    }
    let [top, main, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    title_line(frame, top, app);
    match app.screen {
        Screen::Heatmap => heatmap_screen(frame, area, app),
        Screen::Setup => other::setup(frame, main, app),
        Screen::Gallery => other::gallery(frame, main, app),
        Screen::Compare => other::compare(frame, main, app),
        Screen::Circuit => circuit::draw(frame, main, app),
        _ => {
            app.draw_component(frame, main);
        }
    }
    status_bar(frame, status, app);
    if let Some(input) = &app.input {
        let h = 3.min(main.height);
        if h >= 3 {
            let r = Rect {
                x: main.x,
                y: main.y + main.height - h,
                width: main.width,
                height: h,
            };
            frame.render_widget(Clear, r);
            let (before, after): (String, String) = {
                let chars: Vec<char> = input.buffer.chars().collect();
                let c = input.cursor.min(chars.len());
                (chars[..c].iter().collect(), chars[c..].iter().collect())
            };
            let mut under = after.chars();
            let at = under.next().map_or(" ".to_string(), |c| c.to_string());
            let value_style = if input.fresh {
                Style::default().fg(Color::Gray)
            } else {
                Style::default()
            };
            let text = Line::from(vec![
                Span::styled(before, value_style),
                Span::styled(at, Style::default().add_modifier(Modifier::REVERSED)),
                Span::styled(under.collect::<String>(), value_style),
            ]);
            let title = match &input.error {
                Some(e) => Line::from(Span::styled(
                    format!(" {e} (edit, Enter / Esc) "),
                    Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
                )),
                None if input.fresh => {
                    Line::from(format!(" {} (type to replace, Enter / Esc) ", input.label))
                }
                None => Line::from(format!(" {} (Enter / Esc) ", input.label)),
            };
            Paragraph::new(text)
                .block(Block::default().borders(Borders::ALL).title(title))
                .render(r, frame.buffer_mut());
        }
    }
    if app.help {
        // Over the whole screen: at 80×24 every key fits in one column.
        help(frame, area, app);
    }
    if app.confirm_quit {
        quit_prompt(frame, main, app);
    }
}

fn title_line(frame: &mut Frame, area: Rect, app: &App) {
    let model = app.context_name().unwrap_or_else(|| {
        if app.load_error.is_some() {
            "no model loaded".into()
        } else {
            "loading…".into()
        }
    });
    let mut spans = vec![
        Span::styled(
            " headhunt ",
            Style::default()
                .fg(Color::Black)
                .bg(Color::Cyan)
                .add_modifier(Modifier::BOLD),
        ),
        Span::raw(" "),
        Span::styled(model, Style::default().add_modifier(Modifier::BOLD)),
        Span::raw(" │ "),
    ];
    let crumbs = app.breadcrumbs();
    for (i, c) in crumbs.iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" → ", Style::default().fg(Color::DarkGray)));
        }
        let style = if i == app.trail_pos {
            Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
        } else {
            Style::default().fg(Color::Gray)
        };
        spans.push(Span::styled(c.clone(), style));
    }
    frame.render_widget(
        Paragraph::new(fit_line(Line::from(spans), area.width as usize)),
        area,
    );
}

/// Before a record exists: what would run, and how to start it.
fn pending_lines(app: &App, slot: &super::app::RunSlot, state_text: &str) -> Vec<Line<'static>> {
    let mut lines = vec![Line::from(format!(
        "receiver {} (senders from layer {}) — {state_text}",
        slot.key.receiver, slot.key.begin_layer
    ))];
    if let Some(spec) = app.current_spec() {
        let n = spec.n_senders(app.n_heads());
        let eta = app
            .eta(&spec)
            .map(|e| format!(", ETA ≈ {e:.2} s"))
            .unwrap_or_default();
        // The senders' layers end below a head receiver's own layer (a head hears only
        // layers below it), as `n_senders` counts them.
        let layers = match spec.receiver.last_sender_layer() {
            Some(last) => format!("layers {}..={last}", spec.begin_layer),
            None => "no layer".to_string(),
        };
        lines.push(Line::from(format!(
            "{n} senders ({layers} × {} heads){eta}",
            app.n_heads()
        )));
    }
    if let Some(d) = &app.data {
        lines.push(Line::from(format!(
            "{}, batch {}",
            data_words(&d.info),
            app.setup.batch_size
        )));
        if let Some(e) = &d.eval {
            lines.push(Line::from(e.summary()));
            for w in &e.warnings {
                lines.push(Line::from(Span::styled(
                    format!("⚠ {w}"),
                    Style::default().fg(Color::Yellow),
                )));
            }
        }
    }
    lines.push(Line::from(""));
    lines.push(Line::from("r runs it · m setup · w gallery · ? help"));
    lines
}

/// The heatmap's line above the grid: receiver, begin layer, state, examples, what Enter does.
fn info_line(app: &App, rec: &crate::results::RunRecord, state_text: &str) -> Line<'static> {
    let examples = rec
        .data
        .as_ref()
        .map(|d| format!(" · {} ex", d.n_examples))
        .unwrap_or_default();
    let drill = format!("Enter drills into {}", app.drill_input.letter());
    Line::from(vec![
        Span::styled(
            format!("{} ", rec.receiver_label),
            Style::default().add_modifier(Modifier::BOLD),
        ),
        Span::styled(
            format!(
                "· senders from layer {} · {state_text}{examples} · {drill}",
                rec.begin_layer
            ),
            Style::default().fg(Color::Gray),
        ),
    ])
}

fn heatmap_screen(frame: &mut Frame, full: Rect, app: &App) {
    let Some(areas) = heatmap_areas(full) else {
        return;
    };
    let area = main_area(full).unwrap_or(areas.grid);
    let Some(slot) = app.current() else {
        let msg = match (&app.load_error, app.loading) {
            (Some(e), _) => format!("could not load: {e}\n\npress m to change the setup"),
            (None, true) => "loading the model and data…".to_string(),
            (None, false) => "no receiver yet: press : to type one".to_string(),
        };
        frame.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), area);
        return;
    };
    let state_text = heatmap::run_state_text(&slot.state);
    let Some(rec) = slot.record.as_ref() else {
        let lines = pending_lines(app, slot, &state_text);
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), area);
        return;
    };
    let info = info_line(app, rec, &state_text);
    frame.render_widget(
        Paragraph::new(fit_line(info, areas.info.width as usize)),
        areas.info,
    );
    let range = layout::color_range(rec, app.range, app.layer_range());
    let Some(geom) = layout::plan(rec, areas.grid, Some(app.cursor), app.grid_view(rec, true))
    else {
        return;
    };
    let too_wide = heatmap::draw_heatmap(
        frame.buffer_mut(),
        areas.grid,
        app,
        rec,
        &geom,
        Some(app.cursor),
        &range,
        app.color,
        true,
    );
    let legend = vec![
        fit_line(
            heatmap::legend(&range, app.color),
            areas.legend.width as usize,
        ),
        heatmap::legend_notes(
            too_wide,
            app.any_marked(),
            app.crop.map(|_| app.layer_range_of(rec.n_layers)),
            rec,
            &geom,
            areas.legend.width,
        ),
    ];
    frame.render_widget(Paragraph::new(legend), areas.legend);
    if let Some(right) = areas.side {
        let block = Block::default().borders(Borders::LEFT);
        let inner = block.inner(right);
        frame.render_widget(block, right);
        heatmap::draw_readout(frame.buffer_mut(), inner, app, rec);
    }
}

/// The quit prompt over the screen: every unsaved thing (`App::unsaved_list`), one a line,
/// and the keys that answer it.
fn quit_prompt(frame: &mut Frame, area: Rect, app: &App) {
    let list = app.unsaved_list();
    let w = area.width.min(76);
    let room = area.height.saturating_sub(4) as usize;
    if w < 20 || room == 0 {
        return;
    }
    let mut lines: Vec<Line> = Vec::new();
    let cut = list.len() > room;
    let keep = if cut { room - 1 } else { list.len() };
    for item in &list[..keep] {
        lines.push(fit_line(Line::from(format!("• {item}")), w as usize - 2));
    }
    if cut {
        lines.push(Line::from(format!("  +{} more", list.len() - keep)));
    }
    let keys = "a saves all and quits · q quits without saving · any other key stays";
    lines.push(Line::from(Span::styled(
        other::ellipsize(keys, w as usize - 2),
        Style::default().fg(Color::Yellow),
    )));
    let h = lines.len() as u16 + 2;
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height.saturating_sub(h)) / 2,
        width: w,
        height: h.min(area.height),
    };
    frame.render_widget(Clear, r);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(Style::default().fg(Color::Yellow))
        .title(" not saved ");
    frame.render_widget(Paragraph::new(lines).block(block), r);
}

fn status_bar(frame: &mut Frame, area: Rect, app: &App) {
    let tick = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        / 100) as usize;
    let mut spans = Vec::new();
    let running = app.runs.iter().find_map(|s| match &s.state {
        super::app::RunState::Running {
            done, total, eta, ..
        } => Some((s.key.receiver.label(), *done, *total, *eta)),
        _ => None,
    });
    if let Some((label, done, total, eta)) = running {
        let eta = if eta.is_finite() {
            format!(", ETA {eta:.1} s")
        } else {
            String::new()
        };
        spans.push(Span::styled(
            format!(
                " {} patching → {label}: {done}/{total} sender layers{eta} (c cancels) ",
                SPINNER[tick % SPINNER.len()]
            ),
            Style::default().fg(Color::Black).bg(Color::Yellow),
        ));
        spans.push(Span::raw(" "));
    } else if let Some(j) = app.jobs.first() {
        spans.push(Span::styled(
            format!(" {} {} ", SPINNER[tick % SPINNER.len()], j.what),
            Style::default().fg(Color::Black).bg(Color::Yellow),
        ));
        spans.push(Span::raw(" "));
    }
    let style = match app.status.0 {
        Level::Info => Style::default(),
        Level::Warn => Style::default().fg(Color::Yellow),
        Level::Error => Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
    };
    spans.push(Span::styled(app.status.1.clone(), style));
    let help = " ? help ";
    let [l, r] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(help.len() as u16)]).areas(area);
    frame.render_widget(
        Paragraph::new(fit_line(Line::from(spans), l.width as usize)),
        l,
    );
    frame.render_widget(
        Paragraph::new(Span::styled(
            help,
            Style::default().fg(Color::Black).bg(Color::Gray),
        )),
        r,
    );
}

fn help(frame: &mut Frame, area: Rect, app: &App) {
    if area.width.min(100) < 12 || area.height < 3 {
        return;
    }
    let p = help_plan(help_table(app.screen), area);
    let (w, shown, per_col) = (p.width, p.shown, p.per_col);
    let scroll = app.help_scroll.min(per_col - shown);
    let h = (shown as u16 + 2).min(area.height);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    frame.render_widget(Clear, r);
    let mut block = Block::default()
        .borders(Borders::ALL)
        .title(format!(" keys: {} · ? or Esc closes ", p.title));
    // Say what is clipped, and which way it scrolls.
    let more = match (scroll > 0, scroll + shown < per_col) {
        (true, true) => " more ↑↓ (j/k) ",
        (true, false) => " more ↑ (k) ",
        (false, true) => " more ↓ (j) ",
        (false, false) => "",
    };
    if !more.is_empty() {
        block = block.title_bottom(Line::from(more).right_aligned());
    }
    let inner = block.inner(r);
    frame.render_widget(block, r);
    let key_w = p.key_w;
    for (c, column) in p.columns.iter().enumerate() {
        let lines: Vec<Line> = column
            .iter()
            .skip(scroll)
            .map(|(k, d)| {
                Line::from(vec![
                    Span::styled(
                        format!("{k:<key_w$}"),
                        Style::default()
                            .fg(Color::Cyan)
                            .add_modifier(Modifier::BOLD),
                    ),
                    Span::raw(d.to_string()),
                ])
            })
            .collect();
        let x = inner.x + (c * (p.col_w + HELP_GAP)) as u16;
        if x >= inner.right() {
            break;
        }
        let area = Rect {
            x,
            y: inner.y,
            width: (p.col_w as u16).min(inner.right() - x),
            height: inner.height,
        };
        frame.render_widget(Paragraph::new(lines), area);
    }
}
