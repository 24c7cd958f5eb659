//! Nothing a run computed is lost, and nothing that is not headhunt's is replaced (issue 12),
//! through the built binary: real pipes, real signals to a real child process, real files.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// `headhunt patch` on the demo model (0.01 s of sweep), writing `out`.
fn patch(out: &Path, extra: &[&str]) -> Command {
    patch_n(out, "12", extra)
}

fn patch_n(out: &Path, examples: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.args(["patch", "--model", demo_model().to_str().unwrap()])
        .args([
            "--data",
            demo_data().to_str().unwrap(),
            "--examples",
            examples,
        ])
        .args(["--out", out.to_str().unwrap()])
        .args(extra)
        .env("RUST_BACKTRACE", "1");
    c
}

/// A slow sweep of the demo model: the literal algorithm, one example per batch, about 0.3 s
/// per sender layer, for interrupting between layers.
fn slow_patch(out: &Path) -> Command {
    patch_n(
        out,
        "100",
        &["--algorithm", "reference", "--batch-size", "1"],
    )
}

fn code_err(o: &Output) -> (i32, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

/// Runs `cmd` with its stdout a pipe whose reader has already gone.
fn with_closed_stdout(mut cmd: Command) -> (i32, String) {
    let child = cmd
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    code_err(&child.wait_with_output().unwrap())
}

/// Removes a result and its per-example `.npy` files.
fn remove_result(out: &Path) {
    std::fs::remove_file(out).unwrap();
    for p in headhunt::results::per_example_paths(out) {
        let _ = std::fs::remove_file(p);
    }
}

fn complete(path: &Path) -> bool {
    headhunt::results::RunRecord::load(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .complete
}

/// Every temporary file (`.NAME.headhunt-tmp-PID-N`) under `dir`.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else if e.file_name().to_string_lossy().contains(".headhunt-tmp-") {
                found.push(p);
            }
        }
    }
    found
}

/// Waits until the child has finished its first sender layer (stderr), then returns the
/// rest of its stderr lines as they come.
fn after_first_layer(child: &mut Child) -> impl Iterator<Item = String> {
    let mut lines = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok);
    for line in lines.by_ref() {
        if line.starts_with("sender layer ") {
            break;
        }
    }
    lines
}

fn kill(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig}");
}

// ----- 1. a closed or full stdout/stderr -----

#[test]
fn a_closed_stdout_keeps_the_result_and_ends_quietly() {
    let dir = temp_dir("safe-pipe");
    let out = dir.join("r.json");
    let (code, err) = with_closed_stdout(patch(&out, &["--npy"]));
    assert_eq!(code, 141, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(complete(&out));
    assert!(dir.join("r.relative.npy").is_file());
    let model = demo_model();
    let m = model.to_str().unwrap();
    let d = demo_data();
    let commands: [&[&str]; 4] = [
        &["show", out.to_str().unwrap()],
        &["info", "--model", m],
        &["data", "show", "--data", d.to_str().unwrap()],
        &["eval", "--model", m, "--data", d.to_str().unwrap()],
    ];
    for args in commands {
        let mut c = Command::new(bin());
        c.args(args).env("RUST_BACKTRACE", "1");
        let (code, err) = with_closed_stdout(c);
        assert_eq!(code, 141, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn a_full_stdout_or_stderr_keeps_the_result() {
    let dir = temp_dir("safe-full");
    let full = || {
        Stdio::from(
            std::fs::File::options()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
    };
    let out = dir.join("stdout.json");
    let o = patch(&out, &[]).stdout(full()).output().unwrap();
    let (code, err) = code_err(&o);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("No space left"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(complete(&out));
    let out = dir.join("stderr.json");
    let o = patch(&out, &[]).stderr(full()).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(complete(&out));
}

// ----- 2. what --force may replace -----

#[test]
fn force_replaces_only_regular_files() {
    let dir = temp_dir("safe-force");
    let fifo = dir.join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let socket = dir.join("socket");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let folder = dir.join("folder");
    std::fs::create_dir(&folder).unwrap();
    let target = dir.join("target.json");
    std::fs::write(&target, "keep").unwrap();
    let link = dir.join("link.json");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let dangling = dir.join("dangling.json");
    std::os::unix::fs::symlink(dir.join("nowhere"), &dangling).unwrap();
    for p in [&fifo, &socket, &folder, &link, &dangling] {
        let (code, err) = code_err(&patch(p, &["--force"]).output().unwrap());
        assert_one_line_error(code, &err, &["--out", &p.display().to_string()]);
    }
    // `data gen --out` too.
    for p in [&fifo, &link] {
        let (code, _, err) = headhunt(&[
            "data",
            "gen",
            "--task",
            "addition",
            "--out",
            p.to_str().unwrap(),
            "--force",
        ]);
        assert_one_line_error(code, &err, &["--out", &p.display().to_string()]);
    }
    use std::os::unix::fs::FileTypeExt;
    let kind = |p: &Path| std::fs::symlink_metadata(p).unwrap().file_type();
    assert!(kind(&fifo).is_fifo() && kind(&socket).is_socket() && kind(&folder).is_dir());
    assert!(kind(&link).is_symlink() && kind(&dangling).is_symlink());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    assert!(!dir.join("nowhere").exists());
}

// ----- 3. --out checked before any work; unique default names; a fallback -----

#[test]
fn unusable_out_is_refused_before_any_work() {
    let dir = temp_dir("safe-pre");
    let file = dir.join("a-file");
    std::fs::write(&file, "").unwrap();
    std::fs::write(dir.join("taken.relative.npy"), "").unwrap();
    std::os::unix::fs::symlink(dir.join("nowhere"), dir.join("dangling.json")).unwrap();
    let long = dir.join(format!("{}.json", "a".repeat(245)));
    let cases: Vec<(PathBuf, &[&str], &str)> = vec![
        (
            PathBuf::from(format!("{}/new/", dir.display())),
            &[],
            "trailing /",
        ),
        (dir.join("dangling.json"), &[], "symbolic link"),
        (dir.join("taken.json"), &["--npy"], "taken.relative.npy"),
        (long, &[], "File name too long"),
        (file.join("r.json"), &[], "is not a folder"),
    ];
    for (out, extra, needle) in cases {
        let (code, err) = code_err(&patch(&out, extra).output().unwrap());
        if needle.contains("too long") {
            // The 245-byte name makes the line too long for the helper's backtrace check.
            assert_eq!((code, err.lines().count()), (2, 1), "{err}");
            assert!(err.contains(needle), "{err}");
        } else {
            assert_one_line_error(code, &err, &[needle]);
        }
    }
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["a-file", "dangling.json", "taken.relative.npy"]);
}

#[test]
fn default_names_are_unique_and_name_the_data() {
    let dir = temp_dir("safe-names");
    let run = || {
        let mut c = Command::new(bin());
        c.current_dir(&dir)
            .args(["patch", "--model", demo_model().to_str().unwrap()])
            .args(["--data", demo_data().to_str().unwrap(), "--examples", "12"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c.spawn().unwrap()
    };
    // Four runs of the same model, data and receiver at once: four files.
    let children: Vec<Child> = (0..4).map(|_| run()).collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let names: Vec<String> = std::fs::read_dir(dir.join("results"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".json"))
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");
    // Each with its per-example values, under its own name.
    let all = std::fs::read_dir(dir.join("results")).unwrap().count();
    assert_eq!(all, 12, "{names:?}");
    for n in &names {
        assert!(n.contains("addition_nmax9_offset1"), "{n}");
        assert!(complete(&dir.join("results").join(n)));
    }
}

#[test]
fn a_result_that_cannot_go_to_out_goes_to_a_fallback() {
    let dir = temp_dir("safe-fallback");
    let tmp = dir.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    // A file appears at --out during the run: the result goes beside it.
    let out = dir.join("r.json");
    let mut child = slow_patch(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rest = after_first_layer(&mut child);
    std::fs::write(&out, "someone else's").unwrap();
    let err: Vec<String> = rest.collect();
    assert_eq!(child.wait().unwrap().code(), Some(2), "{err:?}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "someone else's");
    let beside = dir.join(format!("r.recovered-{}.json", child.id()));
    assert!(complete(&beside), "{err:?}");
    assert!(err
        .iter()
        .any(|l| l.contains(&beside.display().to_string())));
    // Its folder is replaced by a file: the result goes to the temporary folder.
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let mut child = slow_patch(&sub.join("r.json"))
        .env("TMPDIR", &tmp)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rest = after_first_layer(&mut child);
    std::fs::rename(&sub, dir.join("sub.moved")).unwrap();
    std::fs::write(&sub, "").unwrap();
    let err: Vec<String> = rest.collect();
    assert_eq!(child.wait().unwrap().code(), Some(2), "{err:?}");
    let recovered = tmp.join(format!("r.recovered-{}.json", child.id()));
    assert!(complete(&recovered), "{err:?}");
    assert!(temp_files(&dir).is_empty(), "{:?}", temp_files(&dir));
}

// ----- 4. SIGTERM and SIGHUP save like Ctrl-C; no temporary file outlives its process -----

#[test]
fn sigterm_and_sighup_save_the_finished_rows() {
    let dir = temp_dir("safe-signals");
    for (sig, code) in [("TERM", 143), ("HUP", 129)] {
        let out = dir.join(format!("{sig}.json"));
        let mut child = slow_patch(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let rest = after_first_layer(&mut child);
        kill(&child, sig);
        let err: Vec<String> = rest.collect();
        assert_eq!(child.wait().unwrap().code(), Some(code), "{err:?}");
        let rec = headhunt::results::RunRecord::load(&out).unwrap();
        assert!(!rec.complete);
        assert!(
            (1..3).contains(&rec.rows_computed.len()),
            "{:?}",
            rec.rows_computed
        );
    }
    assert!(temp_files(&dir).is_empty());
}

#[test]
fn stale_temporary_files_of_dead_processes_are_removed() {
    let dir = temp_dir("safe-stale");
    // PID 4194304 is above Linux's largest: that process is gone.
    let stale = dir.join(".r.json.headhunt-tmp-4194304-0");
    // Another program's temporary file, named as headhunt's were before the marker: not ours.
    let theirs = dir.join(".r.json.tmp-4194304-0");
    for p in [&stale, &theirs] {
        std::fs::write(p, "half a result").unwrap();
        let f = std::fs::File::options().write(true).open(p).unwrap();
        f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
            .unwrap();
    }
    let o = patch(&dir.join("r.json"), &[]).output().unwrap();
    assert!(o.status.success());
    assert!(!stale.exists());
    assert!(theirs.exists(), "a file that is not headhunt's was removed");
}

// ----- 5. train-demo -----

#[test]
fn train_demo_protects_every_file_it_writes_and_checks_out_first() {
    let dir = temp_dir("safe-train");
    std::fs::write(dir.join("config.json"), "mine").unwrap();
    let file = dir.join("a-file");
    std::fs::write(&file, "").unwrap();
    for (out, needle) in [(dir.clone(), "config.json"), (file.join("m"), "--out")] {
        let started = std::time::Instant::now();
        let o = Command::new(bin())
            .args(["train-demo", "--out", out.to_str().unwrap()])
            .args(["--steps", "1", "--eval-every", "0"])
            .output()
            .unwrap();
        let (code, err) = code_err(&o);
        assert_one_line_error(code, &err, &[needle]);
        assert!(started.elapsed().as_secs() < 5, "trained first: {err}");
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("config.json")).unwrap(),
        "mine"
    );
    assert!(!dir.join("model.safetensors").exists());
}

// ----- fault injection -----

#[derive(Debug, Default)]
struct Counts {
    closed_stdout: usize,
    sigterm: usize,
    unwritable: usize,
    complete: usize,
    partial: usize,
    /// Stopped or refused before anything was computed (no baselines yet): nothing to keep.
    before_work: usize,
    fallback: usize,
}

/// A sweep of the demo model, many times; at a random (seeded) moment its stdout is closed,
/// it gets SIGTERM, or its output folder becomes unusable. Every time, either a complete or a
/// valid partial result exists (at --out, where the folder moved, or at the fallback path the
/// error names), or the run was stopped before it computed anything; no temporary file is
/// ever left. "Unusable folder" cannot be chmod, which root (CI) ignores: the folder is moved
/// away and a regular file put in its place, which stops every user (ENOTDIR).
#[test]
fn fault_injection_never_loses_a_finished_result() {
    use rand::{Rng, SeedableRng};
    let base = temp_dir("safe-faults");
    let run = |trial: &Path| {
        std::fs::create_dir_all(trial.join("out")).unwrap();
        std::fs::create_dir_all(trial.join("tmp")).unwrap();
        let mut c = patch_n(
            &trial.join("out/r.json"),
            "30",
            &["--algorithm", "reference", "--batch-size", "1", "--quiet"],
        );
        c.env("TMPDIR", trial.join("tmp"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c.spawn().unwrap()
    };
    // How long one undisturbed run takes, so that faults land anywhere in it.
    let started = std::time::Instant::now();
    let calib = base.join("calibration");
    assert!(run(&calib).wait_with_output().unwrap().status.success());
    assert!(complete(&calib.join("out/r.json")));
    let span_ms = (started.elapsed().as_millis() as u64 * 6 / 5).max(50);

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
    let mut n = Counts::default();
    const TRIALS: usize = 45;
    for i in 0..TRIALS {
        let trial = base.join(format!("trial-{i}"));
        let mut child = run(&trial);
        let stderr = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap());
        let fault = rng.random_range(0..3);
        std::thread::sleep(std::time::Duration::from_millis(
            rng.random_range(0..span_ms),
        ));
        match fault {
            0 => {
                n.closed_stdout += 1;
                drop(child.stdout.take());
            }
            1 => {
                n.sigterm += 1;
                kill(&child, "TERM");
            }
            _ => {
                n.unwritable += 1;
                std::fs::rename(trial.join("out"), trial.join("out.moved")).unwrap();
                std::fs::write(trial.join("out"), "").unwrap();
            }
        }
        let status = child.wait().unwrap();
        let err = reader.join().unwrap();
        let ctx = format!("trial {i}, fault {fault}, {status:?}: {err}");
        let recovered = format!("r.recovered-{}.json", child.id());
        let found: Vec<PathBuf> = [
            trial.join("out/r.json"),
            trial.join("out.moved/r.json"),
            trial.join("tmp").join(&recovered),
            trial.join("out").join(&recovered),
        ]
        .into_iter()
        .filter(|p| p.is_file())
        .collect();
        assert!(
            temp_files(&trial).is_empty(),
            "{ctx}: {:?}",
            temp_files(&trial)
        );
        assert!(found.len() <= 1, "{ctx}: {found:?}");
        let Some(path) = found.first() else {
            assert!(!err.contains("baselines:"), "computed, then lost: {ctx}");
            assert!(matches!(status.code(), Some(2) | Some(143) | None), "{ctx}");
            n.before_work += 1;
            continue;
        };
        if path.starts_with(trial.join("tmp")) {
            n.fallback += 1;
            assert!(err.contains(&recovered), "the fallback is named: {ctx}");
        }
        let rec = headhunt::results::RunRecord::load(path).unwrap();
        for l in 0..rec.n_layers {
            assert_eq!(
                rec.relative[l].is_some(),
                rec.rows_computed.contains(&l),
                "{ctx}"
            );
        }
        if rec.complete {
            n.complete += 1;
            assert_eq!(rec.rows_computed.len(), rec.n_layers, "{ctx}");
        } else {
            n.partial += 1;
            assert_eq!(status.code(), Some(143), "{ctx}");
        }
    }
    eprintln!("{n:?}");
    assert_eq!(n.closed_stdout + n.sigterm + n.unwritable, TRIALS);
    assert_eq!(n.complete + n.partial + n.before_work, TRIALS, "{n:?}");
    assert!(
        n.closed_stdout >= 5 && n.sigterm >= 5 && n.unwritable >= 5,
        "{n:?}"
    );
    // Faults land before, during and after the sweep.
    assert!(n.complete >= 1 && n.partial >= 1, "{n:?}");
    let _ = std::fs::remove_dir_all(&base);
}

// ----- 6. meaningless inputs; 7. misleading messages -----

fn headhunt(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(bin())
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let (code, err) = code_err(&o);
    (code, String::from_utf8_lossy(&o.stdout).to_string(), err)
}

/// A copy of the demo model whose final norm is NaN.
fn nan_model(dir: &Path) -> PathBuf {
    nan_model_at(dir, "model.norm.weight")
}

/// The demo model with NaN in `tensor` (an f32 tensor).
fn nan_model_at(dir: &Path, tensor: &str) -> PathBuf {
    let m = dir.join(format!("nan-model-{tensor}"));
    std::fs::create_dir_all(&m).unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(demo_model().join(f), m.join(f)).unwrap();
    }
    let mut b = std::fs::read(demo_model().join("model.safetensors")).unwrap();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&b[8..8 + n]).unwrap();
    let t = &header[tensor];
    assert_eq!(t["dtype"], "F32");
    let (s, e) = (
        t["data_offsets"][0].as_u64().unwrap() as usize,
        t["data_offsets"][1].as_u64().unwrap() as usize,
    );
    for chunk in b[8 + n + s..8 + n + e].chunks_mut(4) {
        chunk.copy_from_slice(&f32::NAN.to_le_bytes());
    }
    std::fs::write(m.join("model.safetensors"), b).unwrap();
    m
}

#[test]
fn meaningless_inputs_are_refused_or_warned_about() {
    let dir = temp_dir("safe-meaningless");
    let m = demo_model();
    let m = m.to_str().unwrap();
    let d = demo_data();
    let d = d.to_str().unwrap();
    let out = dir.join("x.json");
    let o = out.to_str().unwrap();
    // A prompt longer than the model's 256 positions.
    let long = "1+1=2\n".repeat(100);
    let (code, _, err) = headhunt(&["run", "--model", m, "--prompt", &long]);
    assert_one_line_error(code, &err, &["--prompt", "at most 256 positions"]);
    let pairs = dir.join("long.jsonl");
    let line = format!(
        "{{\"normal_input\": {long:?}, \"normal_output\": \"2\", \"contrast_input\": {long:?}, \"contrast_output\": \"3\"}}\n"
    );
    std::fs::write(&pairs, line).unwrap();
    let p = pairs.to_str().unwrap();
    let (code, _, err) = headhunt(&["patch", "--model", m, "--data", p, "--out", o]);
    assert_one_line_error(code, &err, &["long.jsonl:1", "at most 256 positions"]);
    // A megabyte of prompt: refused before tokenizing (which would take gigabytes).
    let huge = "1+1=2\n".repeat(200_000);
    let line = format!(
        "{{\"normal_input\": {huge:?}, \"normal_output\": \"2\", \"contrast_input\": {huge:?}, \"contrast_output\": \"3\"}}\n"
    );
    std::fs::write(&pairs, line).unwrap();
    let started = std::time::Instant::now();
    let (code, _, err) = headhunt(&["patch", "--model", m, "--data", p, "--out", o]);
    assert_one_line_error(code, &err, &["long.jsonl:1", "bytes long"]);
    assert!(started.elapsed().as_secs() < 5, "tokenized first");
    // NaN weights: an error, and no result that reads as complete.
    let nan = nan_model(&dir);
    let args = [
        "--model",
        nan.to_str().unwrap(),
        "--data",
        d,
        "--examples",
        "4",
    ];
    let (code, _, err) = headhunt(&[&["patch"], &args[..], &["--out", o]].concat());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not finite"), "{err}");
    assert!(!out.exists());
    let (_, stdout, _) = headhunt(&[&["eval"], &args[..]].concat());
    assert!(stdout.contains("not finite"), "{stdout}");
    let nm = nan.to_str().unwrap();
    let (code, _, err) = headhunt(&["run", "--model", nm, "--prompt", "1+1="]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("warning: the model's logits are not finite"),
        "{err}"
    );
    // Answers whose read (last) tokens are the same: LD is identically 0.
    let same = dir.join("same.jsonl");
    let row = r#"{"normal_input": "1+1=", "normal_output": "14", "contrast_input": "1+2=", "contrast_output": "24"}"#;
    std::fs::write(&same, format!("{row}\n{row}\n")).unwrap();
    let s = same.to_str().unwrap();
    let (code, _, err) = headhunt(&["patch", "--model", m, "--data", s, "--out", o]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("warning: ") && err.contains("same.jsonl: 2 of 2 examples"),
        "{err}"
    );
    assert!(err.contains("always 0"), "{err}");
    remove_result(&out);
    // An answer the tokenizer does not know: a warning naming the line.
    let unk = dir.join("unk.jsonl");
    std::fs::write(
        &unk,
        "{\"normal_input\": \"1+1=\", \"normal_output\": \"2\", \"contrast_input\": \"1+2=\", \"contrast_output\": \"x\"}\n",
    )
    .unwrap();
    let u = unk.to_str().unwrap();
    let (code, _, err) = headhunt(&["patch", "--model", m, "--data", u, "--out", o]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("unk.jsonl:1: an answer tokenizes to the unknown token"),
        "{err}"
    );
    remove_result(&out);
    // Thresholds.
    for (hi, lo) in [("nan", "0.02"), ("0.01", "0.02")] {
        let (code, _, err) = headhunt(&[
            "patch", "--model", m, "--data", d, "--hi", hi, "--lo", lo, "--out", o,
        ]);
        assert_one_line_error(code, &err, &["--hi", "--lo"]);
    }
    // resid_pre of layer 0: no sender reaches it.
    let (code, _, err) = headhunt(&[
        "patch",
        "--model",
        m,
        "--data",
        d,
        "--receiver",
        "resid_pre:0",
        "--out",
        o,
    ]);
    assert_one_line_error(code, &err, &["resid_pre", "no sender"]);
    assert!(!out.exists());
}

/// `cmd` must end within 20 s (a second open of a FIFO would block for ever).
fn within(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("did not finish");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn messages_say_what_is_wrong() {
    let dir = temp_dir("safe-messages");
    let m = demo_model();
    let ms = m.to_str().unwrap();
    let llama = fixture("tiny-llama");
    let d = demo_data();
    let d = d.to_str().unwrap();
    let o = dir.join("x.json");
    let o = o.to_str().unwrap();
    // An integer beyond 64 bits.
    let big = dir.join("big.jsonl");
    std::fs::write(
        &big,
        "{\"demonstration\": [[1000000000000000000000000000000, 2]], \"inference\": [1, 2]}\n",
    )
    .unwrap();
    let (code, _, err) = headhunt(&[
        "data",
        "show",
        "--data",
        big.to_str().unwrap(),
        "--shots",
        "1",
    ]);
    assert_one_line_error(code, &err, &["too large"]);
    // Another model's tokenizer: named, before the sweep.
    let tok = llama.join("tokenizer.json");
    let (code, _, err) = headhunt(&[
        "patch",
        "--model",
        ms,
        "--tokenizer",
        tok.to_str().unwrap(),
        "--data",
        d,
        "--out",
        o,
    ]);
    assert_one_line_error(
        code,
        &err,
        &["tiny-llama/tokenizer.json", "does not belong"],
    );
    // A UTF-8 byte-order mark.
    let bom = dir.join("bom.jsonl");
    let mut bytes = b"\xef\xbb\xbf".to_vec();
    bytes.extend(std::fs::read(demo_data()).unwrap());
    std::fs::write(&bom, bytes).unwrap();
    let (code, _, err) = headhunt(&["data", "show", "--data", bom.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    // --tokenizer DIR: the tokenizer.json in it.
    let (code, _, err) = headhunt(&["run", "--model", ms, "--tokenizer", ms, "--prompt", "1+1="]);
    assert_eq!(code, 0, "{err}");
    // A FIFO (as `--data <(cat f)` gives) is read once.
    let fifo = dir.join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let (f2, src) = (fifo.clone(), demo_data());
    let writer = std::thread::spawn(move || {
        let _ = std::fs::write(&f2, std::fs::read(src).unwrap());
    });
    let mut c = Command::new(bin());
    c.args(["data", "show", "--data", fifo.to_str().unwrap()]);
    let out = within(c);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    writer.join().unwrap();
    // A result of a newer format is refused, naming the version this headhunt reads.
    let (code, _, err) = headhunt(&[
        "patch",
        "--model",
        ms,
        "--data",
        d,
        "--examples",
        "4",
        "--out",
        o,
    ]);
    assert_eq!(code, 0, "{err}");
    let newer = dir.join("newer.json");
    let text = std::fs::read_to_string(o).unwrap();
    std::fs::write(
        &newer,
        text.replace("\"format_version\": 1", "\"format_version\": 2"),
    )
    .unwrap();
    let (code, _, err) = headhunt(&["show", newer.to_str().unwrap()]);
    assert_one_line_error(
        code,
        &err,
        &["newer.json", "`format_version` is 2", "version 1"],
    );
    // run --save-logits keeps an existing file without --force.
    let logits = dir.join("logits.npy");
    std::fs::write(&logits, "mine").unwrap();
    let l = logits.to_str().unwrap();
    let (code, _, err) = headhunt(&["run", "--model", ms, "--prompt", "1+1=", "--save-logits", l]);
    assert_one_line_error(code, &err, &["--save-logits", "--force"]);
    assert_eq!(std::fs::read_to_string(&logits).unwrap(), "mine");
    let (code, _, err) = headhunt(&[
        "run",
        "--model",
        ms,
        "--prompt",
        "1+1=",
        "--save-logits",
        l,
        "--force",
    ]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn train_demo_saves_the_model_on_sigterm() {
    let dir = temp_dir("safe-train-term");
    let out = dir.join("m");
    let mut child = Command::new(bin())
        .args(["train-demo", "--out", out.to_str().unwrap()])
        .args(["--steps", "1000000", "--layers", "1", "--heads", "2"])
        .args(["--d-model", "16", "--d-mlp", "32", "--batch-tokens", "600"])
        .args(["--eval-every", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok);
    assert!(lines.any(|l| l.starts_with("step ")), "no step logged");
    kill(&child, "TERM");
    let rest: Vec<String> = lines.collect();
    assert_eq!(child.wait().unwrap().code(), Some(143), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("asked to stop")), "{rest:?}");
    for f in [
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "training.json",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    assert!(temp_files(&dir).is_empty());
}

/// NaN weights stop the analysis commands before they compute or write anything, as they stop
/// `patch` (the shared baseline check; attention checks its patterns).
#[test]
fn nan_weights_stop_every_analysis_command() {
    let dir = temp_dir("safe-nan-analyses");
    let nan = nan_model(&dir);
    let (m, d) = (nan.to_str().unwrap().to_string(), demo_data());
    let d = d.to_str().unwrap();
    let json = dir.join("out.json");
    let j = json.to_str().unwrap();
    for cmd in [
        vec!["circuit", "--group", "a=1.1@last"],
        vec!["ablate", "--heads", "1.1", "--random-groups", "2"],
        vec!["fv", "--heads", "1.1"],
    ] {
        let args = [
            &cmd[..],
            &["--model", &m, "--data", d, "--examples", "4", "--json", j],
        ]
        .concat();
        let (code, _, err) = headhunt(&args);
        assert_one_line_error(code, &err, &["not finite"]);
        assert!(!json.exists(), "{cmd:?} wrote a file");
    }
    // Attention patterns do not read the final norm: NaN where they do.
    let nan = nan_model_at(&dir, "model.layers.0.input_layernorm.weight");
    let m = nan.to_str().unwrap();
    let args = [
        "attention",
        "--head",
        "1.1",
        "--model",
        m,
        "--data",
        d,
        "--examples",
        "4",
        "--json",
        j,
    ];
    let (code, _, err) = headhunt(&args);
    assert_one_line_error(code, &err, &["attention patterns are not finite"]);
    assert!(!json.exists(), "attention wrote a file");
}
