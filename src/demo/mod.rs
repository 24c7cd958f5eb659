//! The demo model: a tiny Llama-shaped decoder trained on few-shot off-by-k addition, shipped in
//! `assets/demo-model/`, and the dataset `headhunt` opens it on by default.
//!
//! - [`model_dir`] and [`dataset`] find the shipped files: relative to the current directory
//!   first (a checkout), then next to the executable's checkout (`target/release/headhunt` →
//!   the repository), then relative to the crate's source folder (`CARGO_MANIFEST_DIR`, so that
//!   `cargo run` works from anywhere in a fresh clone).
//! - [`data_spec`] is the default dataset as a [`DataSpec`]: the paper's own setting1 nmax-9
//!   offset +1 file, 4 shots, offset +1 (the model's training distribution covers it).
//! - [`task`] is the task and the tokenizer, [`net`] the differentiable training model,
//!   [`train`] the training loop behind `headhunt train-demo`.

pub mod net;
pub mod task;
pub mod train;

use std::path::{Path, PathBuf};

use crate::data::{DataSpec, TaskKind};

/// The shipped model directory, relative to the repository root.
pub const MODEL_DIR: &str = "assets/demo-model";
/// The default dataset, relative to the repository root.
pub const DATASET: &str = "data/paper/addition/setting1/addition_nmax9_offset1.jsonl";
/// Shots and offset of the default dataset.
pub const SHOTS: usize = 4;
pub const OFFSET: i64 = 1;

/// A bundled file or folder `rel`: in the current directory if it exists there, else beside the
/// executable's checkout, else in the crate's source folder (the last, even if missing).
pub fn locate(rel: &str) -> PathBuf {
    let mut candidates = vec![PathBuf::from(rel)];
    if let Ok(exe) = std::env::current_exe() {
        candidates.extend(exe.ancestors().skip(1).take(4).map(|d| d.join(rel)));
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    candidates.into_iter().find(|p| p.exists()).unwrap_or(built)
}

/// The demo model's directory (config.json, model.safetensors, tokenizer.json).
pub fn model_dir() -> PathBuf {
    locate(MODEL_DIR)
}

/// The default dataset file.
pub fn dataset() -> PathBuf {
    locate(DATASET)
}

/// The paper's setting1 nmax-9 folder (the held-out evaluation files of every k).
pub fn paper_dir() -> PathBuf {
    locate("data/paper/addition/setting1")
}

/// The default dataset as a spec: 4 shots, offset +1, all 100 examples.
pub fn data_spec() -> DataSpec {
    let mut spec = DataSpec::new(dataset(), TaskKind::Addition);
    spec.shots = SHOTS;
    spec.offset = OFFSET;
    spec
}
