//! `headhunt circuit`, `ablate` and `fv` driven as a user runs them: their JSON against the
//! fixture's TransformerLens references, and bad input as one-line errors with exit code 2.

mod common;

use common::*;
use serde_json::Value;
use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn base(cmd: &str) -> Vec<String> {
    let f = fixture("tiny-llama");
    vec![
        cmd.into(),
        "--model".into(),
        f.to_str().unwrap().into(),
        "--data".into(),
        f.join("addition.jsonl").to_str().unwrap().into(),
        "--shots".into(),
        "4".into(),
        "--offset".into(),
        "1".into(),
        "--examples".into(),
        "8".into(),
    ]
}

fn with(cmd: &str, extra: &[&str]) -> (i32, String, String) {
    let mut a = base(cmd);
    a.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = a.iter().map(|s| s.as_str()).collect();
    run(&refs)
}

fn expected() -> Value {
    let p = fixture("tiny-llama").join("expected_circuit.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn read(p: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn close(what: &str, a: &Value, b: &Value) {
    let (x, y) = (a.as_f64().unwrap(), b.as_f64().unwrap());
    assert!((x - y).abs() <= 1e-4, "{what}: {x} vs TransformerLens {y}");
}

#[test]
fn circuit_json_matches_the_reference() {
    let dir = temp_dir("circuit-cli");
    let out = dir.join("c.json");
    let (code, stdout, err) = with(
        "circuit",
        &[
            "--group",
            "fi=3.1,2.0@tok:=",
            "--group",
            "pt=2.7,1.2@answers",
            "--group",
            "cons=3.0@tok:=",
            "--knockout",
            "3.1",
            "--knockout",
            "2.7+3.0",
            "--minimality",
            "--greedy",
            "--greedy-rollouts",
            "2",
            "--batch-size",
            "3",
            "--json",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("faithfulness"), "{stdout}");
    let j = read(&out);
    let e = expected();
    assert_eq!(j["format"], "headhunt-circuit");
    assert_eq!(j["format_version"], 1);
    for k in ["LD_normal", "LD_contrast", "F_C", "F_M", "faithfulness"] {
        close(k, &j[k], &e[k]);
    }
    assert_eq!(j["groups"][0]["positions"], "tok:=");
    assert_eq!(j["groups"][1]["positions"], "answers");
    assert_eq!(j["groups"][1]["heads"], serde_json::json!([[2, 7], [1, 2]]));
    for (got, want) in j["completeness"]
        .as_array()
        .unwrap()
        .iter()
        .zip(e["completeness"].as_array().unwrap())
    {
        assert_eq!(got["K"], want["K"]);
        for k in ["F_C_minus_K", "F_M_minus_K", "gap"] {
            close(k, &got[k], &want[k]);
        }
    }
    assert_eq!(j["minimality"].as_array().unwrap().len(), 5);
    assert_eq!(j["greedy"]["sets"].as_array().unwrap().len(), 2);
    assert!(j["model"]["n_layers"].is_u64() && j["data"]["n_examples"] == 8);
    // No overwrite without --force.
    let (code, _, err) = with(
        "circuit",
        &["--group", "fi=3.1@all", "--json", out.to_str().unwrap()],
    );
    assert_one_line_error(code, &err, &["--json", "--force"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn ablate_and_fv_json_match_the_reference() {
    let dir = temp_dir("ablate-cli");
    let e = expected();
    let out = dir.join("a.json");
    let (code, _, err) = with(
        "ablate",
        &[
            "--heads",
            "3.1,2.0",
            "--random-groups",
            "3",
            "--json",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let j = read(&out);
    let want = &e["ablation"]["runs"][1];
    assert_eq!(j["format"], "headhunt-ablation");
    assert_eq!(j["heads"], want["heads"]);
    for k in ["logit_diff", "acc_normal_answer", "acc_contrast_answer"] {
        close(k, &j[k], &want[k]);
        close(k, &j["baseline"][k], &e["ablation"]["runs"][0][k]);
    }
    let rg = &j["random_groups"];
    assert_eq!(
        (rg["n"].as_u64(), rg["size"].as_u64(), rg["seed"].as_u64()),
        (Some(3), Some(2), Some(42))
    );
    assert_eq!(
        rg["acc_contrast_answer"]["values"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert!(j["acc_contrast_answer_full_vocab"].is_f64());

    let out = dir.join("f.json");
    let (code, _, err) = with(
        "fv",
        &["--heads", "3.1,2.0", "--json", out.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    let j = read(&out);
    assert_eq!(j["format"], "headhunt-fv");
    assert_eq!(j["naive_prompts"], e["function_vectors"]["naive_prompts"]);
    assert_eq!(j["digits"].as_array().unwrap().len(), 10);
    for key in ["3.1", "2.0", "all"] {
        for i in 0..10 {
            for jx in 0..10 {
                close(
                    &format!("Δ {key}"),
                    &j["delta"][key][i][jx],
                    &e["function_vectors"]["delta"][key][i][jx],
                );
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "circuit",
            &["--group", "fi=9.0@all"],
            &["--group", "9.0", "4 layers"],
        ),
        (
            "circuit",
            &["--group", "fi=3.1@nowhere"],
            &["--group", "@nowhere", "answers"],
        ),
        ("circuit", &["--group", "fi3.1"], &["--group", "NAME=L.H"]),
        (
            "circuit",
            &["--group", "fi=3.x@all"],
            &["--group", "LAYER.HEAD"],
        ),
        (
            "circuit",
            &["--group", "fi=3.1@tok:+="],
            &["tok:+=", "exactly one"],
        ),
        (
            "circuit",
            &["--group", "fi=3.1@all", "--knockout", "3.1+7.7"],
            &["--knockout", "7.7"],
        ),
        ("ablate", &["--heads", "1.9"], &["--heads", "1.9"]),
        (
            "fv",
            &["--heads", "3.1", "--fv-from", "middle"],
            &["--fv-from", "middle"],
        ),
        (
            "fv",
            &["--heads", "3.1", "--add-at", "-99"],
            &["--add-at -99", "tokens"],
        ),
    ];
    for (cmd, extra, needles) in cases {
        let (code, _, err) = with(cmd, extra);
        assert_one_line_error(code, &err, needles);
    }
}

/// The tables stay in columns however long a knock-out set is: every row's numbers end
/// where the header's columns end.
#[test]
fn long_knockout_sets_keep_the_table_aligned() {
    let long = "3.1+2.0+2.7+1.2+3.0+0.1+0.2+0.3";
    let (code, stdout, err) = with(
        "circuit",
        &[
            "--group",
            "fi=3.1,2.0,2.7,1.2,3.0,0.1,0.2,0.3@all",
            "--knockout",
            "3.1",
            "--knockout",
            long,
        ],
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = stdout.lines().collect();
    let h = lines
        .iter()
        .position(|l| l.starts_with("knock-out K"))
        .unwrap();
    let width = lines[h].chars().count();
    for row in &lines[h + 1..h + 3] {
        assert_eq!(row.chars().count(), width, "{stdout}");
    }
    assert!(lines[h + 2].starts_with(long), "{stdout}");
    // the group line's positions column is where it would be for a short group
    assert!(stdout.contains("@all"), "{stdout}");
}
