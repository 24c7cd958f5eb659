//! Function vectors read what the data answers: the ten digits only for the addition task;
//! any other task names its read-out tokens and naive prompts, or is refused (never a silent
//! grid of digit logits).

mod common;

use common::*;
use std::process::Command;

fn fv(data: &std::path::Path, extra: &[&str]) -> (i32, String, String) {
    let o = Command::new(bin())
        .args(["fv", "--model"])
        .arg(fixture("tiny-llama"))
        .arg("--data")
        .arg(data)
        .args(["--heads", "1.1,2.0"])
        .args(extra)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

#[test]
fn prompt_pairs_name_their_readout_or_are_refused() {
    let dir = temp_dir("fv-readout");
    let data = dir.join("pairs.jsonl");
    let row = |n: &str, a: &str, c: &str, b: &str| {
        format!(
            "{{\"normal_input\": \"{n}\", \"normal_output\": \"{a}\", \"contrast_input\": \"{c}\", \"contrast_output\": \"{b}\"}}\n"
        )
    };
    let text = row("1+1=", "2", "1+2=", "3") + &row("2+2=", "4", "2+3=", "5");
    std::fs::write(&data, text).unwrap();
    // No read-out: refused, naming the flags.
    let (code, _, err) = fv(&data, &[]);
    assert_one_line_error(code, &err, &["--readout", "ten digits"]);
    // A read-out but the paper's digit prompts: refused too.
    let (code, _, err) = fv(&data, &["--readout", "2", "--readout", "3"]);
    assert_one_line_error(code, &err, &["--naive-prompt"]);
    // A read-out of several tokens, or twice the same: refused.
    let naive = ["--naive-prompt", "3+3=", "--naive-prompt", "4+1="];
    let (code, _, err) = fv(&data, &[&["--readout", "23"][..], &naive].concat());
    assert_one_line_error(code, &err, &["\"23\" is 2 tokens"]);
    let (code, _, err) = fv(
        &data,
        &[&["--readout", "2", "--readout", "2"][..], &naive].concat(),
    );
    assert_one_line_error(code, &err, &["twice"]);
    // Named: the grid's columns are the read-out tokens, in the file too.
    let out = dir.join("fv.json");
    let args = [
        &["--readout", "2", "--readout", "3", "--readout", "6"][..],
        &naive,
        &["--json", out.to_str().unwrap()],
    ]
    .concat();
    let (code, stdout, err) = fv(&data, &args);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.contains("columns: read-out token"), "{stdout}");
    assert!(!stdout.contains("shift s"), "{stdout}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(v["digits"], serde_json::json!(["2", "3", "6"]));
    assert_eq!(v["delta"]["all"].as_array().unwrap().len(), 2);
    assert_eq!(v["delta"]["all"][0].as_array().unwrap().len(), 3);
    assert!(v["shifts"].is_null());
}
