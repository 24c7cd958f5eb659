//! The gallery's state (the saved results listed, the selected and the marked one) and the
//! comparison it opens (side by side or the difference: `diff`), with what their actions do.

use super::*;
use crate::tui::keymap::{self, CompareAction, GalleryAction};
use crate::tui::layout;
use ratatui::layout::Rect;

/// One saved result in the gallery.
pub struct GalleryEntry {
    pub path: PathBuf,
    /// File name, what it is (receiver or kind), model, data, when it was made: the list
    /// lays them out in columns fitted to its width (`view::other::gallery_lines`).
    pub columns: [String; 5],
    /// The run, or why there is none (unreadable, or a groups file: see `kind`).
    pub record: Result<RunRecord, String>,
    pub kind: EntryKind,
}

/// What a gallery entry is: Enter opens a run, and applies head groups.
#[derive(Debug, Clone, PartialEq)]
pub enum EntryKind {
    /// A run or a paper result (`record`), or a file that did not load.
    Run,
    /// Head groups and a selection (saved with `S`).
    Groups(Box<GroupsFile>),
    /// An analysis result (circuit, ablation, FV), which opens on the circuit screen.
    Analysis(Box<crate::results::analysis::AnalysisFile>),
}

/// The gallery screen and the comparison it leads to.
pub struct Gallery {
    pub entries: Vec<GalleryEntry>,
    pub selected: usize,
    pub marked: Option<usize>,
    pub diff: bool,
    /// The (layer, head) the comparison's cursor is on, the same on both sides: it opens on
    /// the marked result's largest effect, and the grids scroll to keep it on screen.
    pub cursor: (usize, usize),
    /// Text the listed entries contain (any column, any case; `/` types it, Esc clears it):
    /// the paper's folders alone hold dozens of files.
    pub filter: String,
}

impl GalleryEntry {
    /// The columns in one line (for messages and searching).
    pub fn label(&self) -> String {
        let cols: Vec<&str> = self.columns.iter().map(String::as_str).collect();
        cols.into_iter()
            .filter(|c| !c.is_empty())
            .collect::<Vec<_>>()
            .join("  ")
    }
}

impl Gallery {
    /// The entries the list shows (indices into `entries`): those the filter matches.
    pub fn shown(&self) -> Vec<usize> {
        let needle = self.filter.trim().to_lowercase();
        (0..self.entries.len())
            .filter(|&i| {
                needle.is_empty() || self.entries[i].label().to_lowercase().contains(&needle)
            })
            .collect()
    }

    /// Moves the selection `step` entries along the shown ones (onto the first shown when it
    /// is not shown itself).
    pub fn step(&mut self, step: isize) {
        let shown = self.shown();
        let Some(at) = shown.iter().position(|&i| i == self.selected) else {
            self.selected = shown.first().copied().unwrap_or(self.selected);
            return;
        };
        let to = at.saturating_add_signed(step).min(shown.len() - 1);
        self.selected = shown[to];
    }

    /// Sets the filter and keeps the selection on a shown entry.
    pub fn set_filter(&mut self, text: &str) {
        self.filter = text.to_string();
        self.step(0);
    }
    /// The two entries the comparison shows, marked first, when both are runs that loaded:
    /// what the compare screen draws and what `F` writes.
    pub fn compared(&self) -> Option<(&GalleryEntry, &RunRecord, &GalleryEntry, &RunRecord)> {
        let m = self.entries.get(self.marked?)?;
        let e = self.entries.get(self.selected)?;
        match (&m.record, &e.record) {
            (Ok(a), Ok(b)) => Some((m, a, e, b)),
            _ => None,
        }
    }
}

impl Session {
    pub fn update_compare(&mut self, action: CompareAction) {
        let [up, down, left, right] = arrow_steps(self.compare_layers_as_rows());
        match action {
            CompareAction::Up => self.move_compare(up),
            CompareAction::Down => self.move_compare(down),
            CompareAction::Left => self.move_compare(left),
            CompareAction::Right => self.move_compare(right),
            CompareAction::ToggleDifference => self.gallery.diff = !self.gallery.diff,
            CompareAction::Figure => self.write_compare_figure(),
            CompareAction::Help => self.open_help(),
            CompareAction::Back => self.screen = Screen::Gallery,
        }
    }

    /// Moves the comparison's cursor by (layers, heads), inside the results' shape and the
    /// crop shown.
    fn move_compare(&mut self, d: (isize, isize)) {
        let Some((_, a, _, _)) = self.gallery.compared() else {
            return;
        };
        let layers = self.layer_range_of(a.n_layers);
        self.gallery.cursor = step_cursor(self.gallery.cursor, d, layers, a.n_heads);
    }

    /// Whether the view's groups and selection belong on the compared results: both are of
    /// the model (and shape) they were tagged on. Another model's results are drawn unmarked.
    pub fn compare_shows_marks(&self) -> bool {
        let Some((m, a, e, b)) = self.gallery.compared() else {
            return false;
        };
        [(m, a), (e, b)].iter().all(|(entry, rec)| {
            record_model_name(rec, Some(&entry.path)) == self.context
                && (rec.n_layers, rec.n_heads) == (self.n_layers(), self.n_heads())
        })
    }

    /// Whether the comparison puts layers on rows (its own layout, at the terminal size):
    /// what its keys and its figure (`F`) follow.
    pub fn compare_layers_as_rows(&self) -> bool {
        self.compare_geometry().is_some_and(|g| g.layers_as_rows)
    }

    /// Where the comparison's cells are at the terminal size, scrolled to its cursor.
    pub fn compare_geometry(&self) -> Option<HeatmapGeometry> {
        let (_, a, _, _) = self.gallery.compared()?;
        let full = Rect::new(0, 0, self.viewport.0, self.viewport.1);
        let [_, grid, _] = layout::compare_panels(layout::main_area(full)?, self.gallery.diff)[0];
        let view = self.grid_view(a, self.compare_shows_marks());
        layout::plan(a, grid, Some(self.gallery.cursor), view)
    }

    pub(super) fn on_gallery_key(&mut self, key: KeyEvent) {
        if let Some(action) = keymap::lookup(keymap::GALLERY, key.code) {
            self.update_gallery(action);
        }
    }

    pub fn update_gallery(&mut self, action: GalleryAction) {
        use GalleryAction as A;
        let n = self.gallery.shown().len();
        match action {
            A::Back if !self.gallery.filter.is_empty() => self.gallery.set_filter(""),
            A::Back => self.screen = Screen::Heatmap,
            A::Help => self.open_help(),
            A::Up if n > 0 => self.gallery.step(-1),
            A::Down if n > 0 => self.gallery.step(1),
            A::Filter => {
                let now = self.gallery.filter.clone();
                self.open_input(InputPurpose::GalleryFilter, "filter", now);
            }
            A::Rescan => self.open_gallery(),
            A::Mark if n > 0 => {
                let s = self.gallery.selected;
                self.gallery.marked = (self.gallery.marked != Some(s)).then_some(s);
            }
            A::Compare | A::Difference if n > 0 => self.compare_marked(action == A::Difference),
            A::Open if n > 0 => self.open_gallery_entry(),
            A::Up | A::Down | A::Mark | A::Compare | A::Difference | A::Open => {}
        }
    }

    /// Compares the marked result with the selected one, side by side or as a difference.
    fn compare_marked(&mut self, diff: bool) {
        let g = &self.gallery;
        let Some(m) = g.marked.filter(|&m| m != g.selected) else {
            let msg = "mark one result with m, then select another and press c (side by side) or d (difference)";
            return self.set_status(Level::Info, msg);
        };
        let (a, b) = (&g.entries[m], &g.entries[g.selected]);
        let (level, msg) = match (&a.record, &b.record) {
            (Ok(a), Ok(b)) if a.n_layers == b.n_layers && a.n_heads == b.n_heads => {
                let top = (a.n_layers.saturating_sub(1), 0);
                self.gallery.cursor = Session::largest_cell(a).unwrap_or(top);
                self.gallery.diff = diff;
                self.screen = Screen::Compare;
                return;
            }
            (Ok(_), Ok(_)) => (Level::Warn, "the two results have different shapes"),
            _ if matches!(a.kind, EntryKind::Groups(_)) || matches!(b.kind, EntryKind::Groups(_)) => (
                Level::Warn,
                "head groups have no matrix to compare: Enter applies them",
            ),
            _ if matches!(a.kind, EntryKind::Analysis(_)) || matches!(b.kind, EntryKind::Analysis(_)) => (
                Level::Warn,
                "an analysis result has no matrix to compare: Enter opens it on the circuit screen",
            ),
            _ => (Level::Error, "cannot compare a file that did not load"),
        };
        self.set_status(level, msg);
    }

    /// Enter in the gallery: a run opens on the heatmap; head groups apply to the heatmap on
    /// screen when its shape is theirs.
    fn open_gallery_entry(&mut self) {
        let e = &self.gallery.entries[self.gallery.selected];
        let path = e.path.clone();
        match (&e.kind, &e.record) {
            (EntryKind::Analysis(f), _) => {
                let f = (**f).clone();
                self.open_analysis(f, path);
            }
            (EntryKind::Groups(file), _) => {
                let file = file.clone();
                if self.apply_groups_file(&file, &path) {
                    self.screen = Screen::Heatmap;
                }
            }
            (EntryKind::Run, Ok(rec)) => {
                let rec = rec.clone();
                self.open_record(rec, path);
            }
            (EntryKind::Run, Err(msg)) => {
                let msg = msg.clone();
                self.set_status(Level::Error, msg)
            }
        }
    }
}
