//! A researcher's own inputs are refused or warned about, never scored in silence: another
//! model's tokenizer, a tokenizer whose special ids contradict the config, answers the model
//! never predicts (no leading space; one token of several scored), prompts past a model's
//! positions in every command, a path that is not there. On the fixtures always, on the real
//! GGUF models of `../shared/models/fetch.sh` where they are present.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn headhunt(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn qwen_tokenizer() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/models/qwen2.5-coder-0.5b-instruct/tokenizer.json")
}

fn models_dir() -> PathBuf {
    match std::env::var_os("HEADHUNT_MODELS") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/headhunt-models"),
    }
}

/// The real model file, or None after saying why the check is skipped.
fn real_model(name: &str) -> Option<PathBuf> {
    let p = models_dir().join(name);
    if p.is_file() {
        Some(p)
    } else {
        eprintln!(
            "SKIPPED: {} not found (run ../shared/models/fetch.sh)",
            p.display()
        );
        None
    }
}

/// A copy of a fixture folder whose config.json is changed by `edit`.
fn fixture_copy(name: &str, tag: &str, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let dir = temp_dir(tag);
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "addition.jsonl",
    ] {
        std::fs::copy(fixture(name).join(f), dir.join(f)).unwrap();
    }
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    edit(&mut cfg);
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    dir
}

/// Prompt pairs whose answers are written without their leading space, and a second file
/// whose answers are two words: the fixture's tokenizer reads characters, so every answer is
/// several tokens and the last one (`"a"` of `"lisa"`) is scored by default.
fn pairs_file(dir: &Path, name: &str, answers: (&str, &str)) -> PathBuf {
    let mut lines = String::new();
    for (a, b) in [
        ("1+2", "2+1"),
        ("3+4", "4+3"),
        ("5+1", "1+5"),
        ("2+2", "3+3"),
    ] {
        let row = serde_json::json!({
            "normal_input": format!("{a}="), "normal_output": answers.0,
            "contrast_input": format!("{b}="), "contrast_output": answers.1,
        });
        lines.push_str(&format!("{row}\n"));
    }
    let p = dir.join(name);
    std::fs::write(&p, lines).unwrap();
    p
}

#[test]
fn another_models_tokenizer_is_refused_in_every_command() {
    let m = fixture("tiny-llama");
    let data = m.join("addition.jsonl");
    let tok = qwen_tokenizer();
    let (m, data, tok) = (
        m.to_str().unwrap(),
        data.to_str().unwrap(),
        tok.to_str().unwrap(),
    );
    let runs: Vec<Vec<&str>> = vec![
        vec!["info", "--model", m, "--tokenizer", tok],
        vec![
            "patch",
            "--model",
            m,
            "--tokenizer",
            tok,
            "--data",
            data,
            "--quiet",
        ],
        vec!["eval", "--model", m, "--tokenizer", tok, "--data", data],
        vec![
            "circuit",
            "--model",
            m,
            "--tokenizer",
            tok,
            "--data",
            data,
            "--group",
            "a=3.1@last",
        ],
        vec![
            "ablate",
            "--model",
            m,
            "--tokenizer",
            tok,
            "--data",
            data,
            "--heads",
            "3.1",
        ],
        vec![
            "attention",
            "--model",
            m,
            "--tokenizer",
            tok,
            "--data",
            data,
            "--head",
            "3.1",
        ],
    ];
    for args in runs {
        let (code, _, err) = headhunt(&args);
        assert_one_line_error(
            code,
            &err,
            &[
                "does not belong to the model",
                "tokenizer.json",
                "config.json",
            ],
        );
        assert!(err.contains("embedding rows"), "{args:?}: {err}");
    }
}

#[test]
fn a_foreign_tokenizer_on_a_real_model_is_refused() {
    let Some(smol) = real_model("SmolLM2-135M-Instruct.Q4_1.gguf") else {
        return;
    };
    let tok = qwen_tokenizer();
    let (code, _, err) = headhunt(&[
        "info",
        "--model",
        smol.to_str().unwrap(),
        "--tokenizer",
        tok.to_str().unwrap(),
    ]);
    assert_one_line_error(
        code,
        &err,
        &["does not belong to the model", "SmolLM2", "151935", "49152"],
    );
}

#[test]
fn special_ids_that_contradict_the_config_are_refused() {
    // The tokenizer puts <bos> (2) before every prompt; the config says bos is 3.
    let dir = fixture_copy("tiny-llama", "bos", |c| c["bos_token_id"] = 3.into());
    let (code, err) = info(&dir, &[]);
    assert_one_line_error(code, &err, &["bos_token_id is 3", "does not belong"]);
    // An eos id that is an ordinary character of the tokenizer.
    let dir = fixture_copy("tiny-llama", "eos", |c| c["eos_token_id"] = 10.into());
    let (code, err) = info(&dir, &[]);
    assert_one_line_error(code, &err, &["eos_token_id 10", "ordinary text token"]);
    // The fixture itself, and an eos list of special tokens, load.
    let dir = fixture_copy("tiny-llama", "eos-list", |c| {
        c["eos_token_id"] = serde_json::json!([1, 0])
    });
    assert_eq!(info(&dir, &[]).0, 0);
}

#[test]
fn unknown_config_keys_stop_every_command_and_the_flag_records_them() {
    let dir = fixture_copy("tiny-llama", "unknown-key", |c| {
        c["attn_temperature"] = 0.7.into()
    });
    let data = dir.join("addition.jsonl");
    let d = dir.to_str().unwrap();
    let (code, err) = info(&dir, &[]);
    assert_one_line_error(
        code,
        &err,
        &["`attn_temperature`", "0.7", "--allow-unknown-config-keys"],
    );
    let out = dir.join("r.json");
    let (code, _, err) = headhunt(&[
        "patch",
        "--model",
        d,
        "--data",
        data.to_str().unwrap(),
        "--quiet",
        "--allow-unknown-config-keys",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("warning: config key attn_temperature = 0.7"),
        "{err}"
    );
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(
        saved["model"]["ignored_config_keys"],
        serde_json::json!(["attn_temperature = 0.7"])
    );
}

/// Answers without a leading space, or of several tokens: the scored token is named, the model
/// rarely predicts it, and every result says so (`baseline_accuracy`, `warnings`).
#[test]
fn answers_the_model_never_predicts_are_warned_about_and_recorded() {
    let dir = temp_dir("answers");
    let data = pairs_file(&dir, "names.jsonl", ("lisa", "mary"));
    let m = fixture("tiny-llama");
    let (m, d) = (m.to_str().unwrap(), data.to_str().unwrap());
    let patch_out = dir.join("patch.json");
    let circuit_out = dir.join("circuit.json");
    let ablate_out = dir.join("ablate.json");
    let runs: Vec<(Vec<&str>, Option<&Path>)> = vec![
        (
            vec![
                "patch",
                "--model",
                m,
                "--data",
                d,
                "--quiet",
                "-o",
                patch_out.to_str().unwrap(),
            ],
            Some(&patch_out),
        ),
        (
            vec![
                "circuit",
                "--model",
                m,
                "--data",
                d,
                "--group",
                "a=3.1@last",
                "--json",
                circuit_out.to_str().unwrap(),
            ],
            Some(&circuit_out),
        ),
        (
            vec![
                "ablate",
                "--model",
                m,
                "--data",
                d,
                "--heads",
                "3.1",
                "--random-groups",
                "2",
                "--json",
                ablate_out.to_str().unwrap(),
            ],
            Some(&ablate_out),
        ),
        (vec!["eval", "--model", m, "--data", d], None),
    ];
    for (args, out) in runs {
        let (code, _, err) = headhunt(&args);
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(err.contains("baseline accuracy: normal"), "{args:?}: {err}");
        assert!(
            err.contains(
                "the metric reads the last token of each (line 1: \"lisa\" is scored as \"a\")"
            ),
            "{args:?}: {err}"
        );
        assert!(
            err.contains("rarely predicts the scored answers"),
            "{args:?}: {err}"
        );
        assert!(err.contains("--answer-token first"), "{args:?}: {err}");
        if let Some(out) = out {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
            let acc = &v["baseline_accuracy"];
            assert!(
                acc["normal"].as_f64().unwrap() < 0.5 || acc["contrast"].as_f64().unwrap() < 0.5,
                "{acc}"
            );
            let w = v["warnings"].as_array().unwrap();
            assert!(
                w.iter()
                    .any(|x| x.as_str().unwrap().contains("rarely predicts")),
                "{w:?}"
            );
        }
    }
    // `eval --json` carries it too.
    let (_, json, _) = headhunt(&["eval", "--model", m, "--data", d, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v["baseline_accuracy"]["normal"].is_number(), "{v}");
}

/// The explorer's data load goes through the same check and shows the same warnings.
#[test]
fn the_explorer_gets_the_same_warnings() {
    use headhunt::worker::{Event, Job, Worker};
    let dir = temp_dir("explorer-answers");
    let data = pairs_file(&dir, "names.jsonl", ("lisa", "mary"));
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = Worker::spawn(tx);
    worker.submit(Job::LoadModel(cpu_model_request(
        fixture("tiny-llama").to_str().unwrap(),
    )));
    worker.submit(Job::LoadData(headhunt::data::DataSpec::new(
        data,
        headhunt::data::TaskKind::Pairs,
    )));
    loop {
        match rx.recv_timeout(std::time::Duration::from_secs(60)).unwrap() {
            Event::Evaluated { warnings, .. } => {
                assert!(
                    warnings
                        .iter()
                        .any(|w| w.contains("\"lisa\" is scored as \"a\"")),
                    "{warnings:?}"
                );
                assert!(
                    warnings.iter().any(|w| w.contains("rarely predicts")),
                    "{warnings:?}"
                );
                break;
            }
            Event::Error { message, .. } => panic!("{message}"),
            _ => {}
        }
    }
}

#[test]
fn no_leading_space_on_a_real_model_names_the_sub_token() {
    let Some(smol) = real_model("SmolLM2-135M-Instruct.Q4_1.gguf") else {
        return;
    };
    let dir = temp_dir("smol-lisa");
    // The README's example: IOI prompts whose answers lack their leading space.
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/ioi_names.jsonl");
    let out = dir.join("r.json");
    let (code, _, err) = headhunt(&[
        "patch",
        "--model",
        smol.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--quiet",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("scores \"isa\" (from the answer \"Lisa\")"),
        "{err}"
    );
    assert!(
        err.contains("a leading space in the answers (\" Lisa\")"),
        "{err}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(
        v["baseline_accuracy"],
        serde_json::json!({"normal": 0.0, "contrast": 0.0})
    );
}

#[test]
fn prompts_past_the_positions_are_refused_in_the_analysis_commands_too() {
    let dir = fixture_copy("tiny-llama", "short", |c| {
        c["max_position_embeddings"] = 16.into()
    });
    let data = dir.join("addition.jsonl");
    let (d, data) = (dir.to_str().unwrap(), data.to_str().unwrap());
    for args in [
        vec![
            "circuit",
            "--model",
            d,
            "--data",
            data,
            "--group",
            "a=3.1@last",
        ],
        vec!["ablate", "--model", d, "--data", data, "--heads", "3.1"],
        vec!["fv", "--model", d, "--data", data, "--heads", "3.1"],
        vec!["attention", "--model", d, "--data", data, "--head", "3.1"],
    ] {
        let (code, _, err) = headhunt(&args);
        assert_one_line_error(code, &err, &["addition.jsonl:1", "at most 16 positions"]);
    }
}

#[test]
fn a_missing_path_is_not_a_hub_download() {
    let dir = temp_dir("no-model");
    for spec in ["assets/demo-model", "./m", "a/b/c"] {
        let out = Command::new(bin())
            .args(["info", "--model", spec])
            .current_dir(&dir)
            .env("HF_HUB_OFFLINE", "1")
            .env("HF_HUB_CACHE", &dir)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{spec}: {err}");
        // `assets/demo-model` from a folder without `assets/` is a hub id by its shape: the
        // message says the folder is not here either. The others are paths: not found.
        assert!(
            err.contains("not a folder or file here")
                || err.contains("no folder assets/demo-model is here"),
            "{spec}: {err}"
        );
    }
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    let out = Command::new(bin())
        .args(["info", "--model", "assets/demo-model"])
        .current_dir(&dir)
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("model not found: assets/demo-model is not a folder or file here"),
        "{err}"
    );
}

#[test]
fn check_finds_its_fixtures_from_any_folder() {
    let out = Command::new(bin())
        .args(["check"])
        .current_dir(std::env::temp_dir())
        .env_remove("HEADHUNT_FIXTURES")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("tiny-llama") && stdout.contains("gemma3-tf5"),
        "{stdout}"
    );
}
