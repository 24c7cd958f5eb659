//! End to end: the built binary in a real terminal (tmux), driven with send-keys and read with
//! capture-pane: run a sweep, drill into a head, save, quit; then check the saved file against
//! TransformerLens' numbers for that receiver.

mod common;

use candle_core::Device;
use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    session: String,
}

impl Tmux {
    fn start(tag: &str, cmd: &str, width: u16, height: u16) -> Tmux {
        let have = Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            have,
            "tmux is needed for this test (.ci/run installs it: apt-get install tmux)"
        );
        let session = format!("hh-e2e-{}-{tag}", std::process::id());
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &session,
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
            ])
            .arg(cmd)
            .env("COLORTERM", "truecolor")
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux new-session failed");
        Tmux { session }
    }

    fn capture(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    fn send(&self, keys: &[&str]) {
        for k in keys {
            let ok = Command::new("tmux")
                .args(["send-keys", "-t", &self.session, k])
                .status()
                .unwrap()
                .success();
            assert!(ok, "send-keys {k}");
            // Separate keys so that Escape is not read as Alt+next key.
            std::thread::sleep(Duration::from_millis(120));
        }
    }

    /// As soon as the screen shows `needle`, settled or not (a running sweep's screen changes
    /// every tick, so it never settles).
    fn wait_until(&self, needle: &str, secs: u64) {
        let start = Instant::now();
        while !self.capture().contains(needle) {
            if start.elapsed() > Duration::from_secs(secs) {
                panic!(
                    "timed out waiting for {needle:?}; screen:\n{}",
                    self.capture()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The screen once it shows `needle` and has stopped changing: a capture can land in
    /// the middle of a frame being written (seen under load), so it must equal the next one.
    fn wait_for(&self, needle: &str, secs: u64) -> String {
        let start = Instant::now();
        loop {
            let screen = self.capture();
            if screen.contains(needle) {
                std::thread::sleep(Duration::from_millis(150));
                if self.capture() == screen {
                    return screen;
                }
                continue;
            }
            if start.elapsed() > Duration::from_secs(secs) {
                panic!("timed out waiting for {needle:?}; screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
}

#[test]
fn run_drill_save_and_quit_in_a_real_terminal() {
    let results = temp_dir("tmux");
    let fx = fixture("tiny-gemma2");
    let cmd = format!(
        "{} tui --model {} --data {} --results {}; echo EXIT=$?; sleep 60",
        bin().display(),
        fx.display(),
        fx.join("addition.jsonl").display(),
        results.display()
    );
    let t = Tmux::start("drill", &cmd, 100, 30);
    t.wait_for("16 senders (layers 0..=3 × 4 heads)", 30);
    t.wait_for("baselines only", 30);
    t.send(&["r"]);
    let screen = t.wait_for("done: resid_post 3", 30);
    // The fixture's baselines are 0.37 apart: as on the command line, the raw effects.
    assert!(screen.contains("largest |patched − LD_c|:"), "{screen}");
    // The cursor starts on layer 3, head 0: move to head 1 and drill into its value input.
    t.send(&["j", "Enter"]);
    let screen = t.wait_for("done: 3.1.v", 30);
    assert!(
        screen.contains("resid_post 3 → 3.1.v"),
        "breadcrumbs: {screen}"
    );
    // Attention view of a head, then back.
    t.send(&["h", "a"]);
    t.wait_for("Attention H2.1", 10);
    t.send(&["Escape"]);
    t.wait_for("Enter drills into v", 10);
    t.send(&["s"]);
    let screen = t.wait_for("saved ", 10);
    // F: the figure of the drill-down, beside the saved run.
    t.send(&["F"]);
    t.wait_for("figure ", 10);
    // Help, then quit.
    t.send(&["?"]);
    t.wait_for("keys: heatmap", 10);
    t.send(&["Escape"]);
    // The resid_post run is not saved (it is off the breadcrumb trail's end): q asks first,
    // naming it.
    t.send(&["q"]);
    t.wait_for("• run resid_post 3 (finished, 4 rows)", 10);
    t.send(&["q"]);
    t.wait_for("EXIT=0", 10);

    let files: Vec<_> = std::fs::read_dir(&results)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(files.len(), 1, "one saved result: {files:?}\n{screen}");
    for ext in ["svg", "png"] {
        let fig = files[0].with_extension(ext);
        assert!(fig.is_file(), "{} written by F", fig.display());
    }
    let rec = headhunt::results::RunRecord::load(&files[0]).unwrap();
    assert_eq!(rec.receiver_label, "3.1.v");
    assert!(rec.complete);
    // Same numbers as TransformerLens for this receiver (fixture key head_v_begin0).
    let exp =
        candle_core::safetensors::load(fx.join("expected_path_patching.safetensors"), &Device::Cpu)
            .unwrap();
    let want: Vec<f32> = exp["head_v_begin0.patched_logit_diff"]
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    for l in 0..3 {
        for h in 0..4 {
            let got = rec.patched(l, h).unwrap();
            assert!(
                (got - want[l * 4 + h] as f64).abs() < 1e-5,
                "[{l}][{h}] {got} vs {}",
                want[l * 4 + h]
            );
        }
    }
}

#[test]
fn works_in_an_80x24_terminal_and_survives_resizes() {
    let results = temp_dir("tmux80");
    let fx = fixture("tiny-llama");
    let cmd = format!(
        "{} tui --model {} --data {} --results {}; echo EXIT=$?; sleep 60",
        bin().display(),
        fx.display(),
        fx.join("addition.jsonl").display(),
        results.display()
    );
    let t = Tmux::start("small", &cmd, 80, 24);
    t.wait_for("32 senders (layers 0..=3 × 8 heads)", 30);
    t.send(&["r"]);
    let screen = t.wait_for("done: resid_post 3", 30);
    assert!(
        screen.lines().count() <= 24 && screen.lines().all(|l| l.chars().count() <= 80),
        "{screen}"
    );
    for (w, h) in [(30, 8), (12, 4), (120, 40), (80, 24)] {
        let ok = Command::new("tmux")
            .args([
                "resize-window",
                "-t",
                &t.session,
                "-x",
                &w.to_string(),
                "-y",
                &h.to_string(),
            ])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        std::thread::sleep(Duration::from_millis(300));
    }
    let screen = t.wait_for("resid_post 3", 10);
    assert!(
        !screen.contains("EXIT="),
        "still running after resizes: {screen}"
    );
    t.send(&["q", "q"]);
    t.wait_for("EXIT=0", 10);
}

/// A panic restores the terminal (raw mode off, main screen) before its message prints.
#[test]
fn a_panic_restores_the_terminal() {
    let fx = fixture("tiny-qwen2");
    let cmd = format!(
        "RUST_BACKTRACE=0 HEADHUNT_TEST_PANIC=1 {} tui --model {} --data {}; stty -a | grep -o -- '-*icanon' | head -1 | sed 's/^/MODE=/'; sleep 60",
        bin().display(),
        fx.display(),
        fx.join("addition.jsonl").display()
    );
    let t = Tmux::start("panic", &cmd, 100, 30);
    let screen = t.wait_for("MODE=", 20);
    assert!(
        screen.contains("MODE=icanon"),
        "canonical mode is back: {screen}"
    );
    assert!(
        screen.contains("HEADHUNT_TEST_PANIC is set"),
        "the panic message is visible: {screen}"
    );
}

#[test]
fn open_a_paper_result_read_its_cells_and_esc_does_not_quit() {
    let fx = fixture("tiny-gemma2");
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/paper/results/gemma_2_9b/resid_post_41.json");
    let cmd = format!(
        "{} open {} --model {} --data {} --results {}; echo EXIT=$?; sleep 60",
        bin().display(),
        file.display(),
        fx.display(),
        fx.join("addition.jsonl").display(),
        temp_dir("tmux-open").display()
    );
    let t = Tmux::start("open", &cmd, 120, 40);
    let screen = t.wait_for("H39.7  (layer 39, head 7)", 30);
    assert!(
        screen.lines().next().unwrap().contains("gemma_2_9b"),
        "{screen}"
    );
    assert!(screen.contains("r        -27.08%"), "{screen}");
    // Layers as rows, three-character numbers: row 39 has -27 at head 7, row 41 +17 at head 4.
    let row = |l: &str| {
        screen
            .lines()
            .find(|s| s.trim_start().starts_with(l) && s.contains('│'))
            .unwrap_or_else(|| panic!("row {l}: {screen}"))
            .to_string()
    };
    assert!(row("39 ").contains("-27"), "{screen}");
    assert!(row("41 ").contains(" 17"), "{screen}");
    t.send(&["Escape", "Escape"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!t.capture().contains("EXIT="), "Esc quit");
    t.send(&["Enter"]);
    t.wait_for("ind_h39_7_v", 10);
    t.send(&["q"]);
    t.wait_for("EXIT=0", 10);
}

#[test]
fn a_bad_model_path_in_the_setup_shows_its_real_error() {
    let fx = fixture("tiny-gemma2");
    let cmd = format!(
        "{} tui --model {} --data {} --results {}; echo EXIT=$?; sleep 60",
        bin().display(),
        fx.display(),
        fx.join("addition.jsonl").display(),
        temp_dir("tmux-badmodel").display()
    );
    let t = Tmux::start("badmodel", &cmd, 120, 40);
    t.wait_for("r runs it", 30);
    t.send(&["m", "Enter", "/no/such/model", "Enter", "L"]);
    let screen = t.wait_for("could not load: ", 30);
    assert!(screen.contains("/no/such/model"), "{screen}");
    assert!(!screen.contains("no model loaded"), "{screen}");
    t.wait_for("the previous model and data stay loaded", 30);
    t.send(&["Escape"]);
    t.wait_for("r runs it", 10);
    t.send(&["q"]);
    t.wait_for("EXIT=0", 10);
}

/// `headhunt open` of a groups file: applied to the loaded model's heatmap once it is in; `D`
/// turns its selection into one receiver, which runs and is named whole in the breadcrumbs.
#[test]
fn open_a_groups_file_and_run_its_selection_as_one_receiver() {
    let fx = fixture("tiny-gemma2");
    let dir = temp_dir("tmux-groups");
    let file = dir.join("groups-tiny.json");
    headhunt::results::groups::GroupsFile::new(
        &fx.display().to_string(),
        (4, 4),
        vec![headhunt::results::HeadGroup {
            name: "mover".into(),
            heads: vec![(3, 1)],
        }],
        vec![(2, 2), (3, 1)],
    )
    .save(&file, false)
    .unwrap();
    let cmd = format!(
        "{} open {} --model {} --data {} --results {}; echo EXIT=$?; sleep 60",
        bin().display(),
        file.display(),
        fx.display(),
        fx.join("addition.jsonl").display(),
        dir.display()
    );
    let t = Tmux::start("groups", &cmd, 120, 40);
    // The status line may be the baselines' warning by now: the selection itself shows that
    // the file was applied (D opens the prompt with it).
    t.wait_for("r runs it", 30);
    t.send(&["D"]);
    t.wait_for("2.2.v 3.1.v", 10);
    t.send(&["Enter"]);
    let screen = t.wait_for("done: 2.2.v + 3.1.v", 60);
    assert!(
        screen.lines().next().unwrap().contains("2.2.v + 3.1.v"),
        "{screen}"
    );
    t.send(&["q", "q"]);
    t.wait_for("EXIT=0", 10);
}

/// Sends SIGTERM to the explorer whose pid is in `pid_file`, waits for its exit (143, and
/// "stopped by a signal; saved …" on the screen), and returns the screen and the JSON files
/// in `results`.
fn sigterm_and_saved(
    t: &Tmux,
    pid_file: &std::path::Path,
    results: &std::path::Path,
) -> (String, Vec<std::path::PathBuf>) {
    let pid = std::fs::read_to_string(pid_file).unwrap();
    let ok = Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -TERM {pid}");
    let screen = t.wait_for("EXIT=143", 30);
    assert!(screen.contains("stopped by a signal; saved "), "{screen}");
    let files = std::fs::read_dir(results)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    (screen, files)
}

#[test]
fn ctrl_c_asks_and_sigterm_saves_the_unsaved_run() {
    let results = temp_dir("tmux-signal");
    let fx = fixture("tiny-gemma2");
    let pid_file = results.join("pid");
    // `exec` makes the explorer the process whose id is written, so that it gets the signal.
    let cmd = format!(
        "sh -c 'echo $$ > {}; exec {} tui --model {} --data {} --results {}'; echo EXIT=$?; sleep 60",
        pid_file.display(),
        bin().display(),
        fx.display(),
        fx.join("addition.jsonl").display(),
        results.display()
    );
    let t = Tmux::start("signal", &cmd, 100, 30);
    t.wait_for("baselines only", 30);
    t.send(&["r"]);
    t.wait_for("done: resid_post 3", 30);
    // Ctrl-C is `q`: it asks first, and another key stays.
    t.send(&["C-c"]);
    t.wait_for("1 not saved: a saves all and quits, q quits", 10);
    t.send(&["j"]);
    let (screen, files) = sigterm_and_saved(&t, &pid_file, &results);
    assert_eq!(
        files.len(),
        1,
        "the run saved on SIGTERM: {files:?}\n{screen}"
    );
    let rec = headhunt::results::RunRecord::load(&files[0]).unwrap();
    assert_eq!(rec.receiver_label, "resid_post 3");
}

/// SIGTERM while a sweep runs (the literal algorithm, one example per batch: about 0.5 s per
/// sender layer of the demo model) keeps what it finished, as `patch` does: the explorer
/// cancels the sweep, waits for its partial record, saves it marked partial and exits 143.
#[test]
fn sigterm_during_a_sweep_saves_its_finished_rows() {
    let results = temp_dir("tmux-signal-running");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let pid_file = results.join("pid");
    let cmd = format!(
        "sh -c 'echo $$ > {}; exec {} tui --model {} --data {} --examples 100 --algorithm reference --batch-size 1 --results {}'; echo EXIT=$?; sleep 60",
        pid_file.display(),
        bin().display(),
        root.join("assets/demo-model").display(),
        root.join("data/paper/addition/setting1/addition_nmax9_offset1.jsonl")
            .display(),
        results.display()
    );
    let t = Tmux::start("signal-running", &cmd, 100, 30);
    t.wait_for("r runs", 60);
    t.send(&["r"]);
    t.wait_until("running 1/3", 30);
    let (screen, files) = sigterm_and_saved(&t, &pid_file, &results);
    assert_eq!(files.len(), 1, "{files:?}\n{screen}");
    let rec = headhunt::results::RunRecord::load(&files[0]).unwrap();
    assert!(!rec.complete, "{:?}", rec.rows_computed);
    assert!(
        (1..3).contains(&rec.rows_computed.len()),
        "the finished rows, not all three: {:?}",
        rec.rows_computed
    );
}

/// `headhunt open A B C D` with the paper's four final-layer results: the four models side by
/// side at 120×40, each on its own largest effect; Tab and k move the second panel's cursor
/// only; q quits.
#[test]
fn open_the_four_paper_models_side_by_side() {
    let fx = fixture("tiny-gemma2");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/paper/results");
    let files: Vec<String> = [
        "gemma_2_9b/resid_post_41.json",
        "llama_2_7b/resid_post_31.json",
        "llama_3_8b/resid_post_31.json",
        "mistral_7b/resid_post_31.json",
    ]
    .iter()
    .map(|f| root.join(f).display().to_string())
    .collect();
    let cmd = format!(
        "{} open {} --model {} --data {} --results {}; echo EXIT=$?; sleep 60",
        bin().display(),
        files.join(" "),
        fx.display(),
        fx.join("addition.jsonl").display(),
        temp_dir("tmux-side").display()
    );
    let t = Tmux::start("side", &cmd, 120, 40);
    let screen = t.wait_for("mistral_7b", 30);
    for want in [
        "gemma_2_9b",
        "llama_2_7b",
        "llama_3_8b",
        "H39.7  r -27.08%",
        "H29.16  r -39.29%",
        "H26.2  r -28.86%",
        "H30.4  r -29.86%",
    ] {
        assert!(screen.contains(want), "{want}: {screen}");
    }
    t.send(&["Tab", "k"]);
    let screen = t.wait_for("H30.16  r +0.00%", 10);
    assert!(screen.contains("H39.7  r -27.08%"), "{screen}");
    t.send(&["q"]);
    t.wait_for("EXIT=0", 10);
}

/// Quit with unsaved work lists all of it (every run by its receiver, the groups) and `a`
/// saves it all, then quits.
#[test]
fn quit_lists_everything_unsaved_and_a_saves_it_all() {
    let fx = fixture("tiny-gemma2");
    let results = temp_dir("tmux-saveall");
    let cmd = format!(
        "{} tui --model {} --data {} --results {}; echo EXIT=$?; sleep 60",
        bin().display(),
        fx.display(),
        fx.join("addition.jsonl").display(),
        results.display()
    );
    let t = Tmux::start("saveall", &cmd, 100, 30);
    t.wait_for("baselines only", 30);
    t.send(&["r"]);
    t.wait_for("done: resid_post 3", 30);
    t.send(&["j", "Enter"]);
    t.wait_for("done: 3.1.v", 30);
    t.send(&["t", "q"]);
    let screen = t.wait_for("a saves all and quits", 10);
    for want in [
        "• run resid_post 3 (finished, 4 rows)",
        "• run 3.1.v (finished, 3 rows)",
        "• head groups: consolidation (1)",
    ] {
        assert!(screen.contains(want), "{want}: {screen}");
    }
    t.send(&["a"]);
    t.wait_for("EXIT=0", 10);
    let files: Vec<_> = std::fs::read_dir(&results)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(
        files.len(),
        2,
        "both runs saved (the groups with them): {files:?}"
    );
}
