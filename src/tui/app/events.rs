//! Worker events: loading, baselines, sweep rows as they arrive, results, errors.

use super::*;

impl Session {
    pub fn on_worker(&mut self, e: Event) {
        match e {
            Event::Started { id, what } => {
                self.jobs.push(JobStatus {
                    id,
                    what,
                    started: Instant::now(),
                });
            }
            Event::ModelLoaded {
                id,
                info,
                seconds,
                n_params,
            } => self.on_model_loaded(id, info, seconds, n_params),
            Event::DataLoaded {
                id,
                info,
                lengths,
                preview,
            } => self.on_data_loaded(id, info, lengths, preview),
            Event::Progress {
                id,
                what,
                done,
                total,
            } => {
                if let Some(j) = self.jobs.iter_mut().find(|j| j.id == id) {
                    j.what = progress_text(&what, done, total);
                }
            }
            Event::Evaluated {
                n,
                normal_ok,
                contrast_ok,
                contrast_gives_normal,
                ld_normal,
                ld_contrast,
                seconds,
                warnings,
                ..
            } => self.on_evaluated(Evaluation {
                seconds,
                n,
                normal_ok,
                contrast_ok,
                contrast_gives_normal,
                ld_normal,
                ld_contrast,
                warnings,
            }),
            Event::Patch { id, event } => self.on_patch_event(id, event),
            Event::PatchDone { id, record } => self.on_patch_done(id, *record),
            // The attention screen took the patterns (`screens::attention`).
            Event::Attention { id, .. } => self.jobs.retain(|j| j.id != id),
            Event::Error { id, message } => self.on_error(id, message),
            e @ (Event::Cancelled { .. } | Event::Analysis { .. }) => self.on_analysis_event(e),
        }
    }

    /// The model is loaded: say what it is; runs of another model are dropped.
    fn on_model_loaded(&mut self, id: JobId, info: ModelInfo, seconds: f64, n_params: usize) {
        if self.load_error.is_none() {
            self.set_status(
                Level::Info,
                format!(
                    "loaded {} ({} layers × {} heads, {:.1} M parameters) in {seconds:.2} s",
                    info.label,
                    info.n_layers,
                    info.n_heads,
                    n_params as f64 / 1e6
                ),
            );
        }
        if self.model.as_ref() != Some(&info) {
            // Runs of another model are kept in the gallery once saved.
            self.forget_runs();
        }
        self.model = Some(info);
        self.recheck_read_only();
        self.load_jobs.retain(|&j| j != id);
        self.jobs.retain(|j| j.id != id);
        self.maybe_ready();
    }

    /// The data's baselines and accuracy: kept, and a warning when r will be ill-conditioned.
    fn on_evaluated(&mut self, e: Evaluation) {
        let mut parts = Vec::new();
        if crate::patching::matrix::ill_conditioned(e.ld_normal, e.ld_contrast) {
            parts.push(format!(
                "baselines only {} apart: r will be ill-conditioned (the model barely tells the prompts apart)",
                fixed((e.ld_contrast - e.ld_normal).abs(), 2)
            ));
        }
        // The low-accuracy warning (last) matters most: a heatmap of tokens never predicted.
        // All of them show beside the baselines too.
        parts.extend(e.warnings.last().cloned());
        if !parts.is_empty() {
            parts.push(e.summary());
            // A warning or error already shown (a groups file not applied, a load error) comes
            // from the same start and is not replaced by this one: both are kept.
            if matches!(self.status.0, Level::Warn | Level::Error) && !self.status.1.is_empty() {
                parts.insert(0, self.status.1.clone());
            }
            self.set_status(Level::Warn, parts.join(" · "));
        }
        if let Some(d) = self.data.as_mut() {
            d.eval = Some(e);
        }
    }

    /// A running sweep's baselines or one of its rows: the partial record is rebuilt.
    fn on_patch_event(&mut self, id: JobId, event: PatchEvent) {
        let Some(i) = self.slot_of_job(id) else {
            return;
        };
        match event {
            PatchEvent::Baselines {
                ld_normal,
                ld_contrast,
                n_examples,
                ..
            } => {
                let (n_layers, n_heads) = self
                    .model
                    .as_ref()
                    .map_or((0, 0), |m| (m.n_layers, m.n_heads));
                self.runs[i].matrix = Some(PatchMatrix::new(
                    n_layers,
                    n_heads,
                    ld_normal,
                    ld_contrast,
                    n_examples,
                ));
            }
            PatchEvent::Row {
                layer,
                patched,
                done,
                total,
                elapsed,
                eta,
            } => {
                if let Some(m) = self.runs[i].matrix.as_mut() {
                    m.set_row(layer, patched);
                }
                self.runs[i].state = RunState::Running {
                    job: id,
                    done,
                    total,
                    elapsed,
                    eta,
                };
            }
        }
        self.rebuild_record(i, false);
    }

    /// A sweep ended (complete or cancelled): its record is kept and calibrates later ETAs.
    fn on_patch_done(&mut self, id: JobId, record: RunRecord) {
        self.jobs.retain(|j| j.id != id);
        let Some(i) = self.slot_of_job(id) else {
            return;
        };
        let complete = record.complete;
        if let (Some(t), true) = (record.timing, complete) {
            let spec = self.setup.spec(record.receiver.clone(), record.begin_layer);
            let cost = spec.total_cost(record.n_layers);
            if cost > 0.0 {
                let c = Calibration {
                    algorithm: spec.algorithm,
                    last_position_only: spec.receiver.last_position_only(record.n_layers),
                    cache_seconds: t.cache_seconds,
                    seconds_per_cost: t.sweep_seconds / cost,
                };
                let same = |o: &Calibration| {
                    (o.algorithm, o.last_position_only) == (c.algorithm, c.last_position_only)
                };
                self.calibrations.retain(|o| !same(o));
                self.calibrations.push(c);
            }
        }
        let t = record.timing.unwrap_or_default();
        self.runs[i].record = Some(record);
        self.runs[i].state = if complete {
            RunState::Done
        } else {
            RunState::Cancelled
        };
        // A message belongs to what is on screen: a sweep left for another view (`R`, `[`)
        // says so instead of "s saves it", which would save the run shown.
        let shown = self.trail.get(self.trail_pos) == Some(&i);
        let msg = if !shown {
            let how = if complete { "finished" } else { "cancelled" };
            format!(
                "{} {how} in the background (not the run on screen; [ ] go to it)",
                self.runs[i].key.receiver
            )
        } else if complete {
            format!(
                "done: {} in {:.2} s (caches {:.2} s + sweep {:.2} s) — s saves it",
                self.runs[i].key.receiver,
                t.cache_seconds + t.sweep_seconds,
                t.cache_seconds,
                t.sweep_seconds
            )
        } else {
            "cancelled: the finished rows are kept (s saves them, marked partial)".to_string()
        };
        self.set_status(Level::Info, msg);
    }

    /// A job failed: a load goes back to the last setup that loaded; a run is marked failed.
    fn on_error(&mut self, id: JobId, message: String) {
        self.jobs.retain(|j| j.id != id);
        if self.is_load_job(id) {
            if !self.failed_load_jobs.contains(&id) {
                self.load_failed(message);
            }
            return;
        }
        if let Some(i) = self.slot_of_job(id) {
            self.runs[i].state = RunState::Failed(message.clone());
        }
        self.forget_waiting(id);
        self.set_status(Level::Error, message);
    }

    /// The data is loaded: say what it holds, drop runs of other data, and keep it.
    fn on_data_loaded(
        &mut self,
        id: JobId,
        info: DataInfo,
        lengths: Vec<usize>,
        preview: Vec<PairPreview>,
    ) {
        let mut msg = format!(
            "{} examples from {}",
            info.n_examples,
            info.spec.file.display()
        );
        if !info.skipped.is_empty() {
            msg.push_str(&format!(
                ", {} skipped (length mismatch)",
                info.skipped.len()
            ));
        }
        if !info.multi_token_answers.is_empty() {
            msg.push_str(&format!(
                ", {} multi-token answers",
                info.multi_token_answers.len()
            ));
        }
        if self.load_error.is_none() {
            self.set_status(Level::Info, msg);
        }
        if self.data.as_ref().map(|d| &d.info.spec) != Some(&info.spec) {
            self.forget_runs();
        }
        self.load_jobs.retain(|&j| j != id);
        if self.load_jobs.is_empty() && self.load_error.is_none() {
            self.loaded_setup = Some(self.setup.clone());
        }
        self.data = Some(DataStatus {
            eval: None,
            info,
            lengths,
            preview,
        });
        self.jobs.retain(|j| j.id != id);
        self.maybe_ready();
    }

    /// Drops this session's runs (the model or data changed under them).
    /// Opened files stay, and so do their breadcrumbs.
    pub(super) fn forget_runs(&mut self) {
        let opened = |s: &RunSlot| matches!(s.state, RunState::Opened(_));
        if self.runs.iter().all(opened) {
            return;
        }
        let current = self.trail.get(self.trail_pos).copied();
        let mut new_index = vec![None; self.runs.len()];
        let mut kept = Vec::new();
        for (i, slot) in std::mem::take(&mut self.runs).into_iter().enumerate() {
            if opened(&slot) {
                new_index[i] = Some(kept.len());
                kept.push(slot);
            }
        }
        self.runs = kept;
        self.trail = self.trail.iter().filter_map(|&i| new_index[i]).collect();
        self.trail_pos = current
            .and_then(|c| new_index[c])
            .and_then(|c| self.trail.iter().position(|&i| i == c))
            .unwrap_or(self.trail.len().saturating_sub(1));
    }

    /// Once model and data are in, open the default receiver.
    pub(super) fn maybe_ready(&mut self) {
        if self.model.is_some() && self.data.is_some() && self.loading && self.load_jobs.is_empty()
        {
            self.loading = false;
            if self.trail.is_empty() {
                if let Some(key) = self.default_key() {
                    self.navigate(key, false);
                    let (_, hi) = self.layer_range();
                    self.cursor = (hi, 0);
                }
            }
            if self.pending_groups.is_some() && self.load_error.is_none() {
                return self.apply_pending_groups();
            }
            if self.load_error.is_some() {
                return;
            }
            if let Some(RunState::Opened(p)) = self.current().map(|s| &s.state) {
                let msg = format!("{} · R: the loaded model's own run", p.display());
                return self.set_status(Level::Info, msg);
            }
            if self.screen == Screen::Setup {
                self.screen = Screen::Heatmap;
            }
            let spec = self.current_spec();
            let eta = spec.as_ref().and_then(|s| self.eta(s));
            let senders = spec.as_ref().map_or(0, |s| s.n_senders(self.n_heads()));
            self.set_status(
                Level::Info,
                format!(
                    "ready: r runs {} senders → {}{} · ? shows every key",
                    senders,
                    spec.map(|s| s.receiver.label()).unwrap_or_default(),
                    eta.map(|e| format!(" (ETA {e:.1} s)")).unwrap_or_default()
                ),
            );
        }
    }

    pub(super) fn slot_of_job(&self, id: JobId) -> Option<usize> {
        self.runs
            .iter()
            .position(|s| matches!(s.state, RunState::Running { job, .. } if job == id))
    }

    /// Rebuilds a running slot's record from its partial matrix.
    pub(super) fn rebuild_record(&mut self, i: usize, complete: bool) {
        let (Some(model), Some(data)) = (self.model.clone(), self.data.as_ref()) else {
            return;
        };
        let slot = &self.runs[i];
        let Some(m) = slot.matrix.as_ref() else {
            return;
        };
        let rec = RunRecord::from_run(RecordParts {
            matrix: m,
            complete,
            receiver: &slot.key.receiver,
            begin_layer: slot.key.begin_layer,
            algorithm: self.setup.algorithm,
            batch_size: self.setup.batch_size,
            model,
            data: Some(data.info.clone()),
            timing: Timing::default(),
        });
        self.runs[i].record = Some(rec);
    }
}

/// A job's progress for the status bar: loads count layers, analyses their evaluations.
fn progress_text(what: &str, done: usize, total: usize) -> String {
    match what {
        "circuit" | "ablation" | "greedy search" => {
            format!("{what}: {done}/{total} (c on the circuit screen cancels)")
        }
        _ => format!("{what}: {done}/{total} layers"),
    }
}
