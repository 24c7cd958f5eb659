//! The setup form (model, data, run parameters, a prompt pair with its tokens, baselines), the
//! gallery of saved results, and the comparison of two results.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

use crate::results::RunRecord;
use crate::tui::app::{detail_rows_shown, setup_detail_rows};
use crate::tui::app::{App, EntryKind, Gallery, GalleryEntry, SETUP_FIELDS};
use crate::tui::layout::{self, compare_panels, difference, ColorRange};
pub use crate::tui::layout::{ellipsize, ellipsize_middle};

use super::heatmap;

pub fn setup(frame: &mut Frame, area: Rect, app: &App) {
    let (form, info, cols) = layout::setup_areas(area, SETUP_FIELDS.len());
    let per_col = SETUP_FIELDS.len().div_ceil(cols);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(" setup · Enter edits · L loads ");
    let inner = block.inner(form);
    frame.render_widget(block, form);
    let col_w = inner.width / cols as u16;
    for c in 0..cols {
        let rows = c * per_col..((c + 1) * per_col).min(SETUP_FIELDS.len());
        let lines: Vec<Line> = rows.map(|i| setup_row(app, i, col_w)).collect();
        let r = Rect {
            x: inner.x + c as u16 * col_w,
            width: col_w,
            ..inner
        };
        frame.render_widget(Paragraph::new(lines), r);
    }
    let rows = setup_detail_rows(app, info.width);
    let (shown, hint) = setup_detail_view(app, info, rows.len());
    let scroll = app
        .setup_screen
        .scroll
        .min(rows.len().saturating_sub(shown));
    let mut lines: Vec<Line> = rows.into_iter().skip(scroll).take(shown).collect();
    if let Some(h) = hint {
        lines.push(super::fit_line(h, info.width as usize));
    }
    frame.render_widget(Paragraph::new(lines), info);
}

/// Rows of the details shown in `info`, and the hint line under them when the details do
/// not fit or there is more than one example to show.
fn setup_detail_view(app: &App, info: Rect, total: usize) -> (usize, Option<Line<'static>>) {
    let n_examples = app.data.as_ref().map_or(0, |d| d.preview.len());
    let shown = detail_rows_shown(app, info, total);
    if shown == total && n_examples <= 1 {
        return (total, None);
    }
    let scroll = app.setup_screen.scroll.min(total.saturating_sub(shown));
    let mut parts = Vec::new();
    if n_examples > 1 {
        let at = app.setup_screen.example.min(n_examples - 1) + 1;
        parts.push(format!("example {at} of {n_examples}: n/p another"));
    }
    let below = total.saturating_sub(scroll + shown);
    match (scroll > 0, below > 0) {
        (_, true) => parts.push(format!("{below} more rows ↓ PgDn")),
        (true, false) => parts.push("↑ PgUp".into()),
        _ => {}
    }
    let hint = Line::from(Span::styled(
        parts.join(" · "),
        Style::default().fg(Color::DarkGray),
    ));
    (shown, Some(hint))
}

/// One field of the setup form in a column `col_w` wide.
fn setup_row(app: &App, i: usize, col_w: u16) -> Line<'static> {
    let style = if i == app.setup_screen.row {
        Style::default().add_modifier(Modifier::REVERSED)
    } else {
        Style::default()
    };
    // Long values (paths) keep their end, which tells them apart.
    let value = app.setup_form().field(i);
    let room = (col_w as usize).saturating_sub(15);
    let n = value.chars().count();
    let value = if n > room && room > 1 {
        format!("…{}", value.chars().skip(n - room + 1).collect::<String>())
    } else {
        value
    };
    Line::from(Span::styled(
        format!("{:<13} {value}", SETUP_FIELDS[i]),
        style,
    ))
}

pub fn gallery(frame: &mut Frame, area: Rect, app: &App) {
    let g = &app.gallery;
    let [list, detail] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Min(0)]).areas(area);
    let shown = g.shown();
    let at = shown.iter().position(|&i| i == g.selected);
    let visible = list.height.saturating_sub(2) as usize;
    let first = at.unwrap_or(0).saturating_sub(visible.saturating_sub(1));
    let entries = shown.iter().map(|&i| &g.entries[i]);
    let texts = gallery_lines(entries, list.width.saturating_sub(4) as usize);
    let lines: Vec<Line> = shown
        .iter()
        .zip(texts)
        .skip(first)
        .take(visible)
        .map(|(&i, text)| {
            let e = &g.entries[i];
            let mark = if g.marked == Some(i) { "* " } else { "  " };
            let style = if i == g.selected {
                Style::default().add_modifier(Modifier::REVERSED)
            } else if e.record.is_err() && e.kind == EntryKind::Run {
                Style::default().fg(Color::Red)
            } else {
                Style::default()
            };
            Line::from(Span::styled(format!("{mark}{text}"), style))
        })
        .collect();
    let block = Block::default()
        .borders(Borders::ALL)
        .title(gallery_title(g, at, shown.len(), list.width))
        .title_bottom(Line::from(more_marks(first, visible, shown.len())).right_aligned());
    frame.render_widget(Paragraph::new(lines).block(block), list);
    if let Some(e) = at.and(g.entries.get(g.selected)) {
        let text = match (&e.kind, &e.record) {
            (EntryKind::Analysis(f), _) => super::circuit::summary(f),
            (EntryKind::Groups(file), _) => file.summary(),
            (EntryKind::Run, Ok(r)) => crate::results::text::summary(r),
            (EntryKind::Run, Err(msg)) => msg.clone(),
        };
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: false }), detail);
    }
}

/// Whether entries are clipped above or below the list.
fn more_marks(first: usize, visible: usize, n: usize) -> &'static str {
    match (first > 0, first + visible < n) {
        (true, true) => " more ↑↓ ",
        (true, false) => " more ↑ ",
        (false, true) => " more ↓ ",
        (false, false) => "",
    }
}

/// The list's title: where the selection is among the entries shown, the filter in force
/// (and how many of all it lets through), and the keys where they fit (`?` lists them anyway).
fn gallery_title(g: &Gallery, at: Option<usize>, n: usize, width: u16) -> String {
    let position = match at {
        Some(a) if n > 0 => format!("{}/{n}", a + 1),
        _ => format!("0/{n}"),
    };
    let position = if g.filter.is_empty() {
        position
    } else {
        let all = g.entries.len();
        format!("{position} of {all} · filter \"{}\" (Esc clears)", g.filter)
    };
    [
        format!(" saved results {position} · Enter opens · m marks · c compares · d difference · / filters "),
        format!(" saved results {position} · Enter · m · c · d · / · ? keys "),
        format!(" saved results {position} "),
    ]
    .into_iter()
    .find(|t| t.chars().count() + 2 <= width as usize)
    .unwrap_or_else(|| ellipsize(&format!(" {position} "), (width as usize).saturating_sub(2)))
}

/// Gap between the gallery's columns.
const GAP: usize = 2;
/// Width each column is cut to, while the others still have more, before the time column is
/// given up: where a list is too narrow for this, the time goes first.
const COLUMN_COMFORT_W: [usize; 5] = [16, 12, 16, 16, 16];
/// Least width each column (name, what, model, data) is cut to on the narrowest lists.
const COLUMN_MIN_W: [usize; 5] = [12, 8, 8, 10, 16];

/// The gallery's column widths in `width` characters, from the widest cell of each column
/// (`natural`). Where they do not all fit, the widest column gives way first, one character
/// at a time, so that no column keeps room it does not need while another is squeezed to
/// nothing: down to `COLUMN_COMFORT_W` with the time shown, else without the time (its
/// width is then 0) down to `COLUMN_MIN_W`.
pub fn gallery_widths(natural: [usize; 5], width: usize) -> [usize; 5] {
    if let Some(w) = shrink_widest(natural, width, COLUMN_COMFORT_W) {
        return w;
    }
    let mut no_time = natural;
    no_time[4] = 0;
    shrink_widest(no_time, width, COLUMN_COMFORT_W)
        .or_else(|| shrink_widest(no_time, width, COLUMN_MIN_W))
        .unwrap_or_else(|| no_time.map(|x| x.min(COLUMN_MIN_W[0])))
}

/// `natural` with its widest columns cut, one character at a time, until the columns fit
/// `width` (gaps included); `None` when they do not at the `floor` widths.
fn shrink_widest(natural: [usize; 5], width: usize, floor: [usize; 5]) -> Option<[usize; 5]> {
    let total = |w: &[usize; 5]| {
        let shown = w.iter().filter(|&&x| x > 0).count();
        w.iter().sum::<usize>() + GAP * shown.saturating_sub(1)
    };
    let mut w = natural;
    while total(&w) > width {
        let cuttable = (0..4).filter(|&i| w[i] > floor[i].min(natural[i]));
        w[cuttable.max_by_key(|&i| w[i])?] -= 1;
    }
    Some(w)
}

/// The gallery's lines in `width` characters: file name, what, model, data and time in
/// aligned columns (`gallery_widths`); every cell cut ends in `…`, and so does a line cut
/// at the border.
pub fn gallery_lines<'a>(
    entries: impl IntoIterator<Item = &'a GalleryEntry> + Clone,
    width: usize,
) -> Vec<String> {
    let mut natural = [0usize; 5];
    for e in entries.clone() {
        for (wi, c) in natural.iter_mut().zip(&e.columns) {
            *wi = (*wi).max(c.chars().count());
        }
    }
    let w = gallery_widths(natural, width);
    entries
        .into_iter()
        .map(|e| {
            let cells: Vec<String> = (0..5)
                .filter(|&i| w[i] > 0)
                .map(|i| {
                    // File names differ at their end (`…-run0`, `…-run1`): cut in the middle.
                    let cell = match i {
                        0 => ellipsize_middle(&e.columns[i], w[i]),
                        _ => ellipsize(&e.columns[i], w[i]),
                    };
                    format!("{cell:<wi$}", wi = w[i])
                })
                .collect();
            ellipsize(cells.join(&" ".repeat(GAP)).trim_end(), width)
        })
        .collect()
}

/// The value of `rec` at the comparison's cursor, as its cells print it (for the titles).
fn at_cursor(app: &App, rec: &RunRecord, range: &ColorRange) -> String {
    let (l, h) = app.gallery.cursor;
    match layout::shown_value(rec, range.measure, l, h) {
        Some(v) => format!(
            "{l}.{h} {}{}",
            crate::plot::number::fixed(range.measure.shown(v), 2),
            range.measure.unit()
        ),
        None => format!("{l}.{h} not computed"),
    }
}

pub fn compare(frame: &mut Frame, area: Rect, app: &App) {
    let g = &app.gallery;
    let Some((m, a, e, b)) = g.compared() else {
        return;
    };
    let layers = app.layer_range_of(a.n_layers);
    let range = layout::compare_range((a, b), g.diff, app.range, layers);
    let d;
    // The value at the cursor first: it is what changes, and the file name may be cut.
    let shown: Vec<(&RunRecord, String)> = if g.diff {
        d = difference(a, b);
        let title = format!(
            "{} · difference of r: {} (d: side by side, Esc back)",
            at_cursor(app, &d, &range),
            d.receiver_label
        );
        vec![(&d, title)]
    } else {
        let title = |rec: &RunRecord, p: &std::path::Path| {
            let name = p.file_stem().unwrap_or_default().to_string_lossy();
            let at = at_cursor(app, rec, &range);
            format!("{at} · {name}: {}", rec.receiver_label)
        };
        vec![(a, title(a, &m.path)), (b, title(b, &e.path))]
    };
    for ((rec, title), [t, grid, legend]) in shown.into_iter().zip(compare_panels(area, g.diff)) {
        let line = super::fit_line(Line::from(title), t.width as usize);
        frame.render_widget(Paragraph::new(line), t);
        grid_with_legend(frame, grid, legend, app, rec, &range);
    }
}

/// A heatmap with the comparison's cursor (scrolled to it), and its two-line legend.
fn grid_with_legend(
    frame: &mut Frame,
    grid: Rect,
    legend: Rect,
    app: &App,
    rec: &RunRecord,
    range: &ColorRange,
) {
    let cursor = Some(app.gallery.cursor);
    let marks = app.compare_shows_marks();
    let Some(g) = layout::plan(rec, grid, cursor, app.grid_view(rec, marks)) else {
        return;
    };
    let too_wide = heatmap::draw_heatmap(
        frame.buffer_mut(),
        grid,
        app,
        rec,
        &g,
        cursor,
        range,
        app.color,
        marks,
    );
    let lines = vec![
        super::fit_line(heatmap::legend(range, app.color), legend.width as usize),
        heatmap::legend_notes(
            too_wide,
            false,
            app.crop.map(|_| app.layer_range_of(rec.n_layers)),
            rec,
            &g,
            legend.width,
        ),
    ];
    frame.render_widget(Paragraph::new(lines), legend);
}
