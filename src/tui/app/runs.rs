//! The session's runs (`L` on the heatmap): every run computed or opened this session, with
//! its state, its rows and where it is saved, so that a run off the breadcrumb trail (a
//! drill-down left by `R`, a begin-layer change undone) is found without retyping its
//! receiver. `Enter` shows it on the heatmap.

use super::*;
use crate::tui::keymap::{self, RunsAction};

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

impl App {
    pub(super) fn open_runs(&mut self) {
        self.runs_row = self.trail.get(self.trail_pos).copied().unwrap_or(0);
        self.screen = Screen::Runs;
    }

    pub(super) fn on_runs_key(&mut self, key: KeyEvent) {
        if let Some(action) = keymap::lookup(keymap::RUNS, key.code) {
            self.update_runs(action);
        }
    }

    pub fn update_runs(&mut self, action: RunsAction) {
        let n = self.runs.len();
        match action {
            RunsAction::Up => self.runs_row = self.runs_row.saturating_sub(1),
            RunsAction::Down => self.runs_row = (self.runs_row + 1).min(n.saturating_sub(1)),
            RunsAction::Open if self.runs_row < n => {
                self.screen = Screen::Heatmap;
                // An opened file's slot is found by position: its key may equal a live run's.
                self.remember_cursor();
                let i = self.runs_row;
                if self.trail.get(self.trail_pos) != Some(&i) {
                    self.trail.truncate(self.trail_pos + 1);
                    self.trail.push(i);
                    self.trail_pos = self.trail.len() - 1;
                }
                self.sync_context();
                self.clamp_cursor();
                let label = self.run_label(i);
                self.set_status(
                    Level::Info,
                    format!("{label} · [ goes back along the breadcrumbs"),
                );
            }
            RunsAction::Open => {}
            RunsAction::Help => self.open_help(),
            RunsAction::Back => self.screen = Screen::Heatmap,
            RunsAction::Quit => self.request_quit(),
        }
    }
}
