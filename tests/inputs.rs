//! One input path for every headhunt file (issue 23, items 7, 9, 10 in figures, 12, 13):
//! `show`, `plot`, `open` (its loader) and the gallery read runs, groups, analysis and
//! attention files through `results::read`, which names a wrong-typed field, refuses unknown
//! versions, shapes that cannot be drawn and accuracies outside [0, 1], never blocks on a
//! FIFO nor reads a device without bound; figures show control characters escaped.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> Value {
    let text = std::fs::read_to_string(root().join(rel)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A run of the demo model (3 layers × 4 heads), as committed.
fn run_json() -> Value {
    read("assets/demo-analysis/resid_post_2.json")
}

fn groups_json() -> Value {
    json!({
        "format": "headhunt-head-groups", "format_version": 1, "headhunt_version": "0.1.0",
        "created": "2026-01-01T00:00:00Z", "model": "assets/demo-model",
        "n_layers": 3, "n_heads": 4,
        "groups": [{"name": "mover", "heads": [[1, 3], [1, 2]]}], "selected": [[0, 0]],
    })
}

fn analysis_json(kind: &str) -> Value {
    read(&format!("tests/data/plot/{kind}.json"))
}

/// Attention of heads 1.3 and 0.0 of the demo model on a 3-token prompt.
fn attention_json() -> Value {
    let pattern = json!([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5]]);
    json!({
        "format": "headhunt-attention", "format_version": 1,
        "model": run_json()["model"].clone(), "data": null,
        "run": "contrast", "prompts": {"mean": {"requested": 4, "used": 4}},
        "tokens": ["1", "+", "="],
        "heads": [{"head": [1, 3], "pattern": pattern}, {"head": [0, 0], "pattern": pattern}],
    })
}

fn write(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs `cmd` and waits at most 20 s (a FIFO must not block it): the output.
fn within(mut cmd: Command) -> Output {
    let mut child = cmd
        .env("RUST_BACKTRACE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// `headhunt ARGS`: exit code, stdout, stderr.
fn hh(args: &[&str]) -> (i32, String, String) {
    let mut c = Command::new(bin());
    c.args(args);
    let o = within(c);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

/// `show FILE` and `plot FILE` both fail with one line naming the file and `needles`, and
/// `plot` writes nothing.
fn refused_by_show_and_plot(file: &Path, needles: &[&str]) {
    let name = file.file_name().unwrap().to_str().unwrap();
    let mut all = vec![name];
    all.extend(needles);
    let (code, _, err) = hh(&["show", s(file)]);
    assert_one_line_error(code, &err, &all);
    let out = file.with_extension("test.svg");
    let (code, _, err) = hh(&["plot", s(file), "--out", s(&out)]);
    assert_one_line_error(code, &err, &all);
    assert!(!out.exists(), "plot wrote {}", out.display());
}

/// `v` with the field at `pointer` (a JSON pointer) set to `x` (added to its object when
/// absent).
fn with(mut v: Value, pointer: &str, x: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    match v.pointer_mut(parent) {
        Some(Value::Object(m)) => {
            m.insert(key.to_string(), x);
        }
        Some(Value::Array(a)) => a[key.parse::<usize>().unwrap()] = x,
        _ => panic!("no {parent}"),
    }
    v
}

#[test]
fn wrong_typed_fields_are_named_for_every_kind() {
    let dir = temp_dir("inputs-types");
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "run.json",
            with(run_json(), "/n_layers", json!("4")),
            "field `n_layers`",
        ),
        (
            "run-data.json",
            with(run_json(), "/data/shots", json!("4")),
            "field `data.shots`",
        ),
        (
            "run-cell.json",
            with(run_json(), "/relative/2/1", json!("x")),
            "field `relative[2][1]`",
        ),
        (
            "groups.json",
            with(groups_json(), "/n_layers", json!("3")),
            "field `n_layers`",
        ),
        (
            "circuit.json",
            with(
                analysis_json("circuit"),
                "/minimality/2/value",
                json!("big"),
            ),
            "field `minimality[2].value`",
        ),
        (
            "ablation.json",
            with(analysis_json("ablation"), "/model/n_layers", json!("42")),
            "field `model.n_layers`",
        ),
        (
            "fv.json",
            with(analysis_json("fv"), "/delta/all/0/3", json!([1])),
            "field `delta.all[0][3]`",
        ),
        (
            "attention.json",
            with(attention_json(), "/heads/1/head/0", json!(-1)),
            "field `heads[1].head[0]`",
        ),
    ];
    for (name, v, field) in cases {
        let p = write(&dir, name, &v);
        refused_by_show_and_plot(&p, &[field]);
    }
}

#[test]
fn format_versions_0_and_newer_are_refused_by_show_plot_open_and_the_gallery() {
    let dir = temp_dir("inputs-versions");
    let kinds: Vec<(&str, Value, &str)> = vec![
        ("run", run_json(), "headhunt-path-patching"),
        ("groups", groups_json(), "headhunt-head-groups"),
        ("circuit", analysis_json("circuit"), "headhunt-circuit"),
        ("ablation", analysis_json("ablation"), "headhunt-ablation"),
        ("fv", analysis_json("fv"), "headhunt-fv"),
        ("attention", attention_json(), "headhunt-attention"),
    ];
    for (kind, v, format) in kinds {
        // The file as it is loads.
        let good = write(&dir, &format!("{kind}-1.json"), &v);
        headhunt::results::SavedFile::load(&good).unwrap_or_else(|e| panic!("{e}"));
        for version in [0, 2] {
            let v = with(v.clone(), "/format_version", json!(version));
            let p = write(&dir, &format!("{kind}-{version}.json"), &v);
            let is = format!("field `format_version` is {version}");
            let reads = format!("this headhunt reads version 1 of {format}");
            refused_by_show_and_plot(&p, &[&is, &reads]);
            // `headhunt open` loads through this before the terminal switches.
            let e = headhunt::results::SavedFile::load(&p)
                .unwrap_err()
                .to_string();
            assert!(e.contains(&is) && e.contains(&reads), "{e}");
        }
    }
    let entries = headhunt::tui::app::scan_results(std::slice::from_ref(&dir));
    assert_eq!(entries.len(), 18);
    for e in &entries {
        let name = e.path.file_name().unwrap().to_string_lossy().to_string();
        let refused = name.ends_with("-0.json") || name.ends_with("-2.json");
        assert_eq!(e.label().contains("unreadable"), refused, "{}", e.label());
    }
}

#[test]
fn a_result_of_no_layers_or_no_heads_is_one_line_error() {
    let dir = temp_dir("inputs-empty");
    let mut v = run_json();
    for f in ["relative", "patched_logit_diff", "rows_computed"] {
        v[f] = json!([]);
    }
    v["n_layers"] = json!(0);
    v["model"]["n_layers"] = json!(0);
    v["receiver"]["layers"] = json!([0]);
    let p = write(&dir, "zero-layers.json", &v);
    refused_by_show_and_plot(&p, &["field `n_layers` is 0"]);
    let mut v = run_json();
    v["n_heads"] = json!(0);
    let p = write(&dir, "zero-heads.json", &v);
    refused_by_show_and_plot(&p, &["field `n_heads` is 0"]);
    // A groups file and an attention file of no heads.
    let p = write(
        &dir,
        "groups.json",
        &with(groups_json(), "/n_layers", json!(0)),
    );
    refused_by_show_and_plot(&p, &["field `n_layers` is 0"]);
    let p = write(
        &dir,
        "att.json",
        &with(attention_json(), "/heads", json!([])),
    );
    refused_by_show_and_plot(&p, &["field `heads` is empty"]);
}

/// The figure's own check, for a record built in memory: an error, not a panic.
#[test]
fn the_heatmap_of_an_empty_record_is_an_error() {
    let path = root().join("assets/demo-analysis/resid_post_2.json");
    let mut rec = headhunt::results::RunRecord::load(&path).unwrap();
    rec.n_layers = 0;
    rec.relative.clear();
    rec.patched_logit_diff = Some(Vec::new());
    rec.rows_computed.clear();
    let opts = headhunt::plot::heatmap::HeatmapOptions::default();
    let e = headhunt::plot::heatmap::Heatmap::single(&rec, &opts).unwrap_err();
    assert!(e.to_string().contains("0 layers"), "{e}");
}

#[test]
fn heads_outside_the_shape_and_accuracies_outside_0_1_are_refused() {
    let dir = temp_dir("inputs-ranges");
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "ablation.json",
            with(analysis_json("ablation"), "/acc_normal_answer", json!(5.0)),
            "field `acc_normal_answer` is 5",
        ),
        (
            "ablation-random.json",
            with(
                analysis_json("ablation"),
                "/random_groups/acc_contrast_answer/values/1",
                json!(-0.5),
            ),
            "field `random_groups.acc_contrast_answer.values[1]` is -0.5",
        ),
        (
            "ablation-count.json",
            with(analysis_json("ablation"), "/random_groups/n", json!(7)),
            "field `random_groups`",
        ),
        (
            "run-groups.json",
            with(
                run_json(),
                "/groups",
                json!([{"name": "g", "heads": [[3, 0]]}]),
            ),
            "field `groups[0].heads` names head (3, 0)",
        ),
        (
            "run-selected.json",
            with(run_json(), "/selected", json!([[0, 4]])),
            "field `selected` names head (0, 4)",
        ),
        (
            "circuit-head.json",
            with(
                analysis_json("circuit"),
                "/minimality/0/head",
                json!([42, 0]),
            ),
            "field `minimality[0].head` names head (42, 0)",
        ),
        (
            "attention-weight.json",
            with(attention_json(), "/heads/0/pattern/2/1", json!(3.0)),
            "field `heads[0].pattern[2][1]` is 3",
        ),
    ];
    for (name, v, needle) in cases {
        let p = write(&dir, name, &v);
        refused_by_show_and_plot(&p, &[needle]);
    }
    // null cells stay NaN (not computed), and a file with one still loads.
    let v = with(run_json(), "/relative/2/1", Value::Null);
    let p = write(&dir, "nan-cell.json", &v);
    let (code, _, err) = hh(&["show", s(&p)]);
    assert_eq!(code, 0, "{err}");
}

fn mkfifo(p: &Path) {
    assert!(Command::new("mkfifo").arg(p).status().unwrap().success());
}

#[test]
fn fifos_devices_sockets_and_folders_end_at_once_with_one_line() {
    let dir = temp_dir("inputs-special");
    let fifo = dir.join("fifo.json");
    mkfifo(&fifo);
    let zero = dir.join("zero.json");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let socket = dir.join("socket.json");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let folder = dir.join("folder.json");
    std::fs::create_dir(&folder).unwrap();
    let cases = [
        (&fifo, "a FIFO"),
        (&zero, "a character device (a link to /dev/zero)"),
        (&socket, "a socket"),
        (&folder, "a folder"),
    ];
    for (p, what) in cases {
        let started = Instant::now();
        refused_by_show_and_plot(p, &[what, "not a regular file"]);
        assert!(started.elapsed() < Duration::from_secs(10), "{what}");
    }
    // A file above the size cap is refused by its size, without reading it (sparse).
    let big = dir.join("big.json");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(300 << 20).unwrap();
    refused_by_show_and_plot(&big, &["314572800 bytes", "268435456 bytes (256 MiB)"]);
}

#[test]
fn the_gallery_lists_a_fifo_and_a_device_link_without_blocking() {
    let dir = temp_dir("inputs-gallery");
    mkfifo(&dir.join("a-fifo.json"));
    std::os::unix::fs::symlink("/dev/zero", dir.join("b-zero.json")).unwrap();
    write(&dir, "c-run.json", &run_json());
    write(&dir, "d-attention.json", &attention_json());
    let (tx, rx) = std::sync::mpsc::channel();
    let d = dir.clone();
    // On a thread: a gallery that blocks must fail this test, not hang it.
    std::thread::spawn(move || {
        let _ = tx.send(headhunt::tui::app::scan_results(&[d]));
    });
    let entries = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the gallery's listing did not return within 10 s");
    let labels: Vec<String> = entries.iter().map(|e| e.label()).collect();
    assert_eq!(entries.len(), 4, "{labels:?}");
    assert!(labels[0].contains("unreadable"), "{labels:?}");
    assert!(labels[1].contains("unreadable"), "{labels:?}");
    let why = |i: usize| {
        entries[i]
            .record
            .as_ref()
            .err()
            .cloned()
            .unwrap_or_default()
    };
    assert!(why(0).contains("FIFO"), "{}", why(0));
    assert!(why(1).contains("/dev/zero"), "{}", why(1));
    assert!(entries[2].record.is_ok(), "{labels:?}");
    assert!(labels[3].contains("attention"), "{labels:?}");
}

#[test]
fn show_prints_an_attention_file() {
    let dir = temp_dir("inputs-show-attention");
    let p = write(&dir, "att.json", &attention_json());
    let (code, out, err) = hh(&["show", s(&p)]);
    assert_eq!(code, 0, "{err}");
    for needle in [
        "attention patterns of assets/demo-model (3 layers × 4 heads)",
        "mean over 4 contrast prompts",
        "1+=",
        "1.3, 0.0",
        "2 heads × 3 queries × 3 keys",
    ] {
        assert!(out.contains(needle), "{needle:?} not in {out}");
    }
    let (code, _, err) = hh(&["show", s(&p), "--npy"]);
    assert_one_line_error(
        code,
        &err,
        &["att.json", "an attention file has no matrices"],
    );
}

/// A label that retitles and clears a terminal.
const HOSTILE: &str = "m\u{1b}]0;x\u{7}\u{1b}[2J";

#[test]
fn control_characters_from_files_are_escaped_in_figures_and_show() {
    let dir = temp_dir("inputs-escapes");
    let mut v = run_json();
    v["model"]["label"] = json!(HOSTILE);
    v["model"]["origin"] = json!({"kind": "local", "path": HOSTILE});
    v["groups"] = json!([{"name": format!("g{HOSTILE}"), "heads": [[1, 3]]}]);
    let p = write(&dir, "hostile.json", &v);
    let svg = dir.join("hostile.svg");
    let (code, _, err) = hh(&["plot", s(&p), "--out", s(&svg)]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(
        !text.contains(['\u{1b}', '\u{7}']),
        "raw control characters in the SVG"
    );
    assert!(
        text.contains("m\\x1b]0;x\\x07\\x1b[2J"),
        "not shown escaped"
    );
    roxmltree::Document::parse(&text).expect("the SVG is valid XML");
    let png = dir.join("hostile.png");
    let (code, _, err) = hh(&["plot", s(&p), "--out", s(&png)]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = hh(&["show", s(&p)]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains(['\u{1b}', '\u{7}']), "raw escapes: {out:?}");
    assert!(out.contains("m\\x1b]0;x\\x07\\x1b[2J"), "{out}");
    // Tokens of an attention figure too.
    let att = with(attention_json(), "/tokens/1", json!("+\u{1b}[31m"));
    let p = write(&dir, "att.json", &att);
    let svg = dir.join("att.svg");
    let (code, _, err) = hh(&["plot", s(&p), "--out", s(&svg)]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(!text.contains('\u{1b}') && text.contains("+\\x1b[31m"));
    roxmltree::Document::parse(&text).expect("the SVG is valid XML");
}
