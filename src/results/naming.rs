//! Where a result is saved by default: one name for `headhunt patch` and the explorer.

use std::path::{Path, PathBuf};

use crate::patching::Receiver;

/// The default result file name: `<model>-<receiver>-<time>.json` (the model's last path
/// component, with `@` and spaces made file-name safe; the local time to the second).
pub fn default_file_name(model_label: &str, receiver: &Receiver) -> String {
    let model = Path::new(model_label.trim_end_matches('/'))
        .file_name()
        .map(|s| s.to_string_lossy().replace(['@', ' '], "_"))
        .unwrap_or_else(|| "model".into());
    let time = chrono::Local::now().format("%Y%m%d-%H%M%S");
    format!("{model}-{}-{time}.json", receiver.slug())
}

/// Default result path: results/<model>-<receiver>-<time>.json
pub fn default_out(model_label: &str, receiver: &Receiver) -> PathBuf {
    PathBuf::from("results").join(default_file_name(model_label, receiver))
}
