//! Shared helpers for the integration tests: where the reference fixtures live.
#![allow(dead_code)]

use std::path::PathBuf;

pub mod figure;
pub mod tui;

/// `../shared/fixtures` next to the project (CI has it too), or $HEADHUNT_FIXTURES.
pub fn fixtures_dir() -> PathBuf {
    let dir = std::env::var_os("HEADHUNT_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"));
    assert!(
        dir.join("README.md").is_file(),
        "reference fixtures not found at {} (set HEADHUNT_FIXTURES)",
        dir.display()
    );
    dir
}

pub fn fixture(name: &str) -> PathBuf {
    fixtures_dir().join(name)
}

/// Every fixture model folder.
pub const ALL_FIXTURES: &[&str] = &[
    "tiny-gemma2",
    "tiny-gemma2-window",
    "tiny-gpt2",
    "tiny-llama",
    "tiny-mistral",
    "tiny-pythia",
    "tiny-qwen2",
    "tiny-qwen3",
];

/// Fixtures with path-patching references.
pub const PATCHING_FIXTURES: &[&str] = &[
    "tiny-gemma2",
    "tiny-gpt2",
    "tiny-llama",
    "tiny-mistral",
    "tiny-pythia",
    "tiny-qwen2",
    "tiny-qwen3",
];

/// The bundled demo model (trained on the paper's off-by-one addition).
pub fn demo_model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/demo-model")
}

/// The paper's addition data (offset +1, 100 examples) the demo model is tried on.
pub fn demo_data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data/paper/addition/setting1/addition_nmax9_offset1.jsonl")
}

/// A stdout for a child whose reader is gone before the child starts: every write to it
/// fails with EPIPE (a pipe closed after the spawn would race with a fast child's writes).
pub fn closed_pipe() -> std::process::Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer.into()
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_headhunt"))
}

/// A fresh temporary directory for one test.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "headhunt-test-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A tensor's values as f32, flattened.
pub fn flat(t: &candle_core::Tensor) -> Vec<f32> {
    t.to_dtype(candle_core::DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// The worker's request for a model on the CPU, in its own dtype, with its own tokenizer.
pub fn cpu_model_request(model: &str) -> headhunt::worker::ModelRequest {
    headhunt::worker::ModelRequest {
        model: model.into(),
        tokenizer: None,
        device: "cpu".into(),
        dtype: None,
        allow_unknown_config_keys: false,
    }
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Runs `headhunt info --model FILE` and returns (exit code, stderr).
pub fn info(model: &std::path::Path, extra: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(bin())
        .args(["info", "--model", model.to_str().unwrap()])
        .args(extra)
        // candle attaches a backtrace to its errors when this is set: the message must not.
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

pub fn assert_one_line_error(code: i32, err: &str, needles: &[&str]) {
    assert_eq!(code, 2, "exit code (stderr: {err})");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err:?}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.len() < 400 && !err.contains(".rs:"),
        "a backtrace leaked: {err}"
    );
    for n in needles {
        assert!(err.contains(n), "{err:?} should mention {n:?}");
    }
}

/// `headhunt patch` on fixture `fx` with its addition data, quiet, to `out` (with `extra`
/// flags); fails the test, with its stderr, unless it succeeds.
pub fn patch_fixture(fx: &str, out: &std::path::Path, extra: &[&str]) {
    let dir = fixture(fx);
    let result = std::process::Command::new(bin())
        .arg("patch")
        .args(["--model", dir.to_str().unwrap()])
        .args(["--data", dir.join("addition.jsonl").to_str().unwrap()])
        .args(["--quiet", "--out", out.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "patch {extra:?}: {}",
        String::from_utf8_lossy(&result.stderr)
    );
}

/// Fixture `name` on the CPU in f32 with its 8 addition examples tokenized: the inputs of the
/// engine-level reference tests.
pub fn fixture_and_addition(
    name: &str,
) -> (
    headhunt::model::LoadedModel,
    Vec<headhunt::data::TokenizedPair>,
) {
    let lm = headhunt::model::load(
        fixture(name).to_str().unwrap(),
        None,
        &candle_core::Device::Cpu,
        candle_core::DType::F32,
    )
    .unwrap();
    let spec = headhunt::data::DataSpec::new(
        fixture(name).join("addition.jsonl"),
        headhunt::data::TaskKind::Addition,
    );
    let pairs = headhunt::data::load_and_tokenize(&spec, &lm.tokenizer)
        .unwrap()
        .pairs;
    assert_eq!(pairs.len(), 8);
    (lm, pairs)
}
