//! Keys and mouse: the dispatch to each screen, the heatmap's actions, the help overlay and the
//! text prompts (each other screen's actions are in its own file: attention, gallery, setup,
//! circuit).

use super::*;
use crate::tui::keymap::{self, HeatmapAction};

impl Session {
    /// What a key does before it reaches the screen: the quit prompt, Ctrl-C, a text
    /// prompt and the help take it first. Returns whether the key is left for the screen.
    pub(super) fn on_key_first(&mut self, key: KeyEvent) -> bool {
        if key.kind == crossterm::event::KeyEventKind::Release {
            return false;
        }
        // In raw mode Ctrl-C is a key, not a signal: on every screen, even in a prompt, it is
        // `q` (asks first when something is unsaved; pressed again, quits).
        let ctrl_c =
            key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
        if std::mem::take(&mut self.confirm_quit) {
            match key.code {
                _ if ctrl_c => self.quit_now(),
                KeyCode::Char('q') => self.quit_now(),
                KeyCode::Char('a') => self.save_before_exit(),
                _ => self.set_status(Level::Info, ""),
            }
            return false;
        }
        if ctrl_c {
            self.request_quit();
            return false;
        }
        if self.input.is_some() {
            self.on_input_key(key);
            return false;
        }
        if self.help {
            self.on_help_key(key);
            return false;
        }
        // Every table has `?` (its help lists it); caught here too, so that a screen added
        // later opens its help even before its table has the key.
        if key.code == KeyCode::Char('?') {
            self.open_help();
            return false;
        }
        // A message belongs to the action that set it: the next key's action replaces it.
        if !self.loading {
            self.set_status(Level::Info, "");
        }
        true
    }

    /// A key on a screen that is not a component yet (`screens::registry!`'s `legacy`).
    pub(super) fn on_legacy_screen_key(&mut self, key: KeyEvent) {
        match self.screen {
            Screen::Heatmap => self.on_heatmap_key(key),
            Screen::Setup => self.on_setup_key(key),
            Screen::Gallery => self.on_gallery_key(key),
            Screen::Circuit => self.on_circuit_key(key),
            Screen::Compare => {
                if let Some(action) = keymap::lookup(keymap::COMPARE, key.code) {
                    self.update_compare(action);
                }
            }
            _ => {}
        }
    }

    /// Opens the help of the screen on show (every screen's table has `?`).
    pub(super) fn open_help(&mut self) {
        self.help = true;
        self.help_scroll = 0;
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

    /// Everything quitting now would lose, one line each: every finished run not saved (by
    /// its receiver, as the breadcrumbs name it), the head groups, every analysis report.
    /// The quit prompt lists them all, so that a run left off the breadcrumb trail is named
    /// too, not only the first kind found.
    pub fn unsaved_list(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, s) in self.runs.iter().enumerate() {
            let rows = s.record.as_ref().map_or(0, |r| r.rows_computed.len());
            let how = match s.state {
                RunState::Done => "finished",
                RunState::Cancelled => "cancelled",
                _ => continue,
            };
            if s.saved_to.is_none() && rows > 0 {
                out.push(format!("run {} ({how}, {rows} rows)", self.run_label(i)));
            }
        }
        let tagged: Vec<String> = (self.groups.iter())
            .filter(|g| !g.heads.is_empty())
            .map(|g| format!("{} ({})", g.name, g.heads.len()))
            .collect();
        if !tagged.is_empty() && !self.groups_saved {
            out.push(format!("head groups: {}", tagged.join(", ")));
        }
        for tab in super::circuit::ReportTab::ALL {
            if self
                .circuit
                .report(tab)
                .is_some_and(|r| r.saved_to.is_none())
            {
                out.push(format!("{} report", tab.label()));
            }
        }
        out
    }

    /// `q` or Ctrl-C: quits, or first asks when something would be lost, listing all of it
    /// (the view draws the list; `a` saves it all and quits).
    pub(super) fn request_quit(&mut self) {
        let list = self.unsaved_list();
        if list.is_empty() {
            return self.quit_now();
        }
        self.confirm_quit = true;
        let msg = format!(
            "{} not saved: a saves all and quits, q quits, any other key stays",
            list.len()
        );
        self.set_status(Level::Warn, msg);
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
        let max = crate::tui::layout::help_max_scroll(help_table(self.screen), self.viewport);
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
        let [up, down, left, right] = arrow_steps(rows);
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
            A::Help => self.open_help(),
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
            A::DrillSelection => self.drill_selection(),
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
            A::Figure => self.write_heatmap_figure(),
            A::Setup => self.screen = Screen::Setup,
            A::Gallery => self.open_gallery(),
            A::Runs => self.screen = Screen::Runs,
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
            A::Quit => self.request_quit(),
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
            "receiver (resid_post:L[,L] | resid_pre:L | resid_mid:L | L.H.v [L.H.q ...])",
            initial,
        );
    }

    /// The selected heads as one receiver, each with the drill-down input (`i`): the receiver
    /// prompt opens with them, so that one head's q/k/v can be changed before Enter runs it.
    fn drill_selection(&mut self) {
        if self.selected.is_empty() {
            let msg = "no heads selected: space selects heads, then D makes them one receiver";
            return self.set_status(Level::Warn, msg);
        }
        let heads = self
            .selected
            .iter()
            .map(|&(layer, head)| HeadReceiver {
                layer,
                head,
                input: self.drill_input,
            })
            .collect();
        let mut receiver = Receiver::Heads { heads };
        receiver.normalize();
        let label = "receiver from the selection (edit a head's q/k/v: L.H.q)";
        self.open_input(InputPurpose::Receiver, label, receiver.cli_text());
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

    pub(super) fn on_input_key(&mut self, key: KeyEvent) {
        let Some(input) = self.input.as_mut() else {
            return;
        };
        match key.code {
            KeyCode::Esc if input.purpose == InputPurpose::GalleryFilter => {
                self.input = None;
                self.gallery.set_filter("");
            }
            KeyCode::Esc => self.input = None,
            KeyCode::Enter => {
                let mut input = self.input.take().unwrap();
                self.set_status(Level::Info, "");
                match self.apply_input(&input) {
                    Ok(()) => {}
                    Err(e) => {
                        // Stays open, saying why, with the refused value shown: the next
                        // character typed replaces it (an arrow or Backspace edits it).
                        self.set_status(Level::Error, e.clone());
                        input.error = Some(e);
                        input.fresh = true;
                        self.input = Some(input);
                    }
                }
            }
            _ => {
                input.edit(key);
                // The list follows the filter as it is typed.
                if input.purpose == InputPurpose::GalleryFilter {
                    let text = input.buffer.clone();
                    self.gallery.set_filter(&text);
                }
            }
        }
    }

    pub(super) fn apply_input(&mut self, input: &Input) -> Result<(), String> {
        let text = input.buffer.trim();
        match input.purpose {
            InputPurpose::Receiver => self.apply_receiver(text),
            InputPurpose::BeginLayer => self.apply_begin_layer(text),
            InputPurpose::Crop => self.apply_crop(text),
            InputPurpose::Circuit(f) => self.apply_circuit_input(f, text),
            InputPurpose::NewGroup => self.apply_new_group(text),
            InputPurpose::GalleryFilter => {
                self.gallery.set_filter(text);
                Ok(())
            }
            InputPurpose::SetupField(i) => {
                self.set_setup_field(i, text)?;
                self.set_status(Level::Info, "press L to load with the new setup");
                Ok(())
            }
        }
    }

    /// A typed receiver (the `--receiver` values, separated by spaces or commas) is run from
    /// the current begin layer, lowered to where senders still reach it.
    fn apply_receiver(&mut self, text: &str) -> Result<(), String> {
        let mut receiver = Receiver::parse_many(&[text.to_string()]).map_err(|e| e.to_string())?;
        if let Some(m) = &self.model {
            // What reaches `mlp_in:L` depends on the block shape (as `patch` sets it up).
            let shape = match m.parallel_block {
                true => crate::model::BlockShape::Parallel,
                false => crate::model::BlockShape::Sequential,
            };
            receiver = receiver.for_block(shape);
            receiver
                .validate(m.n_layers, m.n_heads)
                .map_err(|e| e.to_string())?;
        }
        let begin = self
            .current()
            .map_or(self.setup.begin_layer, |s| s.key.begin_layer);
        let begin_layer = begin_for(&receiver, begin);
        self.navigate(
            RunKey {
                receiver,
                begin_layer,
            },
            true,
        );
        Ok(())
    }

    fn apply_begin_layer(&mut self, text: &str) -> Result<(), String> {
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
        Ok(())
    }

    fn apply_new_group(&mut self, text: &str) -> Result<(), String> {
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
