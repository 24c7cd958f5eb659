//! The head-groups file (`S` in the explorer): its reader's one-line errors, `headhunt show`
//! of it, and `headhunt open` refusing a bad one before the full-screen view starts.

mod common;

use common::{assert_one_line_error, bin, temp_dir};
use headhunt::results::groups::GroupsFile;
use headhunt::results::{HeadGroup, RunRecord};
use std::path::Path;
use std::process::Command;

fn sample() -> GroupsFile {
    GroupsFile::new(
        "models/tiny-gemma2",
        (4, 4),
        vec![
            HeadGroup {
                name: "mover".into(),
                heads: vec![(3, 1), (2, 0)],
            },
            HeadGroup {
                name: "previous token".into(),
                heads: vec![(1, 3)],
            },
        ],
        vec![(2, 2)],
    )
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn a_groups_file_reads_back_as_written() {
    let dir = temp_dir("groups-roundtrip");
    let p = dir.join("groups.json");
    let g = sample();
    g.save(&p, false).unwrap();
    assert_eq!(GroupsFile::load(&p).unwrap(), g);
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(
        text.contains("\"format\": \"headhunt-head-groups\""),
        "{text}"
    );
    assert!(text.contains("\"format_version\": 1"), "{text}");
    // Not a run: the run reader says what it is instead.
    let e = RunRecord::load(&p).unwrap_err().to_string();
    assert!(e.contains("head-groups file, not a run"), "{e}");
}

/// Each broken file: the error is one line naming the file and what is wrong.
#[test]
fn a_bad_groups_file_is_a_one_line_error_naming_the_field() {
    let dir = temp_dir("groups-bad");
    let good = serde_json::to_value(sample()).unwrap();
    let mut cases: Vec<(&str, serde_json::Value, &str)> = Vec::new();
    let mut v = good.clone();
    v["groups"][0]["heads"][0] = serde_json::json!([4, 0]);
    cases.push(("layer.json", v, "`groups[0].heads` names head (4, 0)"));
    let mut v = good.clone();
    v["selected"] = serde_json::json!([[0, 9]]);
    cases.push(("head.json", v, "`selected` names head (0, 9)"));
    let mut v = good.clone();
    v.as_object_mut().unwrap().remove("n_heads");
    cases.push(("missing.json", v, "missing field `n_heads`"));
    let mut v = good.clone();
    v["groups"][1]["name"] = serde_json::json!(" ");
    cases.push(("name.json", v, "`groups[1].name` is empty"));
    let mut v = good.clone();
    v["format"] = serde_json::json!("something-else");
    cases.push(("format.json", v, "field `format` is \"something-else\""));
    for (name, value, want) in cases {
        let p = dir.join(name);
        std::fs::write(&p, value.to_string()).unwrap();
        let e = GroupsFile::load(&p).unwrap_err().to_string();
        assert!(e.contains(name) && e.contains(want), "{name}: {e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
    let p = dir.join("truncated.json");
    std::fs::write(&p, "{\"format\": \"headhunt-head-groups\", ").unwrap();
    let e = GroupsFile::load(&p).unwrap_err().to_string();
    assert!(e.contains("truncated.json: invalid JSON"), "{e}");
}

#[test]
fn show_prints_a_groups_file_and_refuses_to_export_it() {
    let dir = temp_dir("groups-show");
    let p = dir.join("groups-tiny.json");
    sample().save(&p, false).unwrap();
    let (code, out, err) = run(&["show", p.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("head groups of models/tiny-gemma2 (4 layers × 4 heads), saved "),
        "{out}"
    );
    assert_eq!(lines[1], "mover (2): (3,1), (2,0)");
    assert_eq!(lines[2], "previous token (1): (1,3)");
    assert_eq!(lines[3], "selected (1): (2,2)");
    let (code, _, err) = run(&["show", p.to_str().unwrap(), "--csv"]);
    assert_one_line_error(code, &err, &["groups-tiny.json", "no matrices"]);
    // A bad one: one line, the file and the field.
    let mut v = serde_json::to_value(sample()).unwrap();
    v["selected"] = serde_json::json!([[7, 0]]);
    let bad = dir.join("groups-bad.json");
    std::fs::write(&bad, v.to_string()).unwrap();
    let (code, _, err) = run(&["show", bad.to_str().unwrap()]);
    assert_one_line_error(code, &err, &["groups-bad.json", "`selected`", "(7, 0)"]);
}

#[test]
fn open_refuses_a_bad_groups_file_before_the_explorer_starts() {
    let dir = temp_dir("groups-open");
    let mut v = serde_json::to_value(sample()).unwrap();
    v.as_object_mut().unwrap().remove("format_version");
    let bad = dir.join("groups-old.json");
    std::fs::write(&bad, v.to_string()).unwrap();
    let fixture = common::fixture("tiny-gemma2");
    let data = fixture.join("addition.jsonl");
    let (code, _, err) = run(&[
        "open",
        bad.to_str().unwrap(),
        "--model",
        fixture.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    assert_one_line_error(code, &err, &["groups-old.json", "format_version"]);
    assert!(Path::new(&bad).exists());
}
