//! Drawing: the title line with breadcrumbs, one full-screen view per `Screen`, the status bar,
//! and the help and input overlays. Every function copes with any terminal size, down to a few
//! cells (it then draws less, never panics).

pub mod attention;
pub mod circuit;
pub mod heatmap;
pub mod other;
pub mod side;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget, Wrap};
use ratatui::Frame;

use super::app::{App, Level, Screen};
use super::keymap;

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
        Screen::Attention => attention::draw(frame, main, app),
        Screen::Setup => other::setup(frame, main, app),
        Screen::Gallery => other::gallery(frame, main, app),
        Screen::Compare => other::compare(frame, main, app),
        Screen::Circuit => circuit::draw(frame, main, app),
        Screen::Side => side::draw(frame, main, app),
        Screen::Runs => other::runs(frame, main, app),
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

/// "N examples, S shots, offset +K" — shots and offset only for tasks that use them.
pub fn data_words(d: &crate::results::DataInfo) -> String {
    if d.spec.task == crate::data::TaskKind::Pairs {
        format!("{} prompt pairs", d.n_examples)
    } else {
        format!(
            "{} examples, {} shots, offset {:+}",
            d.n_examples, d.spec.shots, d.spec.offset
        )
    }
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
    let examples = rec
        .data
        .as_ref()
        .map(|d| format!(" · {} ex", d.n_examples))
        .unwrap_or_default();
    let drill = format!("Enter drills into {}", app.drill_input.letter());
    let info = Line::from(vec![
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
    ]);
    frame.render_widget(
        Paragraph::new(fit_line(info, areas.info.width as usize)),
        areas.info,
    );
    let range = heatmap::color_range(rec, app.range, app.layer_range());
    let Some(geom) = heatmap::plan(app, rec, areas.grid, Some(app.cursor), true) else {
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
            heatmap::any_marked(app),
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

/// The help screen's title and lines for a screen, read from its key table.
pub fn help_table(screen: Screen) -> (&'static str, Vec<(&'static str, &'static str)>) {
    match screen {
        Screen::Heatmap => {
            let mut lines = keymap::help_lines(keymap::HEATMAP);
            lines.extend_from_slice(keymap::HEATMAP_NOTES);
            ("heatmap", lines)
        }
        Screen::Attention => ("attention", keymap::help_lines(keymap::ATTENTION)),
        Screen::Setup => ("setup", keymap::help_lines(keymap::SETUP)),
        Screen::Gallery => ("gallery", keymap::help_lines(keymap::GALLERY)),
        Screen::Compare => ("compare", keymap::help_lines(keymap::COMPARE)),
        Screen::Circuit => ("circuit", keymap::help_lines(keymap::CIRCUIT)),
        Screen::Side => ("side by side", keymap::help_lines(keymap::SIDE)),
        Screen::Runs => ("runs", keymap::help_lines(keymap::RUNS)),
    }
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
const HELP_GAP: usize = 3;

pub fn help_plan(screen: Screen, area: Rect) -> HelpPlan {
    let (title, keys) = help_table(screen);
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
fn wrap_words(text: &str, w: usize) -> Vec<String> {
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

/// The furthest the help can scroll on `screen` at the terminal size `viewport`.
pub fn help_max_scroll(screen: Screen, viewport: (u16, u16)) -> usize {
    let p = help_plan(screen, Rect::new(0, 0, viewport.0, viewport.1));
    p.per_col.saturating_sub(p.shown)
}

fn help(frame: &mut Frame, area: Rect, app: &App) {
    if area.width.min(100) < 12 || area.height < 3 {
        return;
    }
    let p = help_plan(app.screen, area);
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
