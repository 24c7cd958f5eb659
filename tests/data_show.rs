//! `headhunt data show` through the built binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn data(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(rel)
        .display()
        .to_string()
}

fn show(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(common::bin())
        .args(["data", "show"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn without_a_model_prints_the_pairs() {
    let f = data("paper/addition/setting1/addition_nmax9_offset1.jsonl");
    let (code, out, err) = show(&["--data", &f, "--shots", "4", "--offset", "1"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("task       addition (off-by-k), detected\n"),
        "{out}"
    );
    assert!(out.contains("examples   100 of 100\n"), "{out}");
    assert!(
        out.contains("offset     +1 (contrast lines and answer: a+b+1)\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "example at line 1 (index 0)\n  normal    4+3=7↵3+2=5↵6+0=6↵3+3=6↵1+0=   answer \"1\"\n  \
             contrast  4+3=8↵3+2=6↵6+0=7↵3+3=7↵1+0=   answer \"2\"\n"
        ),
        "{out}"
    );
    // Three pairs by default.
    assert_eq!(out.matches("example at line").count(), 3);
    assert!(out
        .contains("summary: 100 example(s), 4 shots, offset +1, prompt lengths 28..28 characters"));
    assert!(!out.contains(" tokens ["), "{out}");
}

#[test]
fn with_a_model_prints_tokens_and_answer_ids() {
    let f = data("paper/addition/setting1/addition_nmax9_offset-2.jsonl");
    let model = common::fixture("tiny-gemma2");
    let (code, out, err) = show(&[
        "--data",
        &f,
        "--offset=-2",
        "--model",
        model.to_str().unwrap(),
        "--examples",
        "2",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("examples   2 of 100\n"), "{out}");
    assert!(out.contains("(adds BOS <bos> (id 2))"), "{out}");
    assert_eq!(out.matches("example at line").count(), 2);
    let normal_tokens = out
        .lines()
        .find(|l| l.starts_with("  normal     29 tokens [<bos>]["))
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(normal_tokens.matches('[').count(), 29);
    assert!(normal_tokens.contains("][↵]["));
    assert!(out.contains("  answers   normal \""), "{out}");
    assert!(out.contains("(last of [<bos>]["), "{out}");
    assert!(out.contains(
        "summary: 2 example(s), 4 shots, offset -2, prompt lengths in tokens (examples): 29 (2), \
         2 kept, 0 skipped, 0 multi-token answer(s)"
    ));
}

#[test]
fn tokenizer_alone_and_multi_token_warnings() {
    let f = data("paper/addition/normal/addition_nmax99_offset1.jsonl");
    let tok = common::fixtures_dir().join("../models/qwen2.5-coder-0.5b-instruct/tokenizer.json");
    let (code, out, err) = show(&[
        "--data",
        &f,
        "--tokenizer",
        tok.to_str().unwrap(),
        "--examples",
        "5",
        "--print",
        "1",
        "--answer-token",
        "first",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("(adds no BOS)"), "{out}");
    assert!(
        out.contains("answer     first token of the answer"),
        "{out}"
    );
    assert!(out.contains(
        "warning: 5 example(s) have an answer that spans several tokens (line(s) 1, 2, 3, 4, 5); \
         the metric reads only its first token"
    ));
}

#[test]
fn cipher_base_and_pairs_say_what_offset_means() {
    let (code, out, _) = show(&[
        "--data",
        &data("paper/cipher/normal/cipher_maxlen1_offset5.jsonl"),
        "--print",
        "1",
    ]);
    assert_eq!(code, Some(0));
    assert!(out.contains("task       Caesar cipher, detected"), "{out}");
    assert!(
        out.contains("offset     +5, the file's Caesar shift"),
        "{out}"
    );

    let (code, out, _) = show(&[
        "--data",
        &data("paper/addition_base/setting1/addition_ndigits2_base9.jsonl"),
        "--offset",
        "3",
        "--print",
        "0",
    ]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("task       base-k addition (base 9), detected"),
        "{out}"
    );
    assert!(
        out.contains("offset     not used, --offset 3 ignored"),
        "{out}"
    );

    // setting1 has no carry in the last digit: decimal and base-k answers agree everywhere.
    let tok = common::fixture("tiny-gemma2").join("tokenizer.json");
    let (code, out, _) = show(&[
        "--data",
        &data("paper/addition_base/setting1/addition_ndigits2_base9.jsonl"),
        "--tokenizer",
        tok.to_str().unwrap(),
        "--print",
        "0",
    ]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("warning: 100 example(s) have the same normal and contrast answer token"),
        "{out}"
    );

    let (code, out, _) = show(&[
        "--data",
        &data("increment_plus1_8shot.jsonl"),
        "--print",
        "1",
    ]);
    assert_eq!(code, Some(0));
    assert!(out.contains("task       prompt pairs, detected"), "{out}");
    assert!(out.contains("shots      not used"), "{out}");
    assert!(out.contains("  normal    0=0↵4=4↵4=4↵8=8↵2=2↵2=2↵4=4↵6=6↵3=   answer \"3\""));
}

fn mismatch_file() -> PathBuf {
    let p = common::temp_dir("show-mismatch").join("pairs.jsonl");
    std::fs::write(
        &p,
        concat!(
            r#"{"normal_input": "1+1=", "normal_output": "2", "contrast_input": "1+1=", "contrast_output": "3"}"#,
            "\n",
            r#"{"normal_input": "5+5=10\n1+1=", "normal_output": "2", "contrast_input": "5+5=9\n1+1=", "contrast_output": "1"}"#,
            "\n"
        ),
    )
    .unwrap();
    p
}

#[test]
fn mismatched_lengths_fail_or_are_skipped() {
    let f = mismatch_file();
    let tok = common::fixture("tiny-qwen2").join("tokenizer.json");
    let args = [
        "--data",
        f.to_str().unwrap(),
        "--tokenizer",
        tok.to_str().unwrap(),
    ];
    let (code, out, err) = show(&args);
    assert_eq!(code, Some(2));
    // The pairs are still shown, the error comes last, on one line.
    assert!(out.contains("lengths differ (12 vs 11 tokens)"), "{out}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with(&format!(
        "error: {}: normal and contrast prompts tokenize to different lengths in 1 example(s), \
         line(s) 2;",
        f.display()
    )));

    let (code, out, err) = show(&[&args[..], &["--skip-mismatched"]].concat());
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(
        "warning: skipped 1 example(s) whose normal and contrast prompts tokenize to different \
         lengths (line(s) 2)"
    ));
    assert!(out.contains("1 kept, 1 skipped"), "{out}");
}

#[test]
fn errors_are_one_line_with_exit_code_2() {
    let dir = common::temp_dir("show-errors");
    let bad = dir.join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"demonstration\": [[1, 2]], \"inference\": [1, 2]}\n{oops\n",
    )
    .unwrap();
    let empty = dir.join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let b = bad.display().to_string();
    let e = empty.display().to_string();
    let f = data("paper/addition/setting1/addition_nmax9_offset1.jsonl");
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["--data", &b, "--shots", "1"],
            format!("error: {b}:2: invalid JSON: "),
        ),
        (
            vec!["--data", &b, "--shots", "2"],
            format!(
                "error: {b}:1: field `demonstration` has 1 demonstration(s), fewer than --shots 2"
            ),
        ),
        (
            vec!["--data", &e],
            format!("error: {e}: the file is empty (expected one JSON example per line)"),
        ),
        (
            vec!["--data", &f, "--examples", "101"],
            format!("error: {f}: --examples 101 is more than the 100 example(s) in the file"),
        ),
        (
            vec!["--data", &f, "--model", "/nonexistent/model"],
            "error: model not found: /nonexistent/model is not a folder or file here (a hub id looks like org/name)".to_string(),
        ),
    ];
    for (args, want) in cases {
        let (code, _, err) = show(&args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with(&want), "{args:?}:\n{err}\nwanted {want}");
    }
}
