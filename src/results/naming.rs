//! Where a result is saved by default: one name for `headhunt patch` and the explorer.

use std::path::{Path, PathBuf};

use crate::patching::Receiver;

/// The default result file name: `<model>[-<data>]-<receiver>-<time>.json` (the last path
/// components of the model and the data file, made file-name safe; the local time to the
/// second). The data is in the name so that runs of one model on two datasets started in the
/// same second do not collide; callers number a name that is still taken.
pub fn default_file_name(model_label: &str, data: Option<&Path>, receiver: &Receiver) -> String {
    let model = slug_of(Path::new(model_label.trim_end_matches('/')), "model");
    let data = data.map_or(String::new(), |d| {
        format!("-{}", slug_of(&d.with_extension(""), "data"))
    });
    let time = chrono::Local::now().format("%Y%m%d-%H%M%S");
    format!("{model}{data}-{}-{time}.json", receiver.slug())
}

/// The explorer's name for an analysis file: `<kind>-<model>[-<data>][-<group>]-<time>.json`
/// (`kind` is `circuit`, `ablation` or `fv`); callers number a name that is still taken.
pub fn analysis_file_name(
    kind: &str,
    model_label: &str,
    data: Option<&Path>,
    group: Option<&str>,
) -> String {
    let model = slug_of(Path::new(model_label.trim_end_matches('/')), "model");
    let data = data.map_or(String::new(), |d| {
        format!("-{}", slug_of(&d.with_extension(""), "data"))
    });
    let group = group.map_or(String::new(), |g| {
        format!("-{}", slug_of(Path::new(g), "group"))
    });
    let time = chrono::Local::now().format("%Y%m%d-%H%M%S");
    format!("{kind}-{model}{data}{group}-{time}.json")
}

/// Default result path: results/<model>[-<data>]-<receiver>-<time>.json
pub fn default_out(model_label: &str, data: Option<&Path>, receiver: &Receiver) -> PathBuf {
    PathBuf::from("results").join(default_file_name(model_label, data, receiver))
}

/// A path's last component, safe in a file name and at most 60 characters.
fn slug_of(p: &Path, fallback: &str) -> String {
    let s: String = p
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| fallback.into())
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    if s.is_empty() {
        fallback.into()
    } else {
        s
    }
}
