// Tensor ops allocate a fresh buffer each; glibc's malloc returns large ones to the OS and
// page-faults them back in on every op.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // candle asks for the thread count on every parallel op; without RAYON_NUM_THREADS it
    // re-reads the machine's CPU and cgroup files each time, which dominates small models.
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    headhunt::cli::signals::install();
    quiet_print_failures();
    std::process::exit(headhunt::cli::main());
}

/// `println!` panics when stdout is gone (`| head`, a closed ssh session) or full
/// (`>/dev/full`). Commands that compute something save it before they print, so such a
/// panic only means the reader left: end quietly with the shell's status for it (141, as if
/// killed by SIGPIPE) or, for another write error, a one-line error and 2. No backtrace.
fn quiet_print_failures() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to std") {
            if msg.contains("Broken pipe") || msg.contains("os error 32") {
                std::process::exit(141);
            }
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "error: {msg}");
            std::process::exit(2);
        }
        default(info);
    }));
}
