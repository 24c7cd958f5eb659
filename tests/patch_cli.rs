//! `headhunt patch` and `headhunt show` through the built binary: the saved file, the printed
//! lists, every input error, and Ctrl-C saving a partial result.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn patch(args: &[&str]) -> (i32, String, String) {
    patch_with(&fixture("tiny-gemma2").join("addition.jsonl"), args)
}

/// `headhunt patch` on the tiny-gemma2 fixture with a given dataset.
fn patch_with(data: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let fx = fixture("tiny-gemma2");
    let mut cmd = Command::new(bin());
    cmd.arg("patch")
        .args(["--model", fx.to_str().unwrap()])
        .args(["--data", data.to_str().unwrap()])
        .args(args);
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn one_line_error(code: i32, err: &str, needle: &str) {
    assert_eq!(code, 2, "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains(needle),
        "{err:?} should mention {needle:?}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn saves_a_complete_result_and_prints_the_lists() {
    let dir = temp_dir("patchcli");
    let out = dir.join("run.json");
    let (code, stdout, stderr) = patch(&[
        "--receiver",
        "3.1.v",
        "--out",
        out.to_str().unwrap(),
        "--npy",
    ]);
    assert_eq!(code, 0, "{stderr}");
    // The fixture's baselines are 0.37 apart: r is ill-conditioned, raw effects are shown.
    assert!(
        stdout.contains("ill-conditioned") && stdout.contains("largest |patched - LD_c|"),
        "{stdout}"
    );
    let rec = headhunt::results::RunRecord::load(&out).unwrap();
    assert!(rec.complete);
    // Heads of layer 3 cannot reach a receiver head of layer 3: that row is not computed.
    assert_eq!(rec.rows_computed, vec![0, 1, 2]);
    assert!(
        rec.relative[3].is_none(),
        "the receiver's layer is not computed"
    );
    let data = rec.data.as_ref().unwrap();
    assert_eq!(
        (data.spec.shots, data.spec.offset, data.n_examples),
        (4, 1, 8)
    );
    let model = rec.model.as_ref().unwrap();
    assert_eq!(
        (model.n_layers, model.n_heads, model.dtype.as_str()),
        (4, 4, "f32")
    );
    // The .npy files load back with the same numbers.
    let npy = std::fs::read(dir.join("run.relative.npy")).unwrap();
    let (vals, shape) = headhunt::results::npy::decode_f64(&npy).unwrap();
    assert_eq!(shape, vec![4, 4]);
    assert_eq!(vals[4 + 2], rec.r(1, 2).unwrap());
    // show re-prints it.
    let shown = Command::new(bin())
        .args(["show", out.to_str().unwrap()])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    let lists_run = stdout
        .lines()
        .find(|l| l.starts_with("largest |patched"))
        .unwrap();
    assert!(shown.contains(lists_run), "{shown}");
    // CSV export: one row per head, empty where not computed.
    let csv = Command::new(bin())
        .args(["show", out.to_str().unwrap(), "--csv"])
        .output()
        .unwrap();
    assert!(csv.status.success());
    let text = std::fs::read_to_string(dir.join("run.csv")).unwrap();
    assert_eq!(text.lines().count(), 1 + 16);
    assert!(
        text.starts_with("layer,head,r,patched_logit_diff,r_low,r_high\n3,0,"),
        "{text}"
    );
    // An existing file is not overwritten without --force.
    let (code, _, err) = patch(&["--out", out.to_str().unwrap()]);
    one_line_error(code, &err, "--force");
    let (code, _, err) = patch(&["--out", out.to_str().unwrap(), "--force"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn input_errors_are_one_line() {
    let dir = temp_dir("patcherr");
    let o = dir.join("x.json");
    let o = o.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--receiver", "resid_post:9", "--out", o],
            "layer out of range",
        ),
        (&["--receiver", "2.7.v", "--out", o], "head out of range"),
        (
            &["--receiver", "2.1.x", "--out", o],
            "input must be q, k or v",
        ),
        (
            &["--receiver", "2.1.v", "--begin-layer", "3", "--out", o],
            "--begin-layer 3 is after",
        ),
        // A head hears only layers below its own: from layer 2 no sender reaches 2.1.v.
        (
            &["--receiver", "2.1.v", "--begin-layer", "2", "--out", o],
            "no sender head comes before it",
        ),
        // Several receivers in one value, as the explorer's prompt takes them.
        (
            &["--receiver", "2.1.v,2.9.q", "--out", o],
            "2.9.q: head out of range",
        ),
        (&["--examples", "0", "--out", o], "--examples 0"),
        (&["--batch-size", "0", "--out", o], "--batch-size 0"),
        (&["--examples", "50", "--out", o], "--examples 50"),
        (
            &["--out", "/proc/no/such/dir/x.json"],
            "cannot create folder",
        ),
        (&["--out", dir.to_str().unwrap()], "is a directory"),
    ];
    for (args, needle) in cases {
        let (code, _, err) = patch(args);
        one_line_error(code, &err, needle);
    }
    assert!(
        !std::path::Path::new(o).exists(),
        "nothing written on errors"
    );
}

#[test]
fn ctrl_c_saves_the_finished_rows_marked_partial() {
    let dir = temp_dir("patchint");
    let out = dir.join("partial.json");
    let fx = fixture("tiny-llama");
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/paper/addition/setting1/addition_nmax9_offset1.jsonl");
    // The literal algorithm on 100 examples, one per batch: a few seconds per sender layer.
    let mut child = Command::new(bin())
        .args([
            "patch",
            "--model",
            fx.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
        ])
        .args([
            "--algorithm",
            "reference",
            "--batch-size",
            "1",
            "--examples",
            "100",
        ])
        .args(["--out", out.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    // Wait for the first finished sender layer, then interrupt.
    loop {
        let line = lines
            .next()
            .expect("stderr closed before a layer finished")
            .unwrap();
        if line.starts_with("sender layer ") {
            break;
        }
    }
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("cancelled: ")), "{rest:?}");
    let rec = headhunt::results::RunRecord::load(&out).unwrap();
    assert!(!rec.complete);
    assert!(
        !rec.rows_computed.is_empty() && rec.rows_computed.len() < 4,
        "{:?}",
        rec.rows_computed
    );
    for l in 0..4 {
        assert_eq!(rec.relative[l].is_some(), rec.rows_computed.contains(&l));
    }
    let shown = Command::new(bin())
        .args(["show", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&shown.stdout).contains("PARTIAL"));
}

/// A well-conditioned run (the demo model) prints the heatmap of r and the paper's two lists.
#[test]
fn prints_the_papers_head_lists() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = temp_dir("patchlists");
    let out = Command::new(bin())
        .args([
            "patch",
            "--model",
            root.join("assets/demo-model").to_str().unwrap(),
        ])
        .args([
            "--data",
            root.join("data/paper/addition/setting1/addition_nmax9_offset1.jsonl")
                .to_str()
                .unwrap(),
        ])
        .args(["--examples", "12", "--hi", "0.1", "--lo", "0.03"])
        .args(["--out", dir.join("demo.json").to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains("ill-conditioned"), "{stdout}");
    assert!(
        stdout.contains("r = (patched - LD_c)/(LD_c - LD_n) in %"),
        "{stdout}"
    );
    assert!(
        stdout.contains("·"),
        "rows above the receiver are marked not computed: {stdout}"
    );
    let first = stdout
        .lines()
        .find(|l| l.starts_with("|r| > 0.1: "))
        .expect("first list");
    assert!(
        first.contains("(1,3) -"),
        "the demo's strongest head leads: {first}"
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("0.03 < |r| <= 0.1: ")),
        "{stdout}"
    );
}

/// Identical normal and contrast answers (base-k addition, setting1) make r 0/0: the result
/// still saves and loads (NaN cells are written as null).
#[test]
fn undefined_r_saves_and_loads() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = temp_dir("patchnan");
    let out = dir.join("nan.json");
    let data = root.join("data/paper/addition_base/setting1/addition_ndigits2_base7.jsonl");
    let (code, _, err) = patch_with(&data, &["--examples", "8", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let rec = headhunt::results::RunRecord::load(&out).unwrap();
    assert_eq!(rec.normal_logit_diff, rec.contrast_logit_diff);
    assert!(rec.r(0, 0).unwrap().is_nan());
    assert!(rec.patched(0, 0).unwrap().is_finite());
}

#[test]
fn a_sweep_that_would_not_fit_is_refused_before_its_caches() {
    let dir = temp_dir("maxmem");
    let out = dir.join("run.json");
    let (code, _, err) = patch(&["--max-memory", "1MiB", "--out", out.to_str().unwrap()]);
    one_line_error(code, &err, "allowed by --max-memory");
    assert!(
        err.contains("needs about") && err.contains("weights"),
        "{err}"
    );
    assert!(!out.exists(), "nothing is saved by a refused sweep");
    let (code, _, err) = patch(&["--max-memory", "12XB"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--max-memory") && err.contains("24GiB"),
        "{err}"
    );
    // A cap the sweep fits in runs as before.
    let (code, _, err) = patch(&["--max-memory", "8GiB", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
}

/// The printed table and lists name the run's metric: a KL sweep never reads as a logit
/// difference (`KL_c`, nats), in `patch` and in `show`.
#[test]
fn the_printed_table_names_the_metric() {
    let dir = temp_dir("patchkltext");
    let out = dir.join("kl.json");
    let (code, stdout, err) = patch(&["--metric", "kl", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let shown = Command::new(bin())
        .args(["show", out.to_str().unwrap()])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout).to_string();
    for text in [&stdout, &shown] {
        assert!(!text.contains("LD_c"), "{text}");
        assert!(
            text.contains("r = (patched - KL_c)/(KL_c - KL_n) in %")
                || text.contains("largest |patched - KL_c| (nats)"),
            "{text}"
        );
    }
}

/// The banner counts the layers that send: a head receiver's own layer sends nothing to it.
#[test]
fn the_banner_names_the_sender_layers() {
    let dir = temp_dir("patchbanner");
    let out = dir.join("q.json");
    let (code, _, err) = patch(&["--receiver", "2.1.q", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("8 senders (layers 0..=1 × 4 heads)"), "{err}");
}
