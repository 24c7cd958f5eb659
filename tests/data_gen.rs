//! The generators rewrite every one of the paper's files byte for byte, and `data gen` on the
//! command line.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use headhunt::data::generate::{generate, paper_files, GenSpec, GenTask, Setting};

fn shipped(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/paper")
        .join(rel)
}

#[test]
fn every_paper_file_is_reproduced_byte_for_byte() {
    let files = paper_files();
    assert_eq!(files.len(), 225);
    let mut checked = 0;
    for spec in &files {
        let path = shipped(&spec.paper_path());
        let want = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let got = generate(spec).unwrap();
        assert!(
            got.as_bytes() == want.as_slice(),
            "{}: generated text differs from the shipped file",
            spec.paper_path()
        );
        checked += 1;
    }
    // Every shipped JSONL file was one of them.
    let mut shipped_count = 0;
    for dir in ["addition", "addition_base", "cipher"] {
        for setting in std::fs::read_dir(shipped(dir)).unwrap() {
            shipped_count += std::fs::read_dir(setting.unwrap().path()).unwrap().count();
        }
    }
    assert_eq!((checked, shipped_count), (225, 225));
}

#[test]
fn other_seeds_and_sizes() {
    let task = GenTask::Addition {
        setting: Setting::Setting1,
        nmax: 9,
        offset: 1,
    };
    let paper = generate(&GenSpec::paper(task)).unwrap();
    let mut spec = GenSpec::paper(task);
    spec.seed = 7;
    let other = generate(&spec).unwrap();
    assert_ne!(paper, other);
    // Fewer examples: a prefix of the same stream.
    spec.seed = 42;
    spec.examples = 3;
    let three = generate(&spec).unwrap();
    assert_eq!(three.lines().count(), 3);
    assert!(paper.starts_with(&three));
    // Fewer demonstrations change the stream, but every line still parses and has 5 of them.
    spec.demos = 5;
    let five = generate(&spec).unwrap();
    for line in five.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["demonstration"].as_array().unwrap().len(), 5);
        let t = v["inference"].as_array().unwrap();
        let test_sum = t[0].as_i64().unwrap() + t[1].as_i64().unwrap();
        // setting1: no demonstration has the test sum.
        for d in v["demonstration"].as_array().unwrap() {
            let d = d.as_array().unwrap();
            assert_ne!(d[0].as_i64().unwrap() + d[1].as_i64().unwrap(), test_sum);
        }
    }
}

#[test]
fn generated_files_read_back_as_prompt_pairs() {
    let mut spec = GenSpec::paper(GenTask::Base {
        setting: Setting::Setting2,
        ndigits: 2,
        base: 8,
    });
    spec.examples = 10;
    spec.demos = 4;
    spec.seed = 5;
    let text = generate(&spec).unwrap();
    let path = common::temp_dir("gen-read").join("addition_ndigits2_base8.jsonl");
    std::fs::write(&path, text).unwrap();
    assert_eq!(
        headhunt::data::TaskKind::detect(&path).unwrap(),
        headhunt::data::TaskKind::Base
    );
    let mut ds = headhunt::data::DataSpec::new(&path, headhunt::data::TaskKind::Base);
    ds.shots = 4;
    let pairs = headhunt::data::load_pairs(&ds).unwrap();
    assert_eq!(pairs.len(), 10);
    for p in &pairs {
        assert_eq!(p.normal_input.lines().count(), 5);
        // setting2: the last digits carry in base 8 but not in base 10, so the answers differ.
        assert_ne!(p.normal_output, p.contrast_output);
    }
    // In base 5, two-digit sums stay below 25, so the operands are 10..14 (20..24 in base 5)
    // and their last digits never carry: setting2 is impossible, and the generator says so.
    spec.task = GenTask::Base {
        setting: Setting::Setting2,
        ndigits: 2,
        base: 5,
    };
    let e = generate(&spec).unwrap_err().to_string();
    assert!(e.contains("no valid example after"), "{e}");
}

fn gen(args: &[&str]) -> std::process::Output {
    Command::new(common::bin())
        .arg("data")
        .arg("gen")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn cli_writes_the_papers_files() {
    let out = gen(&["--task", "cipher", "--maxlen", "4", "--offset", "-7"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.stdout,
        std::fs::read(shipped("cipher/normal/cipher_maxlen4_offset-7.jsonl")).unwrap()
    );
    let out = gen(&[
        "--task",
        "base",
        "--setting",
        "setting2",
        "--ndigits",
        "3",
        "--base",
        "8",
    ]);
    assert!(out.status.success());
    assert_eq!(
        out.stdout,
        std::fs::read(shipped(
            "addition_base/setting2/addition_ndigits3_base8.jsonl"
        ))
        .unwrap()
    );
    let out = gen(&[
        "--task",
        "addition",
        "--setting",
        "setting2",
        "--nmax",
        "99",
        "--offset=-3",
        "--seed",
        "42",
        "--examples",
        "100",
        "--demos",
        "32",
    ]);
    assert!(out.status.success());
    assert_eq!(
        out.stdout,
        std::fs::read(shipped("addition/setting2/addition_nmax99_offset-3.jsonl")).unwrap()
    );
}

#[test]
fn cli_out_file_is_not_overwritten_without_force() {
    let dir = common::temp_dir("gen-out");
    let path = dir.join("a.jsonl");
    let p = path.to_str().unwrap();
    let out = gen(&["--task", "addition", "--examples", "2", "--out", p]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = std::fs::read_to_string(&path).unwrap();
    assert_eq!(first.lines().count(), 2);

    let out = gen(&["--task", "addition", "--examples", "3", "--out", p]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim_end(),
        format!("error: --out {p} already exists; pass --force to overwrite it")
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), first);

    let out = gen(&[
        "--task",
        "addition",
        "--examples",
        "3",
        "--out",
        p,
        "--force",
    ]);
    assert!(out.status.success());
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 3);
    // No temporary file left behind.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
}

#[test]
fn cli_errors_are_one_line_with_exit_code_2() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--task", "base"],
            "error: --task base needs --base B (the paper: 6 to 9)",
        ),
        (
            &["--task", "addition", "--nmax", "50"],
            "error: --nmax 50: the paper's addition uses 9, 99 or 999",
        ),
        (
            &["--task", "addition", "--offset", "12"],
            "error: --offset 12 --nmax 9: no sum c has c and c+12 both in [0, 9]",
        ),
        (
            &["--task", "cipher", "--nmax", "99"],
            "error: --nmax applies to --task addition, not cipher",
        ),
        (
            &["--task", "cipher", "--setting", "setting1"],
            "error: --setting setting1: the cipher has only the normal setting",
        ),
        (
            &["--task", "addition", "--setting", "setting3"],
            "error: --setting setting3: only base-k addition has it (addition: normal, \
             setting1, setting2)",
        ),
        (
            &["--task", "base", "--base", "12"],
            "error: --base 12: the base must be between 2 and 10 (the paper: 6 to 9)",
        ),
        (
            &["--task", "addition", "--examples", "0"],
            "error: --examples 0: generate at least one example",
        ),
    ];
    for (args, want) in cases {
        let out = gen(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim_end(),
            *want,
            "{args:?}"
        );
    }
}
