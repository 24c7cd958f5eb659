//! Opening the attention screen from the heatmap: only where the loaded model's attention is
//! the one the result on screen needs. The screen itself is a component
//! (`screens/attention.rs`).

use super::*;

impl Session {
    pub(super) fn open_attention(&mut self) {
        if self.model.is_none() || self.data.is_none() {
            self.set_status(Level::Warn, "model and data are still loading");
            return;
        }
        if let Some(why) = self.foreign_attention() {
            // Stay on the heatmap: a screen left blank would take the reason with it.
            return self.set_status(Level::Warn, why);
        }
        // The attention component takes its heads from the selection or the cursor when it
        // opens (`screens::attention`).
        self.screen = Screen::Attention;
    }

    /// Why the attention of the result on screen cannot be shown: it is of another model than
    /// the loaded one, whose attention is all the worker can compute.
    fn foreign_attention(&self) -> Option<String> {
        let slot = self.current().filter(|s| self.is_foreign(s))?;
        let path = match &slot.state {
            RunState::Opened(p) => Some(p.as_path()),
            _ => None,
        };
        let model = record_model_name(slot.record.as_ref()?, path);
        let loaded = self
            .model
            .as_ref()
            .map_or("no model".into(), |m| short_model_name(&m.label));
        Some(format!(
            "this result is of {model} and the loaded model is {loaded}: load {model} in the setup (m) to see its attention"
        ))
    }
}
