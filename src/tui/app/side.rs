//! Results side by side (`headhunt open A.json B.json …`): any number of path-patching
//! results, of any models and shapes, each in its own panel with its own cursor. The panels
//! share a depth-normalized layer axis (the view draws each model's layers over the same
//! height), so that the paper's Gemma-2-9B (42 layers) and the 32-layer models line up by
//! depth, not by layer number; a difference needs equal shapes and stays the gallery's.

use super::*;
use crate::results::SavedFile;
use crate::tui::keymap::{self, SideAction};

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

impl Session {
    /// Opens `paths` side by side; a file that is not a result is named in the status line
    /// and left out (the others open).
    pub fn open_side_by_side(&mut self, paths: &[PathBuf]) {
        let mut panels = Vec::new();
        let mut errors = Vec::new();
        for p in paths {
            match SidePanel::load(p) {
                Ok(panel) => panels.push(panel),
                Err(e) => errors.push(e),
            }
        }
        if panels.is_empty() {
            return self.set_status(
                Level::Error,
                format!("could not open: {}", errors.join("; ")),
            );
        }
        self.side = SideView { panels, focus: 0 };
        self.screen = Screen::Side;
        match errors.first() {
            Some(e) => self.set_status(Level::Warn, format!("left out: {e}")),
            None => self.set_status(
                Level::Info,
                "side by side: Tab moves between panels, hjkl the panel's cursor",
            ),
        }
    }

    pub(super) fn on_side_key(&mut self, key: KeyEvent) {
        if let Some(action) = keymap::lookup(keymap::SIDE, key.code) {
            self.update_side(action);
        }
    }

    pub fn update_side(&mut self, action: SideAction) {
        let n = self.side.panels.len();
        match action {
            SideAction::Up => self.move_side((1, 0)),
            SideAction::Down => self.move_side((-1, 0)),
            SideAction::Left => self.move_side((0, -1)),
            SideAction::Right => self.move_side((0, 1)),
            SideAction::Next if n > 0 => self.side.focus = (self.side.focus + 1) % n,
            SideAction::Previous if n > 0 => self.side.focus = (self.side.focus + n - 1) % n,
            SideAction::Next | SideAction::Previous => {}
            SideAction::Figure => self.write_side_figure(),
            SideAction::Help => self.open_help(),
            SideAction::Back => self.screen = Screen::Heatmap,
            SideAction::Quit => self.request_quit(),
        }
    }

    /// Moves the focused panel's cursor by (layers, heads) within its own shape (layers up
    /// the screen, heads to the right).
    fn move_side(&mut self, (dl, dh): (isize, isize)) {
        let Some(p) = self.side.panels.get_mut(self.side.focus) else {
            return;
        };
        let (n_l, n_h) = (p.record.n_layers, p.record.n_heads);
        let step =
            |x: usize, d: isize, n: usize| x.saturating_add_signed(d).min(n.saturating_sub(1));
        p.cursor = (step(p.cursor.0, dl, n_l), step(p.cursor.1, dh, n_h));
    }

    /// `F`: the figure of the panels side by side, into the results folder.
    fn write_side_figure(&mut self) {
        let recs: Vec<(&RunRecord, String)> = self
            .side
            .panels
            .iter()
            .map(|p| (&p.record, p.model.clone()))
            .collect();
        let fig = match crate::plot::side::SideBySide::new(&recs, None) {
            Ok(f) => f,
            Err(e) => return self.set_status(Level::Error, format!("figure: {e}")),
        };
        let names: Vec<String> = self.side.panels.iter().map(|p| p.model.clone()).collect();
        let stem = self
            .setup
            .results_dir
            .join(format!("side-{}", crate::plot::path_free(&names.join("-"))));
        match crate::plot::write_both(&fig, &stem) {
            Ok([a, b]) => self.set_status(
                Level::Info,
                format!("figure: {} and {}", a.display(), b.display()),
            ),
            Err(e) => self.set_status(Level::Error, format!("figure: {e}")),
        }
    }
}
