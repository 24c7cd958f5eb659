//! Saving runs and head groups, opening saved results (the gallery).

use super::*;
use crate::results::SavedFile;

impl Session {
    pub fn open_gallery(&mut self) {
        let mut dirs = vec![self.setup.results_dir.clone()];
        dirs.extend(self.setup.gallery_dirs.iter().cloned());
        self.gallery.entries = scan_results(&dirs);
        self.gallery.selected = self
            .gallery
            .selected
            .min(self.gallery.entries.len().saturating_sub(1));
        self.gallery.step(0);
        self.screen = Screen::Gallery;
        if self.gallery.entries.is_empty() {
            self.set_status(
                Level::Info,
                "no saved results yet: press s on a heatmap to save one",
            );
        }
    }

    /// `headhunt open FILE`: a run opens at once on the heatmap, an analysis on the circuit
    /// screen; a groups file waits for the model, whose heatmap it applies to.
    pub(super) fn open_at_start(&mut self, path: PathBuf) {
        if path.is_dir() {
            return self.open_parts(path);
        }
        match SavedFile::load(&path) {
            Ok(SavedFile::Analysis(f)) => self.open_analysis(*f, path),
            Ok(SavedFile::Groups(file)) => self.pending_groups = Some((*file, path)),
            Ok(SavedFile::Run(rec)) => self.open_record(*rec, path),
            Ok(SavedFile::Attention(_)) => self.set_status(
                Level::Warn,
                format!(
                    "{}: attention patterns, not a run: `headhunt plot` draws them, `a` shows a head's attention here",
                    path.display()
                ),
            ),
            Err(e) => self.set_status(Level::Error, format!("could not open: {e}")),
        }
    }

    /// Applies a groups file opened at start, once there is a heatmap to apply it to.
    pub(super) fn apply_pending_groups(&mut self) {
        if let Some((file, path)) = self.pending_groups.take() {
            self.apply_groups_file(&file, &path);
        }
    }

    /// Applies a groups file to the view on screen: its groups join the view's, its selection
    /// replaces the view's. Only when the shapes match (the file names heads by layer and
    /// head); otherwise says which model the file is for. Returns whether it applied.
    pub fn apply_groups_file(&mut self, file: &GroupsFile, path: &std::path::Path) -> bool {
        let shape = (self.n_layers(), self.n_heads());
        let model = short_model_name(&file.model);
        if shape != (file.n_layers, file.n_heads) {
            let view = self.context_name().unwrap_or_else(|| "no model".into());
            let msg = format!(
                "{}: head groups of {model} ({} layers × {} heads); the view is {view} ({} × {}): not applied",
                path.display(),
                file.n_layers,
                file.n_heads,
                shape.0,
                shape.1
            );
            self.set_status(Level::Warn, msg);
            return false;
        }
        self.merge_groups(&file.groups);
        self.selected = file.selected.iter().copied().collect();
        let n = file.groups.iter().filter(|g| !g.heads.is_empty()).count();
        let msg = format!(
            "applied {} ({model}): {n} groups, {} heads selected",
            path.display(),
            file.selected.len()
        );
        self.set_status(Level::Info, msg);
        true
    }

    /// Adds `groups` to the view's: heads join a group of the same name, new names are added.
    fn merge_groups(&mut self, groups: &[HeadGroup]) {
        for g in groups {
            if let Some(existing) = self.groups.iter_mut().find(|x| x.name == g.name) {
                for h in &g.heads {
                    if !existing.heads.contains(h) {
                        existing.heads.push(*h);
                    }
                }
            } else {
                self.groups.push(g.clone());
            }
        }
    }

    /// Shows a saved record as a run (breadcrumbs included); its groups join the view's and
    /// its selection (if it has one) replaces the view's.
    pub fn open_record(&mut self, rec: RunRecord, path: PathBuf) {
        let key = RunKey {
            receiver: rec.receiver.clone(),
            begin_layer: rec.begin_layer,
        };
        self.remember_cursor();
        // A loaded file must not overwrite a run of this session with the same receiver.
        self.runs.push(RunSlot {
            key,
            record: Some(rec.clone()),
            matrix: None,
            state: RunState::Opened(path.clone()),
            saved_to: Some(path.clone()),
            left_at: None,
        });
        let i = self.runs.len() - 1;
        if self.trail.is_empty() {
            self.trail_pos = 0;
        } else {
            self.trail.truncate(self.trail_pos + 1);
            self.trail_pos += 1;
        }
        self.trail.push(i);
        self.sync_context();
        self.merge_groups(&rec.groups);
        if !rec.selected.is_empty() {
            self.selected = rec.selected.iter().copied().collect();
        }
        self.screen = Screen::Heatmap;
        // Start where the largest effect is (the scroll follows the cursor).
        if let Some(c) = Session::largest_cell(&rec) {
            self.cursor = c;
        }
        self.clamp_cursor();
        self.set_status(Level::Info, format!("opened {}", path.display()));
    }

    /// The tagged groups (empty ones are not saved).
    pub(super) fn tagged_groups(&self) -> Vec<HeadGroup> {
        self.groups
            .iter()
            .filter(|g| !g.heads.is_empty())
            .cloned()
            .collect()
    }

    /// Saves the current run (with the tagged groups and the selection) to the results
    /// folder, unless a file with the same content is already there.
    pub fn save_current(&mut self) {
        if let Some(&i) = self.trail.get(self.trail_pos) {
            self.save_slot(i);
        }
    }

    /// A signal (SIGTERM, SIGHUP, `kill -INT`) ends the explorer: nobody may be there to
    /// answer `q`'s question, so every finished run not saved yet, the finished rows of a
    /// sweep still running (saved as a cancelled one, marked partial), the analysis reports
    /// on the circuit screen, and the head groups, are saved (the status line says where),
    /// then the app quits. (The event loop first cancels the worker's jobs and waits a little
    /// for their partial results, so a cancelled analysis arrives in time to be saved.)
    pub fn save_before_exit(&mut self) {
        let mut said = Vec::new();
        for i in 0..self.runs.len() {
            let slot = &mut self.runs[i];
            let rows = slot
                .record
                .as_ref()
                .is_some_and(|r| !r.rows_computed.is_empty());
            if matches!(slot.state, RunState::Running { .. }) && rows {
                slot.state = RunState::Cancelled;
            }
            let finished = matches!(slot.state, RunState::Done | RunState::Cancelled);
            // A sweep stopped before its first row holds nothing worth a file.
            if finished && slot.saved_to.is_none() && rows {
                self.save_slot(i);
                said.push(self.status.1.clone());
            }
        }
        for tab in super::circuit::ReportTab::ALL {
            let unsaved = self
                .circuit
                .report(tab)
                .is_some_and(|r| r.saved_to.is_none());
            if unsaved {
                said.push(self.save_report(tab));
            }
        }
        if self.unsaved() == Some("head groups") {
            self.save_groups();
            said.push(self.status.1.clone());
        }
        let level = if said.iter().any(|m| m.starts_with("save failed")) {
            Level::Error
        } else {
            Level::Info
        };
        self.set_status(level, said.join("; "));
        self.quit_now();
    }

    /// Saves run slot `i` (see `save_current`).
    fn save_slot(&mut self, i: usize) {
        let groups = self.tagged_groups();
        let selected: Vec<(usize, usize)> = self.selected.iter().copied().collect();
        let results_dir = self.setup.results_dir.clone();
        let slot = &mut self.runs[i];
        let Some(rec) = slot.record.as_mut() else {
            self.set_status(Level::Warn, "nothing to save yet: press r to run");
            return;
        };
        if matches!(slot.state, RunState::Running { .. }) {
            self.set_status(
                Level::Warn,
                "the run is still going: save when it is done (or cancel with c)",
            );
            return;
        }
        rec.groups = groups;
        rec.selected = selected;
        // A file this session wrote is compared byte for byte. An opened file's record is that
        // file's (read back, a float can differ in its last bit, and a paper file is in another
        // format): only the groups and selection can have changed since.
        let text = rec.to_json();
        let opened = matches!(slot.state, RunState::Opened(_));
        let marks = (&rec.groups, &rec.selected);
        // Read through the one reader: what is there now may be a FIFO, not the file saved.
        let same = |p: &std::path::Path| {
            crate::results::read::read_bytes(p).is_ok_and(|t| t == text.as_bytes())
                || (opened && RunRecord::load(p).is_ok_and(|r| (&r.groups, &r.selected) == marks))
        };
        if let Some(p) = slot.saved_to.clone().filter(|p| same(p)) {
            self.groups_saved = true;
            return self.set_status(Level::Info, format!("already saved as {}", p.display()));
        }
        let label = rec
            .model
            .as_ref()
            .map_or_else(|| "paper".to_string(), |m| m.label.clone());
        let name = crate::results::naming::default_file_name(
            &label,
            rec.data.as_ref().map(|d| d.spec.file.as_path()),
            &rec.receiver,
        );
        let path = free_path(&results_dir, &name);
        match save_recovering(&path, &mut |p, ow| rec.save(p, ow)) {
            Ok((path, said)) => {
                slot.saved_to = Some(path);
                self.groups_saved = true;
                self.set_status(Level::Info, said);
            }
            Err(e) => self.set_status(Level::Error, e),
        }
    }

    /// The model whose heads the view shows: the record's own (a file of another model is its
    /// own context), else the loaded one.
    fn view_model_label(&self) -> Option<String> {
        let rec = self.current_record();
        if let Some(m) = rec.and_then(|r| r.model.as_ref()) {
            return Some(m.label.clone());
        }
        if rec.is_some() {
            return self.context_name();
        }
        self.model.as_ref().map(|m| m.label.clone())
    }

    /// Saves the head groups and the selection on their own (a groups file: `headhunt show`
    /// prints it, opening it applies it), unless the same are already saved in the folder.
    pub fn save_groups(&mut self) {
        let Some(model) = self.view_model_label() else {
            return self.set_status(Level::Warn, "no model loaded yet: nothing to save");
        };
        let file = GroupsFile::new(
            &model,
            (self.n_layers(), self.n_heads()),
            self.tagged_groups(),
            self.selected.iter().copied().collect(),
        );
        if file.groups.is_empty() && file.selected.is_empty() {
            let msg = "no heads tagged (t) or selected (space): no groups file written";
            return self.set_status(Level::Info, msg);
        }
        let dir = self.setup.results_dir.clone();
        if let Some(p) = saved_groups(&dir).find(|(_, f)| f.same_content(&file)) {
            self.groups_saved = true;
            let msg = format!("already saved as {}", p.0.display());
            return self.set_status(Level::Info, msg);
        }
        let name = format!(
            "groups-{}-{}.json",
            short_model_name(&model),
            chrono::Local::now().format("%Y%m%d-%H%M%S")
        );
        let path = free_path(&dir, &name);
        match save_recovering(&path, &mut |p, ow| file.save(p, ow)) {
            Ok((_, said)) => {
                self.groups_saved = true;
                self.set_status(Level::Info, said)
            }
            Err(e) => self.set_status(Level::Error, e),
        }
    }

    // ----- worker events -----
}

/// Saves with `save` at `path` (numbered if taken meanwhile) or, when that fails (a full or
/// vanished folder), at a `.recovered` path (`results::write::save_or_recover`, the path every
/// command's save takes): the file written and what to say, or "save failed: ..." when nothing
/// could take it.
pub(super) fn save_recovering(
    path: &std::path::Path,
    save: &mut dyn FnMut(&std::path::Path, bool) -> Result<(), crate::results::ResultsError>,
) -> Result<(PathBuf, String), String> {
    use crate::results::write::{save_or_recover, Placed};
    match save_or_recover(path, false, true, save) {
        Placed::At(p) => {
            let said = format!("saved {}", p.display());
            Ok((p, said))
        }
        Placed::Recovered { path: p, why } => {
            let said = format!("saved {} ({why}: could not go to results)", p.display());
            Ok((p, said))
        }
        Placed::Lost { why, tried } => Err(format!(
            "save failed: {why}; nor at {}",
            tried
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" or ")
        )),
    }
}

/// `dir/name`, or `dir/STEM-2.json`, `-3` ... if taken: a save never replaces a file.
fn free_path(dir: &std::path::Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    let stem = first
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    let mut path = first.clone();
    let mut n = 2;
    while path.exists() {
        path = dir.join(format!("{stem}-{n}.json"));
        n += 1;
    }
    path
}

/// The groups files directly in `dir` that load.
fn saved_groups(dir: &std::path::Path) -> impl Iterator<Item = (PathBuf, GroupsFile)> {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.into_iter().filter_map(|p| {
        let f = GroupsFile::load(&p).ok()?;
        Some((p, f))
    })
}

/// Every result file in `dirs` (recursively, newest first within a folder).
pub fn scan_results(dirs: &[PathBuf]) -> Vec<GalleryEntry> {
    let mut files: Vec<PathBuf> = Vec::new();
    fn walk(d: &std::path::Path, out: &mut Vec<PathBuf>, depth: usize) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() && depth < 3 {
                walk(&p, out, depth + 1);
            } else if p.extension().is_some_and(|e| e == "json") {
                out.push(p);
            }
        }
    }
    for d in dirs {
        walk(d, &mut files, 0);
    }
    files.into_iter().map(gallery_entry).collect()
}

/// When a gallery entry was made, in local time to the minute (`2026-01-31 14:05`): the
/// file's `created` field, else (the paper's files have none) when the file was last written.
fn entry_time(path: &std::path::Path, created: &str) -> String {
    let when = chrono::DateTime::parse_from_rfc3339(created)
        .map(|t| t.with_timezone(&chrono::Local))
        .ok()
        .or_else(|| {
            let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
            Some(chrono::DateTime::<chrono::Local>::from(modified))
        });
    when.map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M").to_string())
}

/// A gallery line: a run with its receiver, model and data, a groups file with its model,
/// an analysis with its kind, model and data, or a file that did not load with its error.
fn gallery_entry(path: PathBuf) -> GalleryEntry {
    let stem = path
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    let (columns, record, kind) = match SavedFile::load(&path) {
        Ok(SavedFile::Analysis(f)) => {
            let c = f.common();
            let data = c.data.spec.file.file_name().unwrap_or_default();
            let columns = [
                stem,
                f.kind().to_string(),
                super::short_model_name(&c.model.label),
                data.to_string_lossy().to_string(),
                entry_time(&path, &c.created),
            ];
            let why = format!("{} result: Enter opens it on the circuit screen", f.kind());
            (columns, Err(why), EntryKind::Analysis(f))
        }
        Ok(SavedFile::Groups(file)) => {
            let n = file.groups.iter().filter(|g| !g.heads.is_empty()).count();
            let columns = [
                stem,
                "head groups".to_string(),
                short_model_name(&file.model),
                format!("{n} groups, {} selected", file.selected.len()),
                entry_time(&path, &file.created),
            ];
            let why = "head groups, not a run: Enter applies them".to_string();
            (columns, Err(why), EntryKind::Groups(file))
        }
        Ok(SavedFile::Attention(f)) => {
            let heads: Vec<String> = f
                .heads
                .iter()
                .map(|p| format!("{}.{}", p.head.0, p.head.1))
                .collect();
            let model = f.model.as_ref().map_or("?", |m| m.label.as_str());
            let columns = [
                stem,
                "attention".to_string(),
                short_model_name(model),
                format!("heads {}, {}", heads.join(" "), f.prompts_label()),
                entry_time(&path, ""),
            ];
            let why = "attention patterns, not a run: `headhunt plot` draws them".to_string();
            (columns, Err(why), EntryKind::Run)
        }
        Ok(SavedFile::Run(r)) => {
            let columns = [
                stem,
                r.receiver_label.clone(),
                super::record_model_name(&r, Some(&path)),
                super::record_data_words(&r),
                entry_time(&path, &r.created),
            ];
            (columns, Ok(*r), EntryKind::Run)
        }
        Err(e) => {
            let columns = [
                path.display().to_string(),
                "unreadable".to_string(),
                String::new(),
                String::new(),
                entry_time(&path, ""),
            ];
            (columns, Err(e.to_string()), EntryKind::Run)
        }
    };
    GalleryEntry {
        path,
        columns,
        record,
        kind,
    }
}
