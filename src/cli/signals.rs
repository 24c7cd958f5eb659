//! SIGINT, SIGTERM and SIGHUP for every command. A command that can save what it computed
//! (`patch` during its sweep) says so with `Honour`: the first signal then asks it to stop
//! after the current step and save, a second one ends the process at once. Any other time a
//! signal ends the process at once, as the default action would, with the exit status a shell
//! gives a killed process (128 + the signal: 130, 143, 129). While a file is being written the
//! end is put off until the write is done (`results::write::end_or_defer`, which every write
//! goes through), so no signal leaves a temporary file behind.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// The first signal received while honoured (0: none).
static RECEIVED: AtomicI32 = AtomicI32::new(0);
static HONOURED: AtomicBool = AtomicBool::new(false);
/// Set with `RECEIVED`, for loops that take a stop flag (the greedy search).
static STOP: AtomicBool = AtomicBool::new(false);

/// Starts the thread that receives the signals. Called first thing in `main`.
pub fn install() {
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return;
    };
    std::thread::spawn(move || {
        for sig in signals.forever() {
            on_signal(sig);
        }
    });
}

fn on_signal(sig: i32) {
    let first = HONOURED.load(Ordering::SeqCst)
        && RECEIVED
            .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
    if first {
        STOP.store(true, Ordering::SeqCst);
        let again = if sig == SIGINT { "Ctrl-C" } else { "signal" };
        let _ = writeln!(
            std::io::stderr(),
            "\n{}: finishing the current step, then saving what is done ({again} again to quit now)",
            name(sig)
        );
        return;
    }
    crate::results::write::end_or_defer(128 + sig);
}

fn name(sig: i32) -> &'static str {
    match sig {
        SIGINT => "interrupted",
        SIGTERM => "terminated (SIGTERM)",
        SIGHUP => "hung up (SIGHUP)",
        _ => "signal",
    }
}

/// The signal that asked the honouring command to stop, if any.
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// A flag that a honoured signal sets: for work that polls an `AtomicBool`.
pub fn stop_flag() -> &'static AtomicBool {
    &STOP
}

/// The exit status for a run stopped by `sig`.
pub fn exit_code(sig: i32) -> i32 {
    128 + sig
}

/// While alive, signals ask the command to stop instead of ending the process.
pub struct Honour;

impl Honour {
    pub fn start() -> Self {
        HONOURED.store(true, Ordering::SeqCst);
        Honour
    }
}

impl Drop for Honour {
    fn drop(&mut self) {
        HONOURED.store(false, Ordering::SeqCst);
    }
}

/// Runs `f` (file writes) with any ending signal put off until it returns.
pub fn while_saving<T>(f: impl FnOnce() -> T) -> T {
    let _writing = crate::results::write::Writing::start();
    f()
}
