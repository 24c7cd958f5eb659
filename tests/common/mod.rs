//! Shared helpers for the integration tests: where the reference fixtures live.
#![allow(dead_code)]

use std::path::PathBuf;

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
    "tiny-llama",
    "tiny-mistral",
    "tiny-qwen2",
];

/// Fixtures with path-patching references.
pub const PATCHING_FIXTURES: &[&str] = &["tiny-gemma2", "tiny-llama", "tiny-mistral", "tiny-qwen2"];

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

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
