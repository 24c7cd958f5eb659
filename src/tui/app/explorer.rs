//! The explorer's state as the loop and the tests hold it: the shared [`Session`] and the
//! screens' components ([`Screens`], the registry). Keys, mouse and worker events come in
//! here; a key goes first to what sits over every screen (the quit prompt, a text prompt, the
//! help), then to the screen on show: its component, or the session's code for a screen that
//! is not a component yet.

use std::ops::{Deref, DerefMut};

use crossterm::event::KeyEvent;

use super::{Screen, Screens, Session, Setup};
use crate::worker::Event;

pub struct App {
    pub session: Session,
    pub screens: Screens,
}

/// The app reads as its session (`app.status`, `app.runs`, `app.set_status(..)`), so that
/// what every screen shares is named one way everywhere.
impl Deref for App {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.session
    }
}

impl DerefMut for App {
    fn deref_mut(&mut self) -> &mut Session {
        &mut self.session
    }
}

impl App {
    pub fn new(setup: Setup) -> Self {
        let mut app = App {
            session: Session::new(setup),
            screens: Screens::default(),
        };
        let paths = app.session.setup.side_by_side.clone();
        if !paths.is_empty() {
            app.screens.side.open(&paths, &mut app.session);
        }
        app.opened(None);
        app
    }

    pub fn on_key(&mut self, key: KeyEvent) {
        let before = self.session.screen;
        if self.session.on_key_first(key) {
            match self.screens.get_mut(before) {
                Some(c) => c.on_key(key, &mut self.session),
                None => self.session.on_legacy_screen_key(key),
            }
        }
        self.opened(Some(before));
    }

    pub fn on_worker(&mut self, e: Event) {
        let before = self.session.screen;
        for c in self.screens.all_mut() {
            c.on_worker_event(&e, &mut self.session);
        }
        self.session.on_worker(e);
        self.opened(Some(before));
    }

    pub fn on_mouse(&mut self, m: crossterm::event::MouseEvent) {
        let before = self.session.screen;
        self.session.on_mouse(m);
        self.opened(Some(before));
    }

    /// Tells the component on show that it was just opened, when the screen changed.
    fn opened(&mut self, before: Option<Screen>) {
        let now = self.session.screen;
        if before != Some(now) {
            if let Some(c) = self.screens.get_mut(now) {
                c.on_open(&mut self.session);
            }
        }
    }

    /// Draws the screen's component, if the screen on show is one; false for a legacy one.
    pub fn draw_component(&self, frame: &mut ratatui::Frame, area: ratatui::layout::Rect) -> bool {
        match self.screens.get(self.session.screen) {
            Some(c) => {
                c.draw(&self.session, frame, area);
                true
            }
            None => false,
        }
    }
}
