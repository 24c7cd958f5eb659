//! Whose result is on screen. A file opened from the gallery or `headhunt open` may be of
//! another model than the loaded one: it is then its own context — its model in the title,
//! its shape, its own groups and selection — and drilling from it opens the matching saved
//! result or says which model must be loaded.

use super::*;

/// The model a record is of, for the title and to tell contexts apart: its model's label, or
/// for the paper's files (which carry none) the folder they are in (`gemma_2_9b`).
pub fn record_model_name(rec: &RunRecord, path: Option<&std::path::Path>) -> String {
    if let Some(m) = &rec.model {
        return short_model_name(&m.label);
    }
    path.and_then(|p| p.parent())
        .and_then(|d| d.file_name())
        .map_or_else(|| "?".into(), |d| d.to_string_lossy().to_string())
}

/// The last part of a model path or hub id (`…/Qwen2.5-0.5B/` → `Qwen2.5-0.5B`).
pub fn short_model_name(label: &str) -> String {
    std::path::Path::new(label.trim_end_matches('/'))
        .file_name()
        .map_or(label.to_string(), |f| f.to_string_lossy().to_string())
}

/// What data a record is of, in a few words (the paper's files say it in their note).
pub fn record_data_words(rec: &RunRecord) -> String {
    if let Some(d) = &rec.data {
        let file = d
            .spec
            .file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        return format!("{file}, {} examples", d.n_examples);
    }
    rec.note
        .as_deref()
        .and_then(|n| n.strip_prefix("imported from the paper: "))
        .and_then(|n| n.split_once(", ").map(|(_, rest)| format!("paper: {rest}")))
        .unwrap_or_default()
}

impl Session {
    /// Whether the slot shows a result the loaded model did not (and cannot) compute.
    pub fn is_foreign(&self, slot: &RunSlot) -> bool {
        let Some(rec) = &slot.record else {
            return false;
        };
        match (&rec.model, &self.model) {
            (Some(a), Some(b)) => {
                a.label != b.label || a.n_layers != b.n_layers || a.n_heads != b.n_heads
            }
            (None, _) => true,
            (Some(_), None) => matches!(slot.state, RunState::Opened(_)),
        }
    }

    /// The model whose result is on screen (the title line's name).
    pub fn context_name(&self) -> Option<String> {
        if let Some(slot) = self.current().filter(|s| self.is_foreign(s)) {
            let path = match &slot.state {
                RunState::Opened(p) => Some(p.as_path()),
                _ => None,
            };
            return slot.record.as_ref().map(|r| record_model_name(r, path));
        }
        self.model.as_ref().map(|m| short_model_name(&m.label))
    }

    /// Keeps groups and selection with the model they were made on: after the trail moves to
    /// a result of another model, that model's groups are shown and these are put aside.
    pub(super) fn sync_context(&mut self) {
        let name = self.context_name().unwrap_or_default();
        if name == self.context {
            return;
        }
        let groups = std::mem::replace(&mut self.groups, default_groups());
        let selected = std::mem::take(&mut self.selected);
        self.stashed.insert(
            std::mem::replace(&mut self.context, name.clone()),
            (groups, selected),
        );
        if let Some((g, s)) = self.stashed.remove(&name) {
            self.groups = g;
            self.selected = s;
        }
        self.active_group = self.active_group.min(self.groups.len().saturating_sub(1));
    }

    /// (layer, head) of the largest |value| the cells show (where the view should start).
    pub fn largest_cell(rec: &RunRecord) -> Option<(usize, usize)> {
        let measure = crate::results::text::cell_measure(rec);
        let mut best: Option<((usize, usize), f64)> = None;
        for l in 0..rec.n_layers {
            for h in 0..rec.n_heads {
                let v = crate::tui::layout::shown_value(rec, measure, l, h);
                if let Some(v) = v.map(f64::abs) {
                    if best.is_none_or(|(_, b)| v > b) {
                        best = Some(((l, h), v));
                    }
                }
            }
        }
        best.map(|(c, _)| c)
    }

    /// Drilling from a result of another model: open the saved result for `receiver` next to
    /// the file (the paper ships its drill-downs), or say which model must be loaded.
    pub(super) fn drill_foreign(&mut self, receiver: Receiver) {
        let (dir, model) = match self.current() {
            Some(RunSlot {
                state: RunState::Opened(p),
                record: Some(rec),
                ..
            }) => (
                p.parent().map(|d| d.to_path_buf()),
                record_model_name(rec, Some(p)),
            ),
            Some(RunSlot {
                record: Some(rec), ..
            }) => (None, record_model_name(rec, None)),
            _ => return,
        };
        let found = dir.and_then(|d| {
            scan_results(&[d])
                .into_iter()
                .find(|e| e.record.as_ref().is_ok_and(|r| r.receiver == receiver))
        });
        match found {
            Some(GalleryEntry {
                path,
                record: Ok(rec),
                ..
            }) => self.open_record(rec, path),
            _ => self.set_status(
                Level::Warn,
                format!(
                    "no saved result for {receiver} of {model}: load {model} in the setup (m) to compute it"
                ),
            ),
        }
    }
}
