//! The explorer's screens as components, and their one registry.
//!
//! A component is one full screen: its own state, its key table (the one `?` prints and the
//! dispatch reads), how each of its actions changes it and the shared [`Session`], what it
//! takes from the worker's events, and how it is drawn. It lives in one file of this folder;
//! [`registry!`] below lists each component once, which gives it its `Screen` variant, its
//! field in [`Screens`], its key dispatch, its help and its drawing. A component draws with
//! `ratatui` and the helpers of `tui::layout` only, never with `tui::view`
//! (`tests/layering.rs`).
//!
//! Screens not moved here yet keep their state in the session and their code in
//! `app/NAME.rs` and `view/NAME.rs`; the registry lists them as `legacy`.

use crossterm::event::KeyEvent;
use ratatui::layout::Rect;
use ratatui::Frame;

use super::Session;
use crate::tui::keymap::{self, Binding};
use crate::worker::Event;

pub mod attention;
pub mod runs;
pub mod side;

/// One screen of the explorer. `Action` is what its keys mean (one enum per screen), `KEYS`
/// its key table; the rest of the explorer reaches it through the registry only.
pub trait Component: Default {
    type Action: Copy + 'static;
    /// The help's title for this screen.
    const TITLE: &'static str;
    /// The screen's key table: the dispatch looks keys up in it and `?` prints it.
    const KEYS: &'static [Binding<Self::Action>];

    /// Does what `action` asks: changes this screen and the session (which queues the
    /// `Effect`s for the loop, such as jobs for the worker).
    fn update(&mut self, action: Self::Action, session: &mut Session);

    /// The screen is being shown (it was not on the previous frame): a chance to start
    /// from the session's state (and to ask the worker for what it shows).
    fn on_open(&mut self, _session: &mut Session) {}

    /// A worker event, as it arrives (before the session takes it in: `Session::on_worker`).
    fn on_worker_event(&mut self, _event: &Event, _session: &mut Session) {}

    /// Draws the screen in `area` (the space between the title line and the status bar).
    fn draw(&self, session: &Session, frame: &mut Frame, area: Rect);

    /// The help's lines: the key table's, in order.
    fn help() -> Vec<(&'static str, &'static str)> {
        keymap::help_lines(Self::KEYS)
    }
}

/// A component as the registry holds it (the typed `Action` erased): a key goes through the
/// component's own table to its `update`.
pub trait AnyScreen {
    fn on_key(&mut self, key: KeyEvent, session: &mut Session);
    fn on_open(&mut self, session: &mut Session);
    fn on_worker_event(&mut self, event: &Event, session: &mut Session);
    fn draw(&self, session: &Session, frame: &mut Frame, area: Rect);
}

impl<C: Component> AnyScreen for C {
    fn on_key(&mut self, key: KeyEvent, session: &mut Session) {
        if let Some(action) = keymap::lookup(C::KEYS, key.code) {
            self.update(action, session);
        }
    }

    fn on_open(&mut self, session: &mut Session) {
        Component::on_open(self, session)
    }

    fn on_worker_event(&mut self, event: &Event, session: &mut Session) {
        Component::on_worker_event(self, event, session)
    }

    fn draw(&self, session: &Session, frame: &mut Frame, area: Rect) {
        Component::draw(self, session, frame, area)
    }
}

/// Declares the screens: each component once (`Variant => field: Type`), then the screens
/// whose code is not a component yet. It defines `Screen`, `Screens` (one field per
/// component) and the lookups by `Screen`, so that a component is registered in one line.
macro_rules! registry {
    (
        components { $($(#[$cm:meta])* $cv:ident => $field:ident: $ty:ty,)* }
        legacy { $($(#[$lm:meta])* $lv:ident,)* }
    ) => {
        /// Which full-screen view is shown.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Screen {
            $($(#[$lm])* $lv,)*
            $($(#[$cm])* $cv,)*
        }

        /// The components' states, one field per registered screen.
        #[derive(Default)]
        pub struct Screens {
            $(pub $field: $ty,)*
        }

        impl Screens {
            /// The component of `screen`, if it is one.
            pub fn get(&self, screen: Screen) -> Option<&dyn AnyScreen> {
                match screen {
                    $(Screen::$cv => Some(&self.$field),)*
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }

            /// The component of `screen`, to change, if it is one.
            pub fn get_mut(&mut self, screen: Screen) -> Option<&mut dyn AnyScreen> {
                match screen {
                    $(Screen::$cv => Some(&mut self.$field),)*
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }

            /// Every component, to hand each a worker event.
            pub fn all_mut(&mut self) -> Vec<&mut dyn AnyScreen> {
                vec![$(&mut self.$field as &mut dyn AnyScreen,)*]
            }

            /// The help's title and lines of a component's screen, from its key table.
            pub fn help(screen: Screen) -> Option<(&'static str, Vec<(&'static str, &'static str)>)> {
                match screen {
                    $(Screen::$cv => Some((<$ty as Component>::TITLE, <$ty as Component>::help())),)*
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }
        }
    };
}

registry! {
    components {
        /// The session's runs (`L`).
        Attention => attention: attention::AttentionView,
        Runs => runs: runs::RunsScreen,
        /// Results of any shapes side by side (`headhunt open A B …`).
        Side => side: side::SideView,
    }
    legacy {
        Heatmap,
        Setup,
        Gallery,
        Compare,
        Circuit,
    }
}
