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
    std::process::exit(headhunt::cli::main());
}
