//! Prompt pairs built from the shipped data files, against hand-written strings (one per task),
//! task detection and the CLI's dataset flags.

mod common;

use std::path::{Path, PathBuf};

use headhunt::data::{
    load_pairs, AnswerTokenRule, DataError, DataFile, DataOptions, DataSpec, PromptPair,
    TaskChoice, TaskKind,
};

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data").join(rel)
}

fn pair(ni: &str, no: &str, ci: &str, co: &str) -> PromptPair {
    PromptPair {
        normal_input: ni.into(),
        normal_output: no.into(),
        contrast_input: ci.into(),
        contrast_output: co.into(),
    }
}

fn spec(rel: &str, task: TaskKind, shots: usize, offset: i64) -> DataSpec {
    let mut s = DataSpec::new(data(rel), task);
    s.shots = shots;
    s.offset = offset;
    s
}

#[test]
fn addition_setting1_matches_the_paper_example() {
    let s = spec(
        "paper/addition/setting1/addition_nmax9_offset1.jsonl",
        TaskKind::Addition,
        4,
        1,
    );
    let pairs = load_pairs(&s).unwrap();
    assert_eq!(pairs.len(), 100);
    assert_eq!(
        pairs[0],
        pair(
            "4+3=7\n3+2=5\n6+0=6\n3+3=6\n1+0=",
            "1",
            "4+3=8\n3+2=6\n6+0=7\n3+3=7\n1+0=",
            "2"
        )
    );
}

#[test]
fn addition_zero_shots_has_no_leading_newline() {
    let mut s = spec(
        "paper/addition/setting1/addition_nmax9_offset1.jsonl",
        TaskKind::Addition,
        0,
        1,
    );
    s.examples = Some(1);
    let pairs = load_pairs(&s).unwrap();
    assert_eq!(pairs, vec![pair("1+0=", "1", "1+0=", "2")]);
}

#[test]
fn addition_three_digits_negative_offset() {
    let mut s = spec(
        "paper/addition/normal/addition_nmax999_offset-5.jsonl",
        TaskKind::Addition,
        2,
        -5,
    );
    s.examples = Some(2);
    let pairs = load_pairs(&s).unwrap();
    assert_eq!(pairs.len(), 2);
    assert_eq!(
        pairs[0],
        pair(
            "25+759=784\n281+250=531\n654+114=",
            "768",
            "25+759=779\n281+250=526\n654+114=",
            "763"
        )
    );
}

#[test]
fn base_k_addition_reads_digits_as_decimal_vs_base_k() {
    // Line 1: demos [24, 18], [11, 15], [23, 24]; test [17, 11]. In base 7: 24 = 33, 18 = 24,
    // 42 = 60; 11 = 14, 15 = 21, 26 = 35; 23 = 32, 24 = 33, 47 = 65; 17 = 23, 11 = 14, 28 = 40.
    let mut s = spec(
        "paper/addition_base/normal/addition_ndigits2_base7.jsonl",
        TaskKind::Base,
        3,
        0,
    );
    s.examples = Some(1);
    let pairs = load_pairs(&s).unwrap();
    assert_eq!(
        pairs[0],
        pair(
            "33+24=57\n14+21=35\n32+33=65\n23+14=",
            "37",
            "33+24=60\n14+21=35\n32+33=65\n23+14=",
            "40"
        )
    );
    // An explicit base overrides the file name.
    s.base = Some(8);
    let p8 = load_pairs(&s).unwrap();
    assert_ne!(p8[0], pairs[0]);
    assert!(
        p8[0].contrast_input.starts_with("30+22=52\n"),
        "{:?}",
        p8[0]
    );
}

#[test]
fn cipher_single_letters_and_words() {
    let mut s = spec(
        "paper/cipher/normal/cipher_maxlen1_offset2.jsonl",
        TaskKind::Cipher,
        4,
        2,
    );
    s.examples = Some(1);
    let pairs = load_pairs(&s).unwrap();
    assert_eq!(
        pairs[0],
        pair(
            " q -> q\n a -> a\n h -> h\n f -> f\n z ->",
            " z",
            " q -> s\n a -> c\n h -> j\n f -> h\n z ->",
            " b"
        )
    );
    let mut s = spec(
        "paper/cipher/normal/cipher_maxlen4_offset-3.jsonl",
        TaskKind::Cipher,
        2,
        // Ignored by the cipher: the contrast comes from the file.
        99,
    );
    s.examples = Some(1);
    let pairs = load_pairs(&s).unwrap();
    assert_eq!(
        pairs[0],
        pair(
            " q a h f -> q a h f\n t r x c -> t r x c\n w v h b ->",
            " w v h b",
            " q a h f -> n x e c\n t r x c -> q o u z\n w v h b ->",
            " t s e y"
        )
    );
}

#[test]
fn generic_pairs_are_taken_as_they_are() {
    let mut s = DataSpec::new(data("increment_plus1_8shot.jsonl"), TaskKind::Pairs);
    s.shots = 999; // not used by pairs
    let pairs = load_pairs(&s).unwrap();
    assert_eq!(pairs.len(), 100);
    assert_eq!(
        pairs[0],
        pair(
            "0=0\n4=4\n4=4\n8=8\n2=2\n2=2\n4=4\n6=6\n3=",
            "3",
            "0=1\n4=5\n4=5\n8=9\n2=3\n2=3\n4=5\n6=7\n3=",
            "4"
        )
    );
}

#[test]
fn examples_takes_the_first_n() {
    let mut s = spec(
        "paper/addition/setting2/addition_nmax99_offset3.jsonl",
        TaskKind::Addition,
        32,
        3,
    );
    let all = load_pairs(&s).unwrap();
    s.examples = Some(7);
    let some = load_pairs(&s).unwrap();
    assert_eq!(some, all[..7].to_vec());
    s.examples = Some(100);
    assert_eq!(load_pairs(&s).unwrap().len(), 100);
}

#[test]
fn fixture_files_use_the_papers_format() {
    let s = DataSpec::new(
        common::fixture("tiny-qwen2/addition.jsonl"),
        TaskKind::Addition,
    );
    let pairs = load_pairs(&s).unwrap();
    assert_eq!(pairs.len(), 8);
    assert_eq!(pairs[0].normal_input, "3+1=4\n1+0=1\n0+1=1\n1+4=5\n1+2=");
    assert_eq!(pairs[0].contrast_input, "3+1=5\n1+0=2\n0+1=2\n1+4=6\n1+2=");
}

#[test]
fn task_detection() {
    let d = |rel: &str| TaskKind::detect(&data(rel)).unwrap();
    assert_eq!(d("increment_plus1_8shot.jsonl"), TaskKind::Pairs);
    assert_eq!(
        d("paper/addition/normal/addition_nmax9_offset0.jsonl"),
        TaskKind::Addition
    );
    assert_eq!(
        d("paper/addition_base/setting3/addition_ndigits3_base9.jsonl"),
        TaskKind::Base
    );
    assert_eq!(
        d("paper/cipher/normal/cipher_maxlen4_offset13.jsonl"),
        TaskKind::Cipher
    );
}

fn args(rel: &str) -> DataFile {
    DataFile {
        data: data(rel),
        options: DataOptions {
            offset: None,
            ..Default::default()
        },
    }
}

/// The message as the command line words it (with flag names).
fn cli(e: DataError) -> String {
    headhunt::error::one_line_error_worded(&e.into(), headhunt::cli::wording::flag_words)
}

#[test]
fn cli_specs_are_concrete() {
    let s = args("paper/addition/setting1/addition_nmax9_offset-2.jsonl")
        .spec()
        .unwrap();
    assert_eq!((s.task, s.offset, s.base), (TaskKind::Addition, 1, None));

    let s = args("paper/addition_base/normal/addition_ndigits2_base7.jsonl")
        .spec()
        .unwrap();
    assert_eq!((s.task, s.offset, s.base), (TaskKind::Base, 0, Some(7)));

    // The cipher's offset is the file's shift; a given --offset must agree with it (mod 26).
    let mut a = args("paper/cipher/normal/cipher_maxlen1_offset-12.jsonl");
    assert_eq!(a.spec().unwrap().offset, -12);
    a.options.offset = Some(14);
    assert_eq!(a.spec().unwrap().offset, -12);
    a.options.offset = Some(1);
    let e = cli(a.spec().unwrap_err());
    assert!(
        e.ends_with(
            "cipher_maxlen1_offset-12.jsonl: --offset 1 does not match the file's Caesar shift \
             -12 (cipher prompts take the contrast from the file's targets)"
        ),
        "{e}"
    );

    // --base turns an auto-detected addition file into base-k addition; with another task it
    // is an error.
    let mut a = args("paper/addition/normal/addition_nmax99_offset1.jsonl");
    a.options.base = Some(9);
    assert_eq!(a.spec().unwrap().task, TaskKind::Base);
    a.options.task = TaskChoice::Addition;
    let e = a.spec().unwrap_err();
    assert_eq!(
        e.to_string(),
        "base applies to base-k addition only (the task is addition)"
    );
    assert_eq!(
        cli(e),
        "--base applies to base-k addition only (the task is addition)"
    );

    // A base-k file without a base in its name needs --base.
    let mut a = args("paper/addition/normal/addition_nmax99_offset1.jsonl");
    a.options.task = TaskChoice::Base;
    let e = cli(a.spec().unwrap_err());
    assert!(e.contains("base-k addition needs --base B"), "{e}");
    a.options.base = Some(11);
    let e = a.spec().unwrap_err();
    assert_eq!(e.to_string(), "base 11: the base must be between 2 and 10");
    assert_eq!(cli(e), "--base 11: the base must be between 2 and 10");
}

#[test]
fn specs_round_trip_through_json() {
    let mut s = DataSpec::new("data/x.jsonl", TaskKind::Cipher);
    s.answer_token = AnswerTokenRule::First;
    s.base = Some(7);
    let j = serde_json::to_string(&s).unwrap();
    assert!(j.contains("\"task\":\"cipher\""), "{j}");
    assert!(j.contains("\"answer_token\":\"first\""), "{j}");
    let back: DataSpec = serde_json::from_str(&j).unwrap();
    assert_eq!(back, s);
}
