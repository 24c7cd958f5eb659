//! The head-groups file: named groups of heads and a selection, saved from the explorer (`S`)
//! on their own, so that they can be applied again to a run of the same model (`headhunt open`,
//! the gallery) or read by a later analysis.
//!
//! Schema (`format: "headhunt-head-groups"`, `format_version: 1`), see README "Result files".
//! The model's shape is in the file because groups name heads by (layer, head): applied to a
//! model of another shape they would name other heads, or none.

use std::path::Path;

use super::{read, HeadGroup, ResultsError};

pub const GROUPS_FORMAT: &str = "headhunt-head-groups";
pub const GROUPS_FORMAT_VERSION: u32 = 1;

/// A saved set of head groups and a selection, with the model they were made on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GroupsFile {
    pub format: String,
    pub format_version: u32,
    pub headhunt_version: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// The model's label (path or hub id as given).
    pub model: String,
    pub n_layers: usize,
    pub n_heads: usize,
    pub groups: Vec<HeadGroup>,
    /// Selected heads, (layer, head).
    #[serde(default)]
    pub selected: Vec<(usize, usize)>,
}

impl GroupsFile {
    /// The groups and selection of a model of `n_layers` × `n_heads`, created now.
    pub fn new(
        model: &str,
        (n_layers, n_heads): (usize, usize),
        groups: Vec<HeadGroup>,
        selected: Vec<(usize, usize)>,
    ) -> Self {
        GroupsFile {
            format: GROUPS_FORMAT.into(),
            format_version: GROUPS_FORMAT_VERSION,
            headhunt_version: env!("CARGO_PKG_VERSION").into(),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            model: model.into(),
            n_layers,
            n_heads,
            groups,
            selected,
        }
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("groups serialize");
        s.push('\n');
        s
    }

    /// Whether two files say the same (everything but when they were written, and by which
    /// version): saving the same groups twice need not write a second file.
    pub fn same_content(&self, other: &GroupsFile) -> bool {
        let strip = |g: &GroupsFile| GroupsFile {
            created: String::new(),
            headhunt_version: String::new(),
            ..g.clone()
        };
        strip(self) == strip(other)
    }

    /// Loads a groups file (through the one reader, [`super::read`]); a file of another
    /// format or version, bad JSON, a wrong-typed or missing field or a head outside the
    /// model's shape is a one-line error naming the file and the field.
    pub fn load(path: &Path) -> Result<Self, ResultsError> {
        Self::from_value(super::read_json(path)?, path)
    }

    /// Parses the text of a groups file read from `path` (named in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ResultsError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ResultsError::Format {
                path: path.display().to_string(),
                msg: format!("invalid JSON: {e}"),
            })?;
        Self::from_value(value, path)
    }

    /// [`GroupsFile::parse`] of JSON already parsed.
    pub fn from_value(value: serde_json::Value, path: &Path) -> Result<Self, ResultsError> {
        let bad = |msg: String| ResultsError::Format {
            path: path.display().to_string(),
            msg,
        };
        match read::format_of(&value, path)? {
            Some(GROUPS_FORMAT) => {}
            Some(other) => {
                return Err(bad(format!(
                    "field `format` is {other:?}, expected {GROUPS_FORMAT:?}"
                )))
            }
            None => {
                return Err(bad(format!(
                    "no field `format` (expected {GROUPS_FORMAT:?})"
                )))
            }
        }
        if value.get("format_version").is_none() {
            return Err(bad(
                "no field `format_version`: written by a headhunt from before groups files had a version and the model's shape (which applying them needs); tag the heads again and save with S".into(),
            ));
        }
        read::check_version(&value, path, GROUPS_FORMAT, GROUPS_FORMAT_VERSION)?;
        let file: GroupsFile = read::typed(value, path, GROUPS_FORMAT)?;
        file.check().map_err(bad)?;
        Ok(file)
    }

    /// At least one layer and one head, every head inside the shape, every group named.
    fn check(&self) -> Result<(), String> {
        let shape = (self.n_layers, self.n_heads);
        read::shape_not_empty(shape, "")?;
        super::check_groups(&self.groups, shape)?;
        read::heads_inside(&self.selected, shape, "selected")
    }

    /// Saves to `path` atomically; refuses to overwrite unless `force`.
    pub fn save(&self, path: &Path, force: bool) -> Result<(), ResultsError> {
        super::write_atomic(path, self.to_json().as_bytes(), force)
    }

    /// What `headhunt show` prints: the model, then one line per group and the selection.
    pub fn summary(&self) -> String {
        let heads = |hs: &[(usize, usize)]| {
            if hs.is_empty() {
                return "(none)".to_string();
            }
            hs.iter()
                .map(|(l, h)| format!("({l},{h})"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut s = format!(
            "head groups of {} ({} layers × {} heads), saved {}\n",
            self.model, self.n_layers, self.n_heads, self.created
        );
        for g in &self.groups {
            s.push_str(&format!(
                "{} ({}): {}\n",
                g.name,
                g.heads.len(),
                heads(&g.heads)
            ));
        }
        s.push_str(&format!(
            "selected ({}): {}\n",
            self.selected.len(),
            heads(&self.selected)
        ));
        s
    }
}
