//! Keys and mouse: how each screen reacts, and the text prompts.

use super::*;
use crate::tui::keymap::{self, HeatmapAction};

impl App {
    pub fn on_key(&mut self, key: KeyEvent) {
        if key.kind == crossterm::event::KeyEventKind::Release {
            return;
        }
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            self.effects.push(Effect::Cancel);
            self.effects.push(Effect::Quit);
            self.quit = true;
            return;
        }
        if std::mem::take(&mut self.confirm_quit) {
            if key.code == KeyCode::Char('q') {
                return self.quit_now();
            }
            self.set_status(Level::Info, "");
        }
        if self.input.is_some() {
            self.on_input_key(key);
            return;
        }
        if self.help {
            return self.on_help_key(key);
        }
        if key.code == KeyCode::Char('?') {
            self.help = true;
            self.help_scroll = 0;
            return;
        }
        // A message belongs to the action that set it: the next key's action replaces it.
        if !self.loading {
            self.set_status(Level::Info, "");
        }
        match self.screen {
            Screen::Heatmap => self.on_heatmap_key(key),
            Screen::Attention => self.on_attention_key(key),
            Screen::Setup => self.on_setup_key(key),
            Screen::Gallery => self.on_gallery_key(key),
            Screen::Circuit => self.on_circuit_key(key),
            Screen::Compare => {
                if matches!(key.code, KeyCode::Esc | KeyCode::Char('q')) {
                    self.screen = Screen::Gallery;
                } else if key.code == KeyCode::Char('d') {
                    self.gallery.diff = !self.gallery.diff;
                }
            }
        }
    }

    /// What would be lost by quitting now: tagged groups or a finished run not saved.
    pub fn unsaved(&self) -> Option<&'static str> {
        let groups_tagged = self.groups.iter().any(|g| !g.heads.is_empty());
        if groups_tagged && !self.groups_saved {
            return Some("head groups");
        }
        let run = self.runs.iter().any(|s| {
            matches!(s.state, RunState::Done | RunState::Cancelled) && s.saved_to.is_none()
        });
        if run {
            return Some("a finished run");
        }
        let mut reports = self.circuit.reports.iter().flatten();
        reports
            .any(|r| r.saved_to.is_none())
            .then_some("an analysis report")
    }

    pub(super) fn quit_now(&mut self) {
        if self.running() {
            self.effects.push(Effect::Cancel);
        }
        self.effects.push(Effect::Quit);
        self.quit = true;
    }

    pub(super) fn open_input(&mut self, purpose: InputPurpose, label: &str, initial: String) {
        self.input = Some(Input::new(purpose, label, initial));
    }

    /// A heatmap key: looked up in the heatmap's key table (the one `?` prints), then done.
    /// Keys while the help is open: it scrolls (it is cut on small terminals) and closes.
    fn on_help_key(&mut self, key: KeyEvent) {
        let max = crate::tui::view::help_max_scroll(self.screen, self.viewport);
        let page = (self.viewport.1 as usize).saturating_sub(3).max(1);
        let s = self.help_scroll.min(max);
        self.help_scroll = match key.code {
            KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('?') => {
                self.help = false;
                0
            }
            KeyCode::Down | KeyCode::Char('j') => (s + 1).min(max),
            KeyCode::Up | KeyCode::Char('k') => s.saturating_sub(1),
            KeyCode::PageDown | KeyCode::Char(' ') => (s + page).min(max),
            KeyCode::PageUp => s.saturating_sub(page),
            KeyCode::Home | KeyCode::Char('g') => 0,
            KeyCode::End | KeyCode::Char('G') => max,
            _ => s,
        };
    }

    pub(super) fn on_heatmap_key(&mut self, key: KeyEvent) {
        if let Some(action) = keymap::lookup(keymap::HEATMAP, key.code) {
            self.update_heatmap(action);
        }
    }

    /// Does what a heatmap action asks: moves and views here, the rest in helpers.
    pub fn update_heatmap(&mut self, action: HeatmapAction) {
        use HeatmapAction as A;
        let rows = self.layers_as_rows();
        // On screen the top row is the highest layer; up moves to a higher layer.
        let (up, down, left, right) = if rows {
            ((1, 0), (-1, 0), (0, -1), (0, 1))
        } else {
            ((0, -1), (0, 1), (-1, 0), (1, 0))
        };
        match action {
            A::Up => self.move_cursor(up.0, up.1),
            A::Down => self.move_cursor(down.0, down.1),
            A::Left => self.move_cursor(left.0, left.1),
            A::Right => self.move_cursor(right.0, right.1),
            A::PageUp => self.move_cursor(8 * up.0, 8 * up.1),
            A::PageDown => self.move_cursor(8 * down.0, 8 * down.1),
            A::Home => self.cursor = (self.layer_range().1, 0),
            A::End => self.cursor = (self.layer_range().0, self.n_heads().saturating_sub(1)),
            A::ToggleRange => {
                self.range = match self.range {
                    RangeMode::Auto => RangeMode::Fixed20,
                    RangeMode::Fixed20 => RangeMode::Auto,
                }
            }
            A::Uncrop => {
                self.crop = None;
                self.clamp_cursor();
            }
            A::Orientation => {
                self.orientation = if rows {
                    Orientation::LayersAsColumns
                } else {
                    Orientation::LayersAsRows
                }
            }
            A::ThresholdUp => self.step_threshold(10),
            A::ThresholdDown => self.step_threshold(-10),
            A::Help => {
                self.help = true;
                self.help_scroll = 0;
            }
            _ => self.update_heatmap_run(action),
        }
    }

    /// Heatmap actions on runs, receivers and the screens they lead to.
    fn update_heatmap_run(&mut self, action: HeatmapAction) {
        use HeatmapAction as A;
        match action {
            A::Run => self.run_current(),
            A::DefaultRun => {
                if let Some(key) = self.default_key() {
                    self.navigate(key, true);
                }
            }
            A::Cancel if self.running() => {
                self.effects.push(Effect::Cancel);
                self.set_status(Level::Info, "cancelling after the current sender layer…");
            }
            A::Drill => self.drill(),
            A::CycleInput => self.cycle_drill_input(),
            A::Back => self.back(),
            A::Forward => self.forward(),
            A::EditReceiver => self.edit_receiver(),
            A::EditBegin => {
                let initial = self.current().map_or(0, |s| s.key.begin_layer).to_string();
                let label = "begin layer (first sender layer)";
                self.open_input(InputPurpose::BeginLayer, label, initial);
            }
            A::Crop => {
                let (lo, hi) = self.layer_range();
                let initial = format!("{lo}-{hi}");
                self.open_input(InputPurpose::Crop, "show layers LO-HI", initial);
            }
            A::Attention => self.open_attention(),
            A::Save => self.save_current(),
            A::SaveGroups => self.save_groups(),
            A::Setup => self.screen = Screen::Setup,
            A::Gallery => self.open_gallery(),
            A::Circuit => self.open_circuit(),
            _ => self.update_heatmap_marks(action),
        }
    }

    /// Heatmap actions on the selection and groups, Esc and quitting.
    fn update_heatmap_marks(&mut self, action: HeatmapAction) {
        use HeatmapAction as A;
        match action {
            A::Select => {
                let c = self.cursor;
                if !self.selected.remove(&c) {
                    self.selected.insert(c);
                }
            }
            A::Tag => self.toggle_tag(),
            A::NextGroup => {
                self.active_group = (self.active_group + 1) % self.groups.len().max(1);
                let name = &self.groups[self.active_group].name;
                self.set_status(Level::Info, format!("tagging into group {name:?}"));
            }
            A::NewGroup => self.open_input(InputPurpose::NewGroup, "new group name", String::new()),
            // Esc clears, never quits (as in lazygit, gitui, btop).
            A::Clear if !self.selected.is_empty() => self.selected.clear(),
            A::Clear => self.set_status(Level::Info, "q quits"),
            A::Quit => match self.unsaved() {
                Some(what) => {
                    self.confirm_quit = true;
                    let msg = format!("{what} not saved: q again quits, any other key stays");
                    self.set_status(Level::Warn, msg);
                }
                None => self.quit_now(),
            },
            _ => {}
        }
    }

    fn cycle_drill_input(&mut self) {
        self.drill_input = match self.drill_input {
            HeadInput::V => HeadInput::Q,
            HeadInput::Q => HeadInput::K,
            HeadInput::K => HeadInput::V,
        };
        let msg = format!(
            "Enter drills into the head's {} input",
            self.drill_input.letter()
        );
        self.set_status(Level::Info, msg);
    }

    fn edit_receiver(&mut self) {
        let initial = self
            .current()
            .map(|s| s.key.receiver.cli_text())
            .unwrap_or_default();
        self.open_input(
            InputPurpose::Receiver,
            "receiver (resid_post:L | resid_pre:L | resid_mid:L | L.H.v [L.H.q ...])",
            initial,
        );
    }

    /// Moves the first list's threshold by `d` tenths of a percent, in exact steps (labels
    /// print exactly the threshold applied), never to or below the second one's.
    pub(super) fn step_threshold(&mut self, d: i64) {
        let pm = |x: f64| (x * 1000.0).round() as i64;
        let lo = pm(self.thresholds.lo);
        let hi = (pm(self.thresholds.hi) + d).clamp(lo + 10, 1000);
        self.thresholds.hi = hi as f64 / 1000.0;
    }

    pub(super) fn toggle_tag(&mut self) {
        if self.groups.is_empty() {
            return;
        }
        let c = self.cursor;
        self.groups_saved = false;
        let g = &mut self.groups[self.active_group];
        if let Some(p) = g.heads.iter().position(|&h| h == c) {
            g.heads.remove(p);
            let msg = format!("H{}.{} removed from {}", c.0, c.1, g.name);
            self.set_status(Level::Info, msg);
        } else {
            g.heads.push(c);
            g.heads.sort_unstable_by(|a, b| b.cmp(a));
            let msg = format!("H{}.{} tagged {}", c.0, c.1, g.name);
            self.set_status(Level::Info, msg);
        }
    }

    pub(super) fn open_attention(&mut self) {
        if self.model.is_none() || self.data.is_none() {
            self.set_status(Level::Warn, "model and data are still loading");
            return;
        }
        let heads: Vec<(usize, usize)> = if self.selected.is_empty() {
            vec![self.cursor]
        } else {
            self.selected.iter().rev().copied().collect()
        };
        self.attention.heads = heads;
        self.attention.current = 0;
        self.attention.query = None;
        self.screen = Screen::Attention;
        self.request_attention();
    }

    pub(super) fn request_attention(&mut self) {
        self.attention.patterns.clear();
        let req = AttentionRequest {
            heads: self.attention.heads.clone(),
            run: self.attention.run,
            prompts: self.attention.prompts,
        };
        let id = self.submit(Job::Attention(req));
        self.attention.waiting = Some(id);
    }

    pub(super) fn on_attention_key(&mut self, key: KeyEvent) {
        let n_prompts = self.data.as_ref().map_or(1, |d| d.info.n_examples);
        let len = self.attention.tokens.len();
        match key.code {
            KeyCode::Esc | KeyCode::Char('q') => self.screen = Screen::Heatmap,
            KeyCode::Char('n') => {
                self.attention.run = match self.attention.run {
                    RunKind::Normal => RunKind::Contrast,
                    RunKind::Contrast => RunKind::Normal,
                };
                self.request_attention();
            }
            KeyCode::Char('+') | KeyCode::Char('=') => {
                let n = match self.attention.prompts {
                    PromptChoice::Mean(n) => (n + 1).min(n_prompts),
                    PromptChoice::One(_) => 1,
                };
                self.attention.prompts = PromptChoice::Mean(n);
                self.request_attention();
            }
            KeyCode::Char('-') => {
                let n = match self.attention.prompts {
                    PromptChoice::Mean(n) => n.saturating_sub(1).max(1),
                    PromptChoice::One(_) => 1,
                };
                self.attention.prompts = PromptChoice::Mean(n);
                self.request_attention();
            }
            KeyCode::Char('p') => {
                let i = match self.attention.prompts {
                    PromptChoice::One(i) => (i + 1) % n_prompts.max(1),
                    PromptChoice::Mean(_) => 0,
                };
                self.attention.prompts = PromptChoice::One(i);
                self.request_attention();
            }
            KeyCode::Char('P') => {
                self.attention.prompts = PromptChoice::Mean(4.min(n_prompts));
                self.request_attention();
            }
            KeyCode::Char('b') => self.attention.bars = !self.attention.bars,
            KeyCode::Up | KeyCode::Char('k') if len > 0 => {
                let q = self.attention.query.unwrap_or(len - 1);
                self.attention.query = Some(q.saturating_sub(1));
            }
            KeyCode::Down | KeyCode::Char('j') if len > 0 => {
                let q = self.attention.query.unwrap_or(len - 1);
                self.attention.query = Some((q + 1).min(len - 1));
            }
            KeyCode::Tab | KeyCode::Right | KeyCode::Char('l')
                if !self.attention.heads.is_empty() =>
            {
                self.attention.current = (self.attention.current + 1) % self.attention.heads.len();
            }
            KeyCode::BackTab | KeyCode::Left | KeyCode::Char('h') => {
                let n = self.attention.heads.len();
                if n > 0 {
                    self.attention.current = (self.attention.current + n - 1) % n;
                }
            }
            _ => {}
        }
    }

    pub(super) fn on_setup_key(&mut self, key: KeyEvent) {
        match key.code {
            KeyCode::Esc | KeyCode::Char('q') => self.screen = Screen::Heatmap,
            KeyCode::Up | KeyCode::Char('k') => self.setup_row = self.setup_row.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => {
                self.setup_row = (self.setup_row + 1).min(SETUP_FIELDS.len() - 1)
            }
            KeyCode::Enter => {
                let i = self.setup_row;
                let label = SETUP_FIELDS[i];
                let initial = self.setup.field(i);
                self.open_input(InputPurpose::SetupField(i), label, initial);
            }
            KeyCode::Char('L') | KeyCode::Char('l') => {
                // The loaded model and its runs stay until the new ones are in (a failed load
                // goes back to them).
                // Stay here: an error is shown in full on this screen; once loaded, the
                // heatmap opens.
                self.load_setup();
            }
            _ => {}
        }
    }

    pub(super) fn on_gallery_key(&mut self, key: KeyEvent) {
        let n = self.gallery.entries.len();
        match key.code {
            KeyCode::Esc | KeyCode::Char('q') => self.screen = Screen::Heatmap,
            KeyCode::Up | KeyCode::Char('k') => self.gallery.selected = self.gallery.selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') if n > 0 => self.gallery.selected = (self.gallery.selected + 1).min(n - 1),
            KeyCode::Char('r') => self.open_gallery(),
            KeyCode::Char('m') if n > 0 => {
                self.gallery.marked = if self.gallery.marked == Some(self.gallery.selected) {
                    None
                } else {
                    Some(self.gallery.selected)
                };
            }
            KeyCode::Char('c') | KeyCode::Char('d') if n > 0 => match self.gallery.marked {
                Some(m) if m != self.gallery.selected => {
                    let (a, b) = (&self.gallery.entries[m].record, &self.gallery.entries[self.gallery.selected].record);
                    match (a, b) {
                        (Ok(a), Ok(b)) if a.n_layers == b.n_layers && a.n_heads == b.n_heads => {
                            self.gallery.diff = key.code == KeyCode::Char('d');
                            self.screen = Screen::Compare;
                        }
                        (Ok(_), Ok(_)) => self.set_status(Level::Warn, "the two results have different shapes"),
                        // A file that did not load, or an analysis result (which has no matrix).
                        (Err(e), _) | (_, Err(e)) => {
                            let msg = format!("cannot compare: {e}");
                            self.set_status(Level::Error, msg)
                        }
                    }
                }
                _ => self.set_status(Level::Info, "mark one result with m, then select another and press c (side by side) or d (difference)"),
            },
            KeyCode::Enter if n > 0 => {
                let e = &self.gallery.entries[self.gallery.selected];
                if let EntryKind::Analysis(f) = &e.kind {
                    let (f, path) = ((**f).clone(), e.path.clone());
                    return self.open_analysis(f, path);
                }
                match &e.record {
                    Ok(rec) => {
                        let rec = rec.clone();
                        let path = e.path.clone();
                        self.open_record(rec, path);
                    }
                    Err(msg) => {
                        let msg = msg.clone();
                        self.set_status(Level::Error, msg)
                    }
                }
            }
            _ => {}
        }
    }

    pub(super) fn on_input_key(&mut self, key: KeyEvent) {
        let Some(input) = self.input.as_mut() else {
            return;
        };
        match key.code {
            KeyCode::Esc => self.input = None,
            KeyCode::Enter => {
                let mut input = self.input.take().unwrap();
                self.set_status(Level::Info, "");
                match self.apply_input(&input) {
                    Ok(()) => {}
                    Err(e) => {
                        // Stays open, in edit mode, saying why.
                        self.set_status(Level::Error, e.clone());
                        input.error = Some(e);
                        input.fresh = false;
                        self.input = Some(input);
                    }
                }
            }
            _ => {
                input.edit(key);
            }
        }
    }

    pub(super) fn apply_input(&mut self, input: &Input) -> Result<(), String> {
        let text = input.buffer.trim();
        match input.purpose {
            InputPurpose::Receiver => {
                let values: Vec<String> = text.split_whitespace().map(str::to_string).collect();
                let receiver = Receiver::parse_many(&values).map_err(|e| e.to_string())?;
                if let Some(m) = &self.model {
                    receiver
                        .validate(m.n_layers, m.n_heads)
                        .map_err(|e| e.to_string())?;
                }
                let begin = self
                    .current()
                    .map_or(self.setup.begin_layer, |s| s.key.begin_layer)
                    .min(receiver.max_layer());
                self.navigate(
                    RunKey {
                        receiver,
                        begin_layer: begin,
                    },
                    true,
                );
            }
            InputPurpose::BeginLayer => {
                let b: usize = text
                    .parse()
                    .map_err(|_| format!("begin layer: expected a number, got {text:?}"))?;
                let Some(cur) = self.current() else {
                    return Ok(());
                };
                let receiver = cur.key.receiver.clone();
                if b > receiver.max_layer() {
                    return Err(format!(
                        "begin layer {b} is after the receiver's last layer {}",
                        receiver.max_layer()
                    ));
                }
                self.navigate(
                    RunKey {
                        receiver,
                        begin_layer: b,
                    },
                    true,
                );
            }
            InputPurpose::Crop => self.apply_crop(text)?,
            InputPurpose::Circuit(f) => self.apply_circuit_input(f, text)?,
            InputPurpose::NewGroup => {
                if text.is_empty() {
                    return Err("group name: empty".into());
                }
                if let Some(i) = self.groups.iter().position(|g| g.name == text) {
                    self.active_group = i;
                } else {
                    self.groups.push(HeadGroup {
                        name: text.to_string(),
                        heads: Vec::new(),
                    });
                    self.active_group = self.groups.len() - 1;
                }
                self.set_status(
                    Level::Info,
                    format!("tagging into group {text:?} (t tags the head under the cursor)"),
                );
            }
            InputPurpose::SetupField(i) => {
                self.setup.set_field(i, text)?;
                self.set_status(Level::Info, "press L to load with the new setup");
            }
        }
        Ok(())
    }

    /// `z`: show only layers LO-HI.
    fn apply_crop(&mut self, text: &str) -> Result<(), String> {
        let (lo, hi) = text
            .split_once('-')
            .and_then(|(a, b)| {
                Some((
                    a.trim().parse::<usize>().ok()?,
                    b.trim().parse::<usize>().ok()?,
                ))
            })
            .ok_or_else(|| format!("crop: expected LO-HI, got {text:?}"))?;
        let n = self.n_layers();
        if lo > hi || hi >= n.max(1) {
            return Err(format!("crop: expected 0 <= LO <= HI < {n}"));
        }
        self.crop = Some((lo, hi));
        self.cursor.0 = self.cursor.0.clamp(lo, hi);
        Ok(())
    }

    // ----- mouse -----

    pub fn on_mouse(&mut self, m: MouseEvent) {
        if self.input.is_some() || self.help || self.screen != Screen::Heatmap {
            return;
        }
        match m.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                if let Some(cell) = self.cell_at(m.column, m.row) {
                    self.cursor = cell;
                }
            }
            MouseEventKind::ScrollUp => self.move_cursor(1, 0),
            MouseEventKind::ScrollDown => self.move_cursor(-1, 0),
            _ => {}
        }
    }

    /// The (layer, head) drawn at a screen position, if any.
    pub fn cell_at(&self, x: u16, y: u16) -> Option<(usize, usize)> {
        let g = self.heatmap_geometry()?;
        if x < g.x || y < g.y {
            return None;
        }
        let col = ((x - g.x) / g.cell_w.max(1)) as usize;
        let row = (y - g.y) as usize;
        if col >= g.n_cols as usize || row >= g.n_rows as usize {
            return None;
        }
        Some(g.cell_at(row, col))
    }

    // ----- saving -----
}
