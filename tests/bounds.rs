//! Counts that size memory are bounded before anything is allocated, and degenerate analysis
//! inputs are refused, through the built binary (issue 23, items 8, 11 and 13): each case is
//! a one-line error with exit code 2, fast, and no backtrace.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs headhunt with `args`, at most `limit` long and with at most 4 GB of address space
/// (so that a regression allocates nothing much before it fails): (exit code, stderr, time).
fn headhunt(args: &[&str], limit: Duration) -> (i32, String, Duration) {
    let started = Instant::now();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 4000000; exec \"$0\" \"$@\"")
        .arg(bin())
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("headhunt {args:?} ran past {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
        started.elapsed(),
    )
}

/// The tiny Llama fixture with its addition data: `cmd` and its model and data flags.
fn on_tiny(cmd: &str, extra: &[&str]) -> Vec<String> {
    let f = fixture("tiny-llama");
    let mut a: Vec<String> = [cmd, "--model", f.to_str().unwrap(), "--data"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.push(f.join("addition.jsonl").to_str().unwrap().into());
    for s in ["--shots", "4", "--offset", "1", "--examples", "8"]
        .iter()
        .chain(extra)
    {
        a.push(s.to_string());
    }
    a
}

/// The last line of stderr (the error; warnings about the data may come before it).
fn refused(args: &[String], limit: Duration, needles: &[&str]) -> Duration {
    let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let (code, err, took) = headhunt(&refs, limit);
    let last = err.trim_end().lines().last().unwrap_or("").to_string();
    assert_one_line_error(code, &last, needles);
    assert!(
        !err.contains("panicked") && !err.contains("stack backtrace"),
        "{err}"
    );
    took
}

#[test]
fn huge_random_group_counts_are_refused_before_allocating() {
    let args = on_tiny(
        "ablate",
        &["--heads", "3.1", "--random-groups", "1000000000"],
    );
    let took = refused(
        &args,
        Duration::from_secs(20),
        &["--random-groups 1000000000", "10000"],
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn greedy_counts_are_bounded_and_not_zero() {
    for (flag, value, needle) in [
        (
            "--greedy-rollouts",
            "4000000000",
            "--greedy-rollouts 4000000000",
        ),
        ("--greedy-rollouts", "0", "--greedy-rollouts 0"),
        ("--greedy-iterations", "0", "--greedy-iterations 0"),
        ("--greedy-samples", "0", "--greedy-samples 0"),
    ] {
        let args = on_tiny(
            "circuit",
            &["--group", "a=3.1,2.0@last", "--greedy", flag, value],
        );
        refused(&args, Duration::from_secs(60), &[needle, "expected 1 to"]);
    }
}

#[test]
fn data_gen_sizes_are_bounded() {
    for (task, flag, value) in [
        ("addition", "--examples", "1000000000000"),
        ("addition", "--demos", "1000000000000"),
        ("base", "--demos", "18446744073709551615"),
        ("cipher", "--maxlen", "1000000000000"),
    ] {
        let mut args = vec!["data", "gen", "--task", task, flag, value];
        if task == "base" {
            args.extend(["--base", "7"]);
        }
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let took = refused(
            &args,
            Duration::from_secs(20),
            &[&format!("{flag} {value}: at most")],
        );
        assert!(took < Duration::from_secs(5), "{flag}: took {took:?}");
    }
    // Each within bounds, together too big for memory.
    let args: Vec<String> = [
        "data",
        "gen",
        "--task",
        "addition",
        "--examples",
        "1000000",
        "--demos",
        "100000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    refused(
        &args,
        Duration::from_secs(20),
        &["--examples 1000000 --demos 100000", "MB"],
    );
}

#[test]
fn a_token_group_that_matches_no_prompt_is_refused() {
    let args = on_tiny("circuit", &["--group", "a=3.1@tok:Z"]);
    refused(
        &args,
        Duration::from_secs(60),
        &["group a", "tok:Z", "occurs in no prompt"],
    );
}

#[test]
fn duplicate_heads_are_refused_naming_the_head() {
    for extra in [
        &["--group", "a=3.1,3.1@last"][..],
        &["--group", "a=3.1@last", "--knockout", "2.0+2.0"],
    ] {
        let args = on_tiny("circuit", extra);
        refused(&args, Duration::from_secs(60), &["listed twice"]);
    }
    let args = on_tiny("ablate", &["--heads", "3.1,2.0,3.1"]);
    refused(
        &args,
        Duration::from_secs(60),
        &["head 3.1 is listed twice"],
    );
    // The same head in two groups of the same positions adds nothing: a slip.
    let args = on_tiny(
        "circuit",
        &["--group", "a=3.1@last", "--group", "b=2.0,3.1@last"],
    );
    refused(
        &args,
        Duration::from_secs(60),
        &["head 3.1 is in group a and in group b"],
    );
}

/// A copy of the tiny Llama fixture whose config says 3 layers where the checkpoint holds 4.
fn fewer_layers() -> PathBuf {
    let dir = temp_dir("fewer-layers");
    let src = fixture("tiny-llama");
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let cfg = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    assert_eq!(v["num_hidden_layers"], 4);
    v["num_hidden_layers"] = 3.into();
    std::fs::write(dir.join("config.json"), v.to_string()).unwrap();
    dir
}

#[test]
fn a_config_with_fewer_layers_than_the_checkpoint_is_refused() {
    let dir = fewer_layers();
    let (code, err) = info(&dir, &[]);
    assert_one_line_error(
        code,
        &err,
        &[
            "tensor `model.layers.3.",
            "num_hidden_layers is 3",
            "fewer layers",
        ],
    );
}

#[test]
fn a_folder_named_gguf_is_said_to_be_a_folder() {
    let dir = temp_dir("gguf-folder").join("x.gguf");
    std::fs::create_dir_all(&dir).unwrap();
    let (code, err) = info(&dir, &[]);
    assert_one_line_error(code, &err, &["x.gguf is a folder, not a GGUF file"]);
}

fn patch_demo(out: &Path, receiver: &str) {
    let o = Command::new(bin())
        .args(["patch", "--model", demo_model().to_str().unwrap()])
        .args(["--data", demo_data().to_str().unwrap(), "--examples", "12"])
        .args(["--receiver", receiver, "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn resid_pre_of_a_layer_computes_no_row_of_that_layer() {
    let dir = temp_dir("resid-pre");
    let out = dir.join("r.json");
    patch_demo(&out, "resid_pre:2");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(v["rows_computed"], serde_json::json!([0, 1]));
    assert_eq!(v["complete"], true);
    // A head receiver likewise hears only the layers below its own.
    patch_demo(&out.with_file_name("h.json"), "2.1.q");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.with_file_name("h.json")).unwrap())
            .unwrap();
    assert_eq!(v["rows_computed"], serde_json::json!([0, 1]));
}

#[test]
fn huge_figure_sizes_name_the_bound() {
    let dir = temp_dir("plot-size");
    let out = dir.join("r.json");
    patch_demo(&out, "resid_post:2");
    let svg = dir.join("f.svg");
    for (flag, value) in [
        ("--width", "2147483648"),
        ("--height", "4294967295"),
        ("--width", "20001"),
    ] {
        let args: Vec<String> = ["plot", out.to_str().unwrap(), flag, value, "--out"]
            .iter()
            .map(|s| s.to_string())
            .chain([svg.to_str().unwrap().to_string()])
            .collect();
        let what = flag.trim_start_matches("--");
        refused(
            &args,
            Duration::from_secs(20),
            &[&format!("figure {what} {value}: at most 20000 pixels")],
        );
        assert!(!svg.exists());
    }
}
