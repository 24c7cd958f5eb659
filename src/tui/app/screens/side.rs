//! Results side by side (`headhunt open A.json B.json …`): any number of path-patching
//! results, of any models and shapes, each in its own panel with its own cursor. The panels
//! share a depth-normalized layer axis (the view draws each model's layers over the same
//! height), so that the paper's Gemma-2-9B (42 layers) and the 32-layer models line up by
//! depth, not by layer number; a difference needs equal shapes and stays the gallery's.

//!
//! Its drawing: one panel per result, each with its readout (receiver, shape, the value under
//! its own cursor), a colour grid on a depth-normalized layer axis (every panel's layers
//! spread over the same rows, the last layer on top), and its largest heads. Where the panels
//! do not all fit the width, the view pages: the page holding the focused panel.

use std::path::PathBuf;

use crossterm::event::KeyCode;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget};
use ratatui::Frame;

use super::Component;
use crate::plot::number::signed;
use crate::results::{RunRecord, SavedFile};
use crate::tui::app::{record_model_name, Level, Screen, Session};
use crate::tui::color::{contrast_text, diverging, ColorMode};
use crate::tui::keymap::Binding;
use crate::tui::layout::{ellipsize, ellipsize_middle, fit_line};

use KeyCode::Char as C;

/// What the user asked for on the side-by-side view (`SideView::update`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SideAction {
    Up,
    Down,
    Left,
    Right,
    Next,
    Previous,
    Figure,
    Help,
    Back,
    Quit,
}

/// The side-by-side view's keys.
pub const SIDE: &[Binding<SideAction>] = &[
    Binding {
        label: "hjkl ←↓↑→",
        what: "move the focused panel's cursor (k/↑ a layer up)",
        keys: &[
            (C('h'), SideAction::Left),
            (C('j'), SideAction::Down),
            (C('k'), SideAction::Up),
            (C('l'), SideAction::Right),
            (KeyCode::Left, SideAction::Left),
            (KeyCode::Down, SideAction::Down),
            (KeyCode::Up, SideAction::Up),
            (KeyCode::Right, SideAction::Right),
        ],
    },
    Binding {
        label: "Tab  S-Tab",
        what: "next / previous panel (pages where not all fit)",
        keys: &[
            (KeyCode::Tab, SideAction::Next),
            (KeyCode::BackTab, SideAction::Previous),
        ],
    },
    Binding {
        label: "F",
        what: "figure of the panels side by side (.svg, .png) in the results folder",
        keys: &[(C('F'), SideAction::Figure)],
    },
    Binding {
        label: "?",
        what: "this help",
        keys: &[(C('?'), SideAction::Help)],
    },
    Binding {
        label: "Esc",
        what: "back to the heatmap",
        keys: &[(KeyCode::Esc, SideAction::Back)],
    },
    Binding {
        label: "q",
        what: "quit (asks first if something is unsaved)",
        keys: &[(C('q'), SideAction::Quit)],
    },
];

/// One result of the side-by-side view.
#[derive(Debug, Clone)]
pub struct SidePanel {
    pub path: PathBuf,
    /// The model's short name (from the record, else the file's folder).
    pub model: String,
    pub record: RunRecord,
    /// (layer, head) under this panel's cursor.
    pub cursor: (usize, usize),
}

impl SidePanel {
    /// Reads `path` as a path-patching result; the cursor starts on its largest |r|.
    pub fn load(path: &std::path::Path) -> Result<Self, String> {
        let record = match SavedFile::load(path) {
            Ok(SavedFile::Run(rec)) => *rec,
            Ok(_) => {
                return Err(format!(
                    "{}: not a path-patching result (side by side shows results only)",
                    path.display()
                ))
            }
            Err(e) => return Err(e.to_string()),
        };
        Ok(SidePanel {
            model: record_model_name(&record, Some(path)),
            cursor: largest(&record, 1)
                .first()
                .map_or((0, 0), |&(l, h, _)| (l, h)),
            path: path.to_path_buf(),
            record,
        })
    }

    /// r under the cursor, when computed.
    pub fn value(&self) -> Option<f64> {
        let (l, h) = self.cursor;
        self.record.r(l, h).filter(|v| v.is_finite())
    }
}

/// The `n` heads of largest |r| in `rec` (finite values only), largest first; ties keep the
/// higher layer first, then the lower head.
pub fn largest(rec: &RunRecord, n: usize) -> Vec<(usize, usize, f64)> {
    let mut all: Vec<(usize, usize, f64)> = (0..rec.n_layers)
        .flat_map(|l| (0..rec.n_heads).map(move |h| (l, h)))
        .filter_map(|(l, h)| Some((l, h, rec.r(l, h).filter(|v| v.is_finite())?)))
        .collect();
    all.sort_by(|a, b| {
        b.2.abs()
            .total_cmp(&a.2.abs())
            .then(b.0.cmp(&a.0))
            .then(a.1.cmp(&b.1))
    });
    all.truncate(n);
    all
}

/// The side-by-side view's state: its panels and the one the keys move.
#[derive(Debug, Clone, Default)]
pub struct SideView {
    pub panels: Vec<SidePanel>,
    pub focus: usize,
}

impl SideView {
    /// Opens `paths` side by side; a file that is not a result is named in the status line
    /// and left out (the others open).
    pub fn open(&mut self, paths: &[PathBuf], s: &mut Session) {
        let mut panels = Vec::new();
        let mut errors = Vec::new();
        for p in paths {
            match SidePanel::load(p) {
                Ok(panel) => panels.push(panel),
                Err(e) => errors.push(e),
            }
        }
        if panels.is_empty() {
            return s.set_status(
                Level::Error,
                format!("could not open: {}", errors.join("; ")),
            );
        }
        *self = SideView { panels, focus: 0 };
        s.screen = Screen::Side;
        match errors.first() {
            Some(e) => s.set_status(Level::Warn, format!("left out: {e}")),
            None => s.set_status(
                Level::Info,
                "side by side: Tab moves between panels, hjkl the panel's cursor",
            ),
        }
    }

    /// Moves the focused panel's cursor by (layers, heads) within its own shape (layers up
    /// the screen, heads to the right).
    fn move_cursor(&mut self, (dl, dh): (isize, isize)) {
        let Some(p) = self.panels.get_mut(self.focus) else {
            return;
        };
        let (n_l, n_h) = (p.record.n_layers, p.record.n_heads);
        let step =
            |x: usize, d: isize, n: usize| x.saturating_add_signed(d).min(n.saturating_sub(1));
        p.cursor = (step(p.cursor.0, dl, n_l), step(p.cursor.1, dh, n_h));
    }

    /// `F`: the figure of the panels side by side, into the results folder.
    fn write_figure(&self, s: &mut Session) {
        let recs: Vec<(&RunRecord, String)> = self
            .panels
            .iter()
            .map(|p| (&p.record, p.model.clone()))
            .collect();
        let fig = match crate::plot::side::SideBySide::new(&recs, None) {
            Ok(f) => f,
            Err(e) => return s.set_status(Level::Error, format!("figure: {e}")),
        };
        let names: Vec<String> = self.panels.iter().map(|p| p.model.clone()).collect();
        let stem = s
            .setup
            .results_dir
            .join(format!("side-{}", crate::plot::path_free(&names.join("-"))));
        match crate::plot::write_both(&fig, &stem) {
            Ok([a, b]) => s.set_status(
                Level::Info,
                format!("figure: {} and {}", a.display(), b.display()),
            ),
            Err(e) => s.set_status(Level::Error, format!("figure: {e}")),
        }
    }
}

impl Component for SideView {
    type Action = SideAction;
    const TITLE: &'static str = "side by side";
    const KEYS: &'static [Binding<SideAction>] = SIDE;

    fn update(&mut self, action: SideAction, s: &mut Session) {
        let n = self.panels.len();
        match action {
            SideAction::Up => self.move_cursor((1, 0)),
            SideAction::Down => self.move_cursor((-1, 0)),
            SideAction::Left => self.move_cursor((0, -1)),
            SideAction::Right => self.move_cursor((0, 1)),
            SideAction::Next if n > 0 => self.focus = (self.focus + 1) % n,
            SideAction::Previous if n > 0 => self.focus = (self.focus + n - 1) % n,
            SideAction::Next | SideAction::Previous => {}
            SideAction::Figure => self.write_figure(s),
            SideAction::Help => s.open_help(),
            SideAction::Back => s.screen = Screen::Heatmap,
            SideAction::Quit => s.request_quit(),
        }
    }

    fn draw(&self, s: &Session, frame: &mut Frame, area: Rect) {
        draw(self, s.color, frame, area)
    }
}

/// Narrowest panel: below it, the view pages instead of squeezing the panels.
pub const MIN_PANEL_W: u16 = 28;

/// Panels shown at once in `width` columns, of `n`.
pub fn per_page(width: u16, n: usize) -> usize {
    ((width / MIN_PANEL_W) as usize).clamp(1, n.max(1))
}

/// The panels that fit, and a paging note when not all do.
fn draw(side: &SideView, color: ColorMode, frame: &mut Frame, area: Rect) {
    let panels = &side.panels;
    if panels.is_empty() || area.height < 4 {
        return;
    }
    let per = per_page(area.width, panels.len());
    let first = side.focus / per * per;
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
        frame.render_widget(Paragraph::new(fit_line(line, area.width as usize)), area);
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
            i == side.focus,
            range,
            color,
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
