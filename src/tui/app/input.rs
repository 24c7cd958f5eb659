//! Text prompts edit as in readline: a pre-filled value is replaced by typing; ←/→, Home/End,
//! Backspace, Delete, Ctrl-A/E/U/W/K.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::Input;

impl Input {
    pub fn new(purpose: super::InputPurpose, label: &str, initial: String) -> Input {
        Input {
            purpose,
            label: label.to_string(),
            cursor: initial.chars().count(),
            fresh: !initial.is_empty(),
            buffer: initial,
            error: None,
        }
    }

    fn byte(&self, char_idx: usize) -> usize {
        self.buffer
            .char_indices()
            .nth(char_idx)
            .map_or(self.buffer.len(), |(b, _)| b)
    }

    fn len(&self) -> usize {
        self.buffer.chars().count()
    }

    /// Applies an editing key; returns false for keys that are not editing keys.
    pub fn edit(&mut self, key: KeyEvent) -> bool {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let fresh = std::mem::take(&mut self.fresh);
        match key.code {
            KeyCode::Char('a') if ctrl => self.cursor = 0,
            KeyCode::Char('e') if ctrl => self.cursor = self.len(),
            KeyCode::Char('u') if ctrl => {
                let b = self.byte(self.cursor);
                self.buffer.drain(..b);
                self.cursor = 0;
            }
            KeyCode::Char('k') if ctrl => {
                let b = self.byte(self.cursor);
                self.buffer.truncate(b);
            }
            KeyCode::Char('w') if ctrl => {
                let chars: Vec<char> = self.buffer.chars().collect();
                let mut start = self.cursor;
                while start > 0 && chars[start - 1] == ' ' {
                    start -= 1;
                }
                while start > 0 && chars[start - 1] != ' ' {
                    start -= 1;
                }
                let (a, b) = (self.byte(start), self.byte(self.cursor));
                self.buffer.drain(a..b);
                self.cursor = start;
            }
            KeyCode::Char(ch) if !ctrl => {
                if fresh {
                    self.buffer.clear();
                    self.cursor = 0;
                }
                let b = self.byte(self.cursor);
                self.buffer.insert(b, ch);
                self.cursor += 1;
            }
            KeyCode::Left => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Right => self.cursor = (self.cursor + 1).min(self.len()),
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = self.len(),
            KeyCode::Backspace if self.cursor > 0 => {
                let b = self.byte(self.cursor - 1);
                self.buffer.remove(b);
                self.cursor -= 1;
            }
            KeyCode::Delete if self.cursor < self.len() => {
                let b = self.byte(self.cursor);
                self.buffer.remove(b);
            }
            KeyCode::Backspace | KeyCode::Delete => {}
            _ => {
                self.fresh = fresh;
                return false;
            }
        }
        self.error = None;
        true
    }
}
