//! One output path for every command (issue 23): each command that computes something checks
//! its files before the work, saves them before printing, sends a file that cannot go where
//! asked to a `.recovered` path it names, and keeps what is finished when a signal stops it.
//! Each promise is tried once per command, through the built binary: real pipes, real
//! signals, a real full file system (a small tmpfs).

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The demo model and its data, as arguments.
fn model_and_data() -> (String, String) {
    (
        demo_model().display().to_string(),
        demo_data().display().to_string(),
    )
}

/// A command that writes one file, and the flag that names it.
struct Case {
    name: &'static str,
    args: Vec<String>,
    flag: &'static str,
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Every command that computes and saves a file, on the demo model (well under a second each).
fn cases() -> Vec<Case> {
    let (m, d) = model_and_data();
    let md = |cmd: &str, rest: &[&str]| {
        let mut v = strings(&[cmd, "--model", &m, "--data", &d, "--examples", "8"]);
        v.extend(strings(rest));
        v
    };
    let plot_input = root().join("tests/data/plot/ablation.json");
    vec![
        Case {
            name: "patch",
            args: md("patch", &["--quiet"]),
            flag: "--out",
        },
        Case {
            name: "circuit",
            args: md("circuit", &["--group", "a=1.1,2.0@last", "--minimality"]),
            flag: "--json",
        },
        Case {
            name: "ablate",
            args: md("ablate", &["--heads", "1.1", "--random-groups", "2"]),
            flag: "--json",
        },
        Case {
            name: "fv",
            args: md("fv", &["--heads", "1.1"]),
            flag: "--json",
        },
        Case {
            name: "attention",
            args: md("attention", &["--head", "1.1"]),
            flag: "--json",
        },
        Case {
            name: "plot",
            args: strings(&["plot", plot_input.to_str().unwrap()]),
            flag: "--out",
        },
        Case {
            name: "data gen",
            args: strings(&["data", "gen", "--task", "addition", "--examples", "5"]),
            flag: "--out",
        },
        Case {
            name: "run",
            args: strings(&["run", "--model", &m, "--prompt", "1+1=3\n2+2="]),
            flag: "--save-logits",
        },
    ]
}

impl Case {
    /// The file name this case writes (its extension says the format).
    fn file(&self) -> &'static str {
        match self.name {
            "plot" => "out.svg",
            "data gen" => "out.jsonl",
            "run" => "out.npy",
            _ => "out.json",
        }
    }

    fn command(&self, out: &Path) -> Command {
        let mut c = Command::new(bin());
        c.args(&self.args)
            .args([self.flag, out.to_str().unwrap()])
            .env("RUST_BACKTRACE", "1");
        c
    }
}

/// The file is whole: it parses as what it claims to be.
fn assert_whole(path: &Path, what: &str) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{what}: {}: {e}", path.display()));
    let ext = path.extension().unwrap().to_str().unwrap();
    match ext {
        "json" => {
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .unwrap_or_else(|e| panic!("{what}: {}: {e}", path.display()));
        }
        "svg" => assert!(bytes.ends_with(b"</svg>\n") || bytes.ends_with(b"</svg>")),
        "npy" => assert!(bytes.starts_with(b"\x93NUMPY") && bytes.len() > 128),
        _ => assert!(bytes.ends_with(b"\n") && bytes.len() > 100, "{what}"),
    }
}

fn code_err(o: &Output) -> (i32, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

/// Every temporary file (`.NAME.headhunt-tmp-PID-N`) in `dir`.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains(".headhunt-tmp-"))
        .collect()
}

#[test]
fn a_closed_or_full_stdout_never_costs_a_file() {
    let dir = temp_dir("out-stdout");
    for case in cases() {
        // The reader is gone: the file is saved, the end is quiet (141, as SIGPIPE).
        let tag = case.name.replace(' ', "-");
        let out = dir.join(format!("closed-{tag}-{}", case.file()));
        let child = case
            .command(&out)
            .stdout(closed_pipe())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (code, err) = code_err(&child.wait_with_output().unwrap());
        assert_eq!(code, 141, "{}: {err}", case.name);
        assert_whole(&out, case.name);
        // stdout is full: the file is saved, the error says stdout failed.
        let out = dir.join(format!("full-{tag}-{}", case.file()));
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let o = case.command(&out).stdout(full).output().unwrap();
        let (code, err) = code_err(&o);
        assert_eq!(code, 2, "{}: {err}", case.name);
        assert!(err.contains("stdout"), "{}: {err}", case.name);
        assert_whole(&out, case.name);
    }
    assert!(temp_files(&dir).is_empty());
}

#[test]
fn every_output_is_checked_before_the_work() {
    let dir = temp_dir("out-preflight");
    let file = dir.join("a-file");
    std::fs::write(&file, "mine").unwrap();
    for case in cases() {
        let taken = dir.join(format!("taken-{}", case.file()));
        std::fs::write(&taken, "mine").unwrap();
        for (out, needle) in [
            (file.join(case.file()), "not a folder"),
            (taken.clone(), "--force"),
            (dir.join(format!("{}/", case.file())), "directory"),
        ] {
            let started = std::time::Instant::now();
            let o = case.command(&out).output().unwrap();
            let (code, err) = code_err(&o);
            assert_one_line_error(code, &err, &[case.flag, needle]);
            // Before the model loads: no baseline line, quickly.
            assert!(
                !err.contains("baseline"),
                "{}: worked first: {err}",
                case.name
            );
            assert!(started.elapsed().as_secs() < 5, "{}", case.name);
        }
        assert_eq!(std::fs::read_to_string(&taken).unwrap(), "mine");
    }
}

/// A tmpfs of 16 KiB at `dir`, filled up: every write of data fails with ENOSPC, while empty
/// files (the preflight's probe) can still be made. Mounted here when this process may (root,
/// as the tests and CI run); else each command runs in a mount namespace of its own
/// (`unshare -rm`) that mounts it, so the promise is tried either way. Unmounted when dropped.
struct FullDisk {
    dir: PathBuf,
    /// Mounted in this namespace (else per command, through `unshare`).
    here: bool,
}

impl FullDisk {
    const MOUNT: &'static str = "mount -t tmpfs -o size=16k tmpfs \"$0\" && (head -c 65536 /dev/zero > \"$0/fill\" 2>/dev/null; true)";

    fn at(dir: &Path) -> FullDisk {
        std::fs::create_dir_all(dir).unwrap();
        let here = Command::new("sh")
            .args(["-c", Self::MOUNT, dir.to_str().unwrap()])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !here {
            let ns = Command::new("unshare")
                .args(["-rm", "sh", "-c", Self::MOUNT, dir.to_str().unwrap()])
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                ns,
                "cannot mount a tmpfs at {}, not even in a user namespace",
                dir.display()
            );
        }
        FullDisk {
            dir: dir.to_path_buf(),
            here,
        }
    }

    /// `headhunt ARGS` seeing the full disk at `self.dir`.
    fn command(&self, args: &[String]) -> Command {
        if self.here {
            let mut c = Command::new(bin());
            c.args(args);
            return c;
        }
        let script = format!("{} && shift && exec \"$@\"", Self::MOUNT);
        let mut c = Command::new("unshare");
        c.args(["-rm", "sh", "-c", &script])
            .arg(&self.dir)
            .arg("--")
            .arg(bin())
            .args(args);
        c
    }
}

impl Drop for FullDisk {
    fn drop(&mut self) {
        if self.here {
            let _ = Command::new("umount").arg(&self.dir).status();
        }
    }
}

/// The `.recovered` file an error line names.
fn recovered_path(err: &str) -> PathBuf {
    let at = err
        .find("saved it to ")
        .unwrap_or_else(|| panic!("no fallback named: {err}"));
    let rest = &err[at + "saved it to ".len()..];
    PathBuf::from(rest.split(" instead").next().unwrap())
}

#[test]
fn a_full_disk_sends_every_result_to_a_recovered_file() {
    let dir = temp_dir("out-full-disk");
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let full = FullDisk::at(&dir.join("full"));
    for case in cases() {
        let out = full.dir.join(case.file());
        let mut args = case.args.clone();
        args.extend([case.flag.to_string(), out.display().to_string()]);
        let o = full.command(&args).env("TMPDIR", &tmp).output().unwrap();
        let (code, err) = code_err(&o);
        assert_eq!(code, 2, "{}: {err}", case.name);
        assert!(
            err.contains("No space left") && err.contains(case.flag),
            "{}: {err}",
            case.name
        );
        let rec = recovered_path(&err);
        assert!(rec.starts_with(&tmp), "{}: {}", case.name, rec.display());
        assert!(rec.to_string_lossy().contains(".recovered-"));
        assert_whole(&rec, case.name);
        assert!(!out.exists());
        // stdout names where it went.
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(stdout.contains(&rec.display().to_string()), "{stdout}");
    }
    assert!(temp_files(&full.dir).is_empty());
}

#[test]
fn two_runs_at_once_keep_both_results() {
    let dir = temp_dir("out-two-runs");
    let out = dir.join("same.json");
    let (m, d) = model_and_data();
    let slow = |tag: &str| {
        let mut c = Command::new(bin());
        c.args(["ablate", "--model", &m, "--data", &d])
            .args([
                "--heads",
                "1.1",
                "--random-groups",
                "60",
                "--batch-size",
                "1",
            ])
            .args(["--json", out.to_str().unwrap()])
            .env("TMPDIR", dir.join(tag));
        std::fs::create_dir_all(dir.join(tag)).unwrap();
        c.stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (slow("a"), slow("b"));
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let codes: Vec<i32> = outs.iter().map(|o| o.status.code().unwrap()).collect();
    let mut sorted = codes.clone();
    sorted.sort();
    assert_eq!(sorted, vec![0, 2], "{codes:?}");
    let loser = &outs[codes.iter().position(|&c| c == 2).unwrap()];
    let err = String::from_utf8_lossy(&loser.stderr);
    assert!(err.contains("already exists"), "{err}");
    let rec = recovered_path(&err);
    assert!(rec.starts_with(&dir), "{}", rec.display());
    for p in [&out, &rec] {
        headhunt::results::analysis::AnalysisFile::load(p).unwrap();
    }
}

/// Waits for a stderr line starting with `prefix`, then sends `sig`; returns the exit status
/// and the rest of stderr.
fn signal_after(mut cmd: Command, prefix: &str, sig: &str) -> (i32, Vec<String>) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok);
    assert!(
        lines.any(|l| l.starts_with(prefix)),
        "no line starting with {prefix:?}"
    );
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let rest = lines.collect();
    (child.wait().unwrap().code().unwrap_or(-1), rest)
}

#[test]
fn a_signal_keeps_the_finished_greedy_rollouts_and_random_groups() {
    let dir = temp_dir("out-signals");
    let m = demo_model().display().to_string();
    let big = dir.join("big.jsonl");
    let o = Command::new(bin())
        .args(["data", "gen", "--task", "addition", "--examples", "400"])
        .args(["--out", big.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success());
    let all = "a=0.0,0.1,0.2,0.3,1.0,1.1,1.2,1.3,2.0,2.1,2.2,2.3@last";
    // circuit --greedy: SIGTERM after the first rollout.
    let out = dir.join("greedy.json");
    let mut c = Command::new(bin());
    c.args(["circuit", "--model", &m, "--data"])
        .arg(&big)
        .args(["--group", all, "--greedy", "--greedy-rollouts", "1000"])
        .args(["--greedy-iterations", "10", "--greedy-samples", "8"])
        .args(["--json", out.to_str().unwrap()]);
    let (code, err) = signal_after(c, "greedy      rollout 1/", "TERM");
    assert_eq!(code, 143, "{err:?}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(v["complete"], false);
    assert_eq!(v["greedy"]["complete"], false);
    let sets = v["greedy"]["sets"].as_array().unwrap().len();
    assert!((1..1000).contains(&sets), "{sets} rollouts kept");
    // ablate --random-groups: SIGINT once the work has started.
    let out = dir.join("ablate.json");
    let mut c = Command::new(bin());
    c.args(["ablate", "--model", &m, "--data"])
        .arg(&big)
        .args([
            "--heads",
            "1.1",
            "--random-groups",
            "5000",
            "--batch-size",
            "1",
        ])
        .args(["--json", out.to_str().unwrap()]);
    let (code, err) = signal_after(c, "baseline accuracy", "INT");
    assert_eq!(code, 130, "{err:?}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(v["complete"], false);
    let done = v["random_groups"]["n"].as_u64().unwrap_or(0);
    assert!(done < 5000, "{done}");
    assert!(temp_files(&dir).is_empty());
}

#[test]
fn train_demo_on_a_full_disk_keeps_the_model() {
    let dir = temp_dir("out-train-full");
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let full = FullDisk::at(&dir.join("full"));
    let mut args = strings(&["train-demo", "--out"]);
    args.push(full.dir.join("m").display().to_string());
    args.extend(strings(&["--steps", "2", "--layers", "1", "--heads", "2"]));
    args.extend(strings(&["--d-model", "16", "--d-mlp", "32"]));
    args.extend(strings(&["--batch-tokens", "600", "--eval-every", "0"]));
    let o = full.command(&args).env("TMPDIR", &tmp).output().unwrap();
    let (code, err) = code_err(&o);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("model.safetensors") && err.contains("No space left"),
        "{err}"
    );
    let at = err.find("saved the model to ").expect(&err) + "saved the model to ".len();
    let alt = PathBuf::from(err[at..].split(" instead").next().unwrap());
    assert!(alt.starts_with(&tmp), "{}", alt.display());
    for f in [
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "training.json",
    ] {
        assert!(alt.join(f).is_file(), "{f}");
    }
    assert!(temp_files(&full.dir.join("m")).is_empty());
}

/// Every command, stopped by SIGTERM at many moments (a seeded spread from its start to past
/// its end): each time it either had not finished (exit 143, and no file unless one was kept
/// whole) or ended normally, and a file that exists is whole; no temporary file is ever left,
/// also when the signal comes during the write.
#[test]
fn a_signal_at_any_moment_leaves_a_whole_file_or_none() {
    let dir = temp_dir("out-any-moment");
    let mut seed: u64 = 0x5eed_0023;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for case in cases() {
        // How long the command takes here, to spread the signals over it.
        let timed = dir.join(format!(
            "timed-{}-{}",
            case.name.replace(' ', "-"),
            case.file()
        ));
        let started = std::time::Instant::now();
        let o = case.command(&timed).output().unwrap();
        assert!(o.status.success(), "{}: {}", case.name, code_err(&o).1);
        let span = started.elapsed().as_millis() as u64 + 50;
        for i in 0..6 {
            let out = dir.join(format!(
                "{}-{i}-{}",
                case.name.replace(' ', "-"),
                case.file()
            ));
            let mut child = case
                .command(&out)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(next() % span));
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            // Before the handler is installed (the first instants), SIGTERM's default action
            // ends the process: nothing was computed yet, which reads as 143 too.
            let status = child.wait().unwrap();
            use std::os::unix::process::ExitStatusExt;
            let code = status.code().unwrap_or(128 + status.signal().unwrap_or(0));
            assert!(
                code == 0 || code == 143,
                "{} try {i}: exit {code}",
                case.name
            );
            if out.exists() {
                assert_whole(&out, case.name);
            }
            assert!(temp_files(&dir).is_empty(), "{} try {i}", case.name);
        }
    }
}
