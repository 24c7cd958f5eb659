//! The terminal explorer: a ratatui + crossterm app on tokio. The model lives on the worker
//! thread; this loop only moves keys, mouse events and worker events into the `App` state and
//! redraws, so the UI stays responsive while a sweep runs.
//!
//! Keys flow one way: key → action → state → draw. Each screen has ONE key table
//! (`Binding { label, what, keys: [(KeyCode, Action)] }`); the `?` help prints it
//! (`app::help_table`) and the dispatch looks the key up in it (`keymap::lookup`), so the two
//! cannot drift (`tests/tui_structure.rs` checks that every key reaches its own action and
//! that the help lines are the table's). The action then changes the state, which may queue
//! `Effect`s for the loop (work for the worker, quit); drawing only reads the state.
//!
//! Layers, lowest first (`tests/layering.rs`): `keymap`, `color` and `layout` (where things
//! go on screen, computed before drawing), then `app` (the state: the shared `Session`, and
//! the screens' components in `app/screens/`, each with its state, key table, update and
//! draw, listed once in `screens::registry!`), then `view` (the frame: title line, status bar,
//! overlays, and the screens not yet moved into components). The state never uses the view.
//!
//! How to add a screen: one file `app/screens/NAME.rs` with its state struct, its `Action`
//! enum and key table, and `impl Component` (update, draw, and on_open / on_worker_event if
//! it needs them), plus one line in `screens::registry!`. Keep every function under 80 lines
//! (the structure test scans src/tui).

pub mod app;
pub mod color;
pub mod keymap;
pub mod layout;
pub mod view;

use std::io::stdout;
use std::time::Duration;

use crossterm::event::{DisableMouseCapture, EnableMouseCapture, Event as TermEvent, EventStream};
use crossterm::execute;
use futures::StreamExt;

use crate::worker::Worker;
use app::{App, Effect, Setup};

/// Puts the terminal back: mouse capture off, raw mode off, main screen.
fn restore_terminal() {
    let _ = execute!(stdout(), DisableMouseCapture);
    ratatui::restore();
}

/// What the caller (`cli/tui.rs`, which holds the signal handling: this layer does not know
/// signals) lends the loop.
#[derive(Clone, Copy)]
pub struct SignalHooks {
    /// Whether a signal asked the explorer to end.
    pub stopped: fn() -> bool,
    /// Runs its argument (key handling, which may write files) with a second signal's ending
    /// of the process put off until it returns, so that no write is left half done.
    pub while_saving: fn(&mut dyn FnMut()),
}

/// How long a signal waits for the worker's cancelled jobs to hand back what they finished.
const CANCEL_GRACE: Duration = Duration::from_secs(10);

/// Runs the explorer until the user quits, or until `signals.stopped()` says a signal asked it
/// to end: then the worker's jobs are cancelled (their finished part kept), what is unsaved
/// is saved (`App::save_before_exit`), the terminal is put back and what was saved is printed
/// on stderr. Returns whether it was stopped that way.
pub fn run(setup: Setup, signals: SignalHooks) -> anyhow::Result<bool> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(setup, signals))
}

async fn run_async(setup: Setup, signals: SignalHooks) -> anyhow::Result<bool> {
    // Restore the terminal before any panic message is printed.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous(info);
    }));
    let mut terminal = ratatui::try_init()?;
    let _ = execute!(stdout(), EnableMouseCapture);
    let result = event_loop(&mut terminal, setup, signals).await;
    restore_terminal();
    let farewell = result?;
    if let Some(msg) = &farewell {
        eprintln!("headhunt: stopped by a signal; {msg}");
    }
    Ok(farewell.is_some())
}

/// The loop; `Some(what was saved)` when a signal ended it.
async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    setup: Setup,
    signals: SignalHooks,
) -> anyhow::Result<Option<String>> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let worker = Worker::spawn(tx);
    let mut app = App::new(setup);
    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        for e in app.take_effects() {
            match e {
                Effect::Submit(id, job) => worker.submit_as(id, job),
                Effect::Cancel => worker.cancel(),
                Effect::Quit => {}
            }
        }
        if app.quit {
            break;
        }
        if (signals.stopped)() {
            return Ok(Some(stop(&mut app, &worker, &mut rx, signals).await));
        }
        let size = terminal.size()?;
        app.viewport = (size.width, size.height);
        terminal.draw(|f| view::draw(f, &app))?;
        // For the end-to-end test of the panic path: the terminal must come back usable.
        if std::env::var_os("HEADHUNT_TEST_PANIC").is_some() {
            panic!("HEADHUNT_TEST_PANIC is set: panicking after the first frame");
        }
        tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(TermEvent::Key(k))) => (signals.while_saving)(&mut || app.on_key(k)),
                Some(Ok(TermEvent::Mouse(m))) => app.on_mouse(m),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => break,
            },
            Some(we) = rx.recv() => {
                app.on_worker(we);
                while let Ok(we) = rx.try_recv() {
                    app.on_worker(we);
                }
            },
            _ = tick.tick() => app.on_tick(),
        }
    }
    Ok(None)
}

/// A signal ended the explorer: the worker's jobs are cancelled and, for at most
/// `CANCEL_GRACE`, their last events (a sweep's partial record, an analysis' partial report)
/// are taken in; then everything unsaved is saved, with a second signal put off until the
/// writes are done. Returns what the status line says was saved.
async fn stop(
    app: &mut App,
    worker: &Worker,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<crate::worker::Event>,
    signals: SignalHooks,
) -> String {
    if app.busy() {
        worker.cancel();
        let deadline = tokio::time::sleep(CANCEL_GRACE);
        tokio::pin!(deadline);
        while app.busy() {
            tokio::select! {
                we = rx.recv() => match we {
                    // The worker clears the flag when it starts a queued job: ask again.
                    Some(we) => {
                        app.on_worker(we);
                        worker.cancel();
                    }
                    None => break,
                },
                _ = &mut deadline => break,
            }
        }
    }
    (signals.while_saving)(&mut || app.save_before_exit());
    let _ = app.take_effects();
    let saved = &app.status.1;
    if saved.is_empty() {
        "nothing was unsaved".to_string()
    } else {
        saved.clone()
    }
}
