//! The attention screen's state (which heads, run, prompts, query row; the patterns the
//! worker sent) and what its actions do to it.

use super::*;
use crate::tui::keymap::{self, AttentionAction};

/// The attention view's settings and data.
pub struct AttentionView {
    pub heads: Vec<(usize, usize)>,
    pub current: usize,
    pub run: RunKind,
    /// Mean over the first n prompts, or one prompt.
    pub prompts: PromptChoice,
    /// Query row shown in the bar view (default: the last position).
    pub query: Option<usize>,
    pub bars: bool,
    pub tokens: Vec<String>,
    pub patterns: Vec<Vec<Vec<f32>>>,
    pub waiting: Option<JobId>,
}

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
        if let Some(action) = keymap::lookup(keymap::ATTENTION, key.code) {
            self.update_attention(action);
        }
    }

    /// Does what an attention action asks; a change of run or prompts asks for the patterns.
    pub fn update_attention(&mut self, action: AttentionAction) {
        use AttentionAction as A;
        let len = self.attention.tokens.len();
        let n_heads = self.attention.heads.len();
        match action {
            A::Back => self.screen = Screen::Heatmap,
            A::Help => self.open_help(),
            A::SwitchRun => {
                self.attention.run = match self.attention.run {
                    RunKind::Normal => RunKind::Contrast,
                    RunKind::Contrast => RunKind::Normal,
                };
                self.request_attention();
            }
            A::MorePrompts | A::FewerPrompts | A::OnePrompt | A::MeanPrompts => {
                self.attention.prompts = self.next_prompts(action);
                self.request_attention();
            }
            A::Bars => self.attention.bars = !self.attention.bars,
            A::Figure => self.write_attention_figure(),
            A::QueryUp if len > 0 => {
                let q = self.attention.query.unwrap_or(len - 1);
                self.attention.query = Some(q.saturating_sub(1));
            }
            A::QueryDown if len > 0 => {
                let q = self.attention.query.unwrap_or(len - 1);
                self.attention.query = Some((q + 1).min(len - 1));
            }
            A::NextHead if n_heads > 0 => {
                self.attention.current = (self.attention.current + 1) % n_heads;
            }
            A::PreviousHead if n_heads > 0 => {
                self.attention.current = (self.attention.current + n_heads - 1) % n_heads;
            }
            A::QueryUp | A::QueryDown | A::NextHead | A::PreviousHead => {}
        }
    }

    /// The prompts the attention view shows after a prompts action: `+`/`-` step the mean
    /// (from one prompt: the mean of 1), `p` steps through single prompts, `P` is the mean of 4.
    fn next_prompts(&self, action: AttentionAction) -> PromptChoice {
        use AttentionAction as A;
        let n_prompts = self.data.as_ref().map_or(1, |d| d.info.n_examples);
        match (action, self.attention.prompts) {
            (A::MorePrompts, PromptChoice::Mean(n)) => PromptChoice::Mean((n + 1).min(n_prompts)),
            (A::FewerPrompts, PromptChoice::Mean(n)) => {
                PromptChoice::Mean(n.saturating_sub(1).max(1))
            }
            (A::MorePrompts | A::FewerPrompts, PromptChoice::One(_)) => PromptChoice::Mean(1),
            (A::OnePrompt, PromptChoice::One(i)) => PromptChoice::One((i + 1) % n_prompts.max(1)),
            (A::OnePrompt, PromptChoice::Mean(_)) => PromptChoice::One(0),
            (A::MeanPrompts, _) => PromptChoice::Mean(4.min(n_prompts)),
            (_, p) => p,
        }
    }
}
