//! The session's runs (`L` on the heatmap): every run computed or opened this session, with
//! its state, its rows and where it is saved, so that a run off the breadcrumb trail (a
//! drill-down left by `R`, a begin-layer change undone) is found without retyping its
//! receiver. `Enter` shows it on the heatmap.

use crossterm::event::KeyCode;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use super::Component;
use crate::tui::app::{Level, RunSlot, RunState, Screen, Session};
use crate::tui::keymap::Binding;
use crate::tui::layout::{ellipsize, ellipsize_middle};

use KeyCode::Char as C;

/// What the user asked for on the session's run list (`RunsScreen::update`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunsAction {
    Up,
    Down,
    Open,
    Help,
    Back,
    Quit,
}

/// The run list's keys.
pub const RUNS: &[Binding<RunsAction>] = &[
    Binding {
        label: "↑↓ jk",
        what: "choose a run",
        keys: &[
            (KeyCode::Up, RunsAction::Up),
            (C('k'), RunsAction::Up),
            (KeyCode::Down, RunsAction::Down),
            (C('j'), RunsAction::Down),
        ],
    },
    Binding {
        label: "Enter",
        what: "show it on the heatmap (it joins the breadcrumbs)",
        keys: &[(KeyCode::Enter, RunsAction::Open)],
    },
    Binding {
        label: "?",
        what: "this help",
        keys: &[(C('?'), RunsAction::Help)],
    },
    Binding {
        label: "Esc",
        what: "back to the heatmap",
        keys: &[(KeyCode::Esc, RunsAction::Back)],
    },
    Binding {
        label: "q",
        what: "quit (asks first if something is unsaved)",
        keys: &[(C('q'), RunsAction::Quit)],
    },
];

/// The run list's state: the run under its cursor (an index into the session's runs).
#[derive(Debug, Default)]
pub struct RunsScreen {
    pub row: usize,
}

/// One line of the list: what the run is and how far it got.
pub fn run_state_words(slot: &RunSlot) -> String {
    let rows = slot.record.as_ref().map_or(0, |r| r.rows_computed.len());
    match &slot.state {
        RunState::Idle => "not run".into(),
        RunState::Running { done, total, .. } => format!("running {done}/{total}"),
        RunState::Done => format!("finished, {rows} rows"),
        RunState::Cancelled => format!("cancelled, {rows} rows"),
        RunState::Failed(_) => "failed".into(),
        RunState::Opened(_) => "opened from a file".into(),
    }
}

impl Component for RunsScreen {
    type Action = RunsAction;
    const TITLE: &'static str = "runs";
    const KEYS: &'static [Binding<RunsAction>] = RUNS;

    /// The list opens on the run the heatmap shows.
    fn on_open(&mut self, s: &mut Session) {
        self.row = s.trail.get(s.trail_pos).copied().unwrap_or(0);
    }

    fn update(&mut self, action: RunsAction, s: &mut Session) {
        let n = s.runs.len();
        match action {
            RunsAction::Up => self.row = self.row.saturating_sub(1),
            RunsAction::Down => self.row = (self.row + 1).min(n.saturating_sub(1)),
            RunsAction::Open if self.row < n => show_run(s, self.row),
            RunsAction::Open => {}
            RunsAction::Help => s.open_help(),
            RunsAction::Back => s.screen = Screen::Heatmap,
            RunsAction::Quit => s.request_quit(),
        }
    }

    /// One line a run: receiver (as the breadcrumbs name it), state and rows, and where it is
    /// saved; the current run marked `▶`, the chosen one reversed.
    fn draw(&self, s: &Session, frame: &mut Frame, area: Rect) {
        let block = Block::default()
            .borders(Borders::ALL)
            .title(" runs of this session · Enter shows one · Esc back ");
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let w = inner.width as usize;
        let current = s.trail.get(s.trail_pos).copied();
        let label_w = (0..s.runs.len())
            .map(|i| s.run_label(i).chars().count())
            .max()
            .unwrap_or(0)
            .min(w / 3);
        let first = self
            .row
            .saturating_sub((inner.height as usize).saturating_sub(1));
        let lines: Vec<Line> = (0..s.runs.len())
            .skip(first)
            .take(inner.height as usize)
            .map(|i| {
                let slot = &s.runs[i];
                let saved = match (&slot.saved_to, &slot.state) {
                    (Some(p), _) => format!("saved {}", p.display()),
                    (None, RunState::Opened(p)) => p.display().to_string(),
                    (None, _) => "not saved".into(),
                };
                let mark = if Some(i) == current { "▶" } else { " " };
                let label = ellipsize(&s.run_label(i), label_w);
                let state = run_state_words(slot);
                let text = format!("{mark} {label:<label_w$}  {state:<18}  {saved}");
                let style = if i == self.row {
                    Style::default().add_modifier(Modifier::REVERSED)
                } else {
                    Style::default()
                };
                Line::from(Span::styled(ellipsize_middle(&text, w), style))
            })
            .collect();
        let lines = if lines.is_empty() {
            vec![Line::from("no runs yet: r runs the receiver on screen")]
        } else {
            lines
        };
        frame.render_widget(Paragraph::new(lines), inner);
    }
}

/// Shows run slot `i` on the heatmap, adding it to the breadcrumbs after the current one.
fn show_run(s: &mut Session, i: usize) {
    s.screen = Screen::Heatmap;
    // An opened file's slot is found by position: its key may equal a live run's.
    s.remember_cursor();
    if s.trail.get(s.trail_pos) != Some(&i) {
        s.trail.truncate(s.trail_pos + 1);
        s.trail.push(i);
        s.trail_pos = s.trail.len() - 1;
    }
    s.sync_context();
    s.clamp_cursor();
    let label = s.run_label(i);
    s.set_status(
        Level::Info,
        format!("{label} · [ goes back along the breadcrumbs"),
    );
}
