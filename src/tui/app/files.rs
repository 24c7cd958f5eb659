//! Saving runs and head groups, opening saved results (the gallery).

use super::*;
use crate::results::analysis::AnalysisFile;

impl App {
    pub fn open_gallery(&mut self) {
        let mut dirs = vec![self.setup.results_dir.clone()];
        dirs.extend(self.setup.gallery_dirs.iter().cloned());
        self.gallery.entries = scan_results(&dirs);
        self.gallery.selected = self
            .gallery
            .selected
            .min(self.gallery.entries.len().saturating_sub(1));
        self.screen = Screen::Gallery;
        if self.gallery.entries.is_empty() {
            self.set_status(
                Level::Info,
                "no saved results yet: press s on a heatmap to save one",
            );
        }
    }

    /// Opens a saved file: a run on the heatmap, an analysis on the circuit screen.
    pub fn open_file(&mut self, p: PathBuf) {
        if AnalysisFile::sniff(&p) {
            match AnalysisFile::load(&p) {
                Ok(f) => self.open_analysis(f, p),
                Err(e) => self.set_status(Level::Error, format!("could not open: {e}")),
            }
            return;
        }
        match RunRecord::load(&p) {
            Ok(rec) => self.open_record(rec, p),
            Err(e) => self.set_status(Level::Error, format!("could not open: {e}")),
        }
    }

    /// Shows a saved record as a run (breadcrumbs included).
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
        // The file's own groups join its context's.
        for g in &rec.groups {
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
        self.screen = Screen::Heatmap;
        // Start where the largest effect is (the scroll follows the cursor).
        if let Some(c) = App::largest_cell(&rec) {
            self.cursor = c;
        }
        self.clamp_cursor();
        self.set_status(Level::Info, format!("opened {}", path.display()));
    }

    /// Saves the current run (with the tagged groups) to the results folder.
    pub fn save_current(&mut self) {
        let Some(&i) = self.trail.get(self.trail_pos) else {
            return;
        };
        let groups: Vec<HeadGroup> = self
            .groups
            .iter()
            .filter(|g| !g.heads.is_empty())
            .cloned()
            .collect();
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
        let label = rec
            .model
            .as_ref()
            .map_or_else(|| "paper".to_string(), |m| m.label.clone());
        let mut path = self
            .setup
            .results_dir
            .join(crate::results::naming::default_file_name(
                &label,
                rec.data.as_ref().map(|d| d.spec.file.as_path()),
                &rec.receiver,
            ));
        // Never overwrite: add a counter if the name is taken.
        let mut n = 1;
        while path.exists() {
            let stem = path.file_stem().unwrap().to_string_lossy().to_string();
            path = path.with_file_name(format!(
                "{}-{n}.json",
                stem.trim_end_matches(&format!("-{}", n - 1))
            ));
            n += 1;
        }
        match rec.save(&path, false) {
            Ok(()) => {
                slot.saved_to = Some(path.clone());
                self.groups_saved = true;
                self.set_status(Level::Info, format!("saved {}", path.display()));
            }
            Err(e) => self.set_status(Level::Error, format!("save failed: {e}")),
        }
    }

    /// Saves the head groups on their own (for later analyses).
    pub fn save_groups(&mut self) {
        let model = self
            .model
            .as_ref()
            .map_or_else(|| "model".into(), |m| m.label.clone());
        let value = serde_json::json!({
            "format": "headhunt-head-groups",
            "model": model,
            "created": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "groups": self.groups,
            "selected": self.selected.iter().collect::<Vec<_>>(),
        });
        let name = std::path::Path::new(&model)
            .file_name()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "model".into());
        let path = self.setup.results_dir.join(format!(
            "groups-{name}-{}.json",
            chrono::Local::now().format("%Y%m%d-%H%M%S")
        ));
        let text = serde_json::to_string_pretty(&value).unwrap() + "\n";
        match crate::results::write_atomic(&path, text.as_bytes(), false) {
            Ok(()) => {
                self.groups_saved = true;
                self.set_status(Level::Info, format!("saved {}", path.display()))
            }
            Err(e) => self.set_status(Level::Error, format!("save failed: {e}")),
        }
    }

    // ----- worker events -----
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
            } else if p.extension().is_some_and(|e| e == "json")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("groups-"))
            {
                out.push(p);
            }
        }
    }
    for d in dirs {
        walk(d, &mut files, 0);
    }
    files
        .into_iter()
        .map(|path| {
            if AnalysisFile::sniff(&path) {
                return analysis_entry(path);
            }
            let record = RunRecord::load(&path).map_err(|e| e.to_string());
            let label = match &record {
                Ok(r) => format!(
                    "{:<18} {:<13} {:<14} {}",
                    path.file_stem().unwrap_or_default().to_string_lossy(),
                    r.receiver_label,
                    super::record_model_name(r, Some(&path)),
                    super::record_data_words(r)
                ),
                Err(_) => format!("{} (unreadable)", path.display()),
            };
            GalleryEntry {
                path,
                label,
                record,
                kind: EntryKind::Run,
            }
        })
        .collect()
}

/// A gallery entry of an analysis file: its kind, model and data (or its one-line error).
fn analysis_entry(path: PathBuf) -> GalleryEntry {
    let stem = path
        .file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    match AnalysisFile::load(&path) {
        Ok(f) => {
            let c = f.common();
            let data = c.data.spec.file.file_name().unwrap_or_default();
            let label = format!(
                "{stem:<18} {:<13} {:<14} {}",
                f.kind(),
                super::short_model_name(&c.model.label),
                data.to_string_lossy()
            );
            GalleryEntry {
                path,
                label,
                record: Err(format!(
                    "{} result: Enter opens it on the circuit screen",
                    f.kind()
                )),
                kind: EntryKind::Analysis(Box::new(f)),
            }
        }
        Err(e) => GalleryEntry {
            label: format!("{} (unreadable)", path.display()),
            path,
            record: Err(e.to_string()),
            kind: EntryKind::Run,
        },
    }
}
