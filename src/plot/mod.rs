//! Figures from saved result files, as SVG or PNG, drawn with plotters and an embedded font
//! (DejaVu Sans, from the `dejavu` crate) so that no Python, no browser and no system font is
//! needed.
//!
//! Sits above `results` (it reads result records) and below `tui` and `cli`: the explorer calls
//! [`write_figure_for`], the `plot` command calls [`load`] and [`write`].
//!
//! Kinds of figure: path-patching heatmaps (one, two side by side, or a difference; the MLP
//! senders as one more column; cells whose 95% interval holds 0 dotted), the largest senders
//! with their intervals (`bars`), activation-patching scans (`scan`), attention patterns (grids, or one query row as bars), and the circuit analyses
//! (function-vector Δ grids, ablation bars, minimality bars).

pub mod analysis;
pub mod attention;
pub mod bars;
pub mod canvas;
pub mod heatmap;
pub mod number;
pub mod scale;
pub mod scan;
pub mod side;

use std::path::{Path, PathBuf};

use crate::results::scan::ScanRecord;
use crate::results::{ResultsError, RunRecord, SavedFile};

pub use canvas::{render, Figure, Format};

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The input is not what a figure needs (field, value, range named in the text).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Results(#[from] ResultsError),
    /// plotters failed to draw (should not happen with the backends used here).
    #[error("drawing failed: {0}")]
    Draw(String),
}

/// A saved file that can be drawn, by its `format` field. (One exists at a time: the
/// analysis variants stay unboxed, as in `results::analysis::AnalysisFile`.)
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum Plottable {
    PathPatching(Box<RunRecord>),
    Scan(Box<ScanRecord>),
    Attention(Box<attention::AttentionFile>),
    FunctionVector(analysis::FvFile),
    Ablation(analysis::AblationFile),
    Circuit(analysis::CircuitFile),
}

impl Plottable {
    pub fn kind(&self) -> &'static str {
        match self {
            Plottable::PathPatching(_) => "path-patching result",
            Plottable::Scan(_) => "activation-patching scan",
            Plottable::Attention(_) => "attention patterns",
            Plottable::FunctionVector(_) => "function-vector result",
            Plottable::Ablation(_) => "ablation result",
            Plottable::Circuit(_) => "circuit evaluation",
        }
    }
}

/// Reads any file `headhunt plot` can draw: a path-patching result (headhunt's or the
/// paper's), an activation-patching scan, `headhunt attention --json` output, or an analysis
/// result. It goes through the readers `show` uses ([`SavedFile::load`], and
/// [`ScanRecord::from_value`] for scans, which readers of runs refuse), so a figure is drawn
/// only of a file that `show` would print too: its version known, its fields typed, its
/// shape drawable.
pub fn load(path: &Path) -> Result<Plottable, PlotError> {
    use crate::results::analysis::AnalysisFile;
    use crate::results::read;
    let value = read::read_json(path)?;
    if read::format_of(&value, path)? == Some(crate::results::scan::FORMAT) {
        return Ok(Plottable::Scan(Box::new(ScanRecord::from_value(
            value, path,
        )?)));
    }
    Ok(match SavedFile::from_value(value, path)? {
        SavedFile::Run(rec) => Plottable::PathPatching(rec),
        SavedFile::Attention(f) => Plottable::Attention(f),
        SavedFile::Analysis(f) => match *f {
            AnalysisFile::Fv(f) => Plottable::FunctionVector(f),
            AnalysisFile::Ablation(f) => Plottable::Ablation(f),
            AnalysisFile::Circuit(f) if f.minimality.is_empty() => {
                return Err(PlotError::Invalid(format!(
                    "{}: field `minimality` is empty: nothing to draw (run `headhunt circuit --minimality`)",
                    path.display()
                )))
            }
            AnalysisFile::Circuit(f) => Plottable::Circuit(f),
        },
        SavedFile::Groups(_) => {
            return Err(PlotError::Invalid(format!(
                "{}: a head-groups file has nothing to draw; expected a path-patching result, \
                 headhunt-attention, {}, {} or {}",
                path.display(),
                analysis::FV_FORMAT,
                analysis::ABLATION_FORMAT,
                analysis::CIRCUIT_FORMAT
            )))
        }
    })
}

/// The format of `path` from its extension: `.svg` or `.png`.
pub fn format_of(path: &Path) -> Result<Format, PlotError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("svg") => Ok(Format::Svg),
        Some(e) if e.eq_ignore_ascii_case("png") => Ok(Format::Png),
        _ => Err(PlotError::Invalid(format!(
            "{}: expected a file name ending in .svg or .png",
            path.display()
        ))),
    }
}

/// Draws `fig` and writes it to `path` (format from the extension) atomically: a figure is
/// either written whole or not at all.
pub fn write(fig: &dyn Figure, path: &Path, overwrite: bool) -> Result<(), PlotError> {
    let bytes = render(fig, format_of(path)?)?;
    crate::results::write_atomic(path, &bytes, overwrite)?;
    Ok(())
}

/// The default figure path next to a result file: `STEM.svg` (or `.png`).
pub fn default_path(result: &Path, format: Format) -> PathBuf {
    result.with_extension(format.extension())
}

/// Writes `fig` to `path`, replacing only a figure headhunt drew there before (one carrying
/// [`canvas::MARK`]): a file of someone else's with that name is left alone and the figure
/// goes to the first free or headhunt-drawn `STEM-2.EXT`, `STEM-3.EXT`, …. Returns the path
/// written. For the explorer, whose figure key redraws what is on screen in place.
pub fn write_own(fig: &dyn Figure, path: &Path) -> Result<PathBuf, PlotError> {
    let bytes = render(fig, format_of(path)?)?;
    let mut n = 1;
    let target = loop {
        let p = crate::results::write::numbered(path, n);
        match std::fs::symlink_metadata(&p) {
            Err(_) => break p,
            Ok(m) if m.is_file() && is_headhunt_figure(&p) => break p,
            Ok(_) if n >= 1000 => {
                return Err(PlotError::Invalid(format!(
                    "{}: this name and its numbered variants are all taken by other files",
                    path.display()
                )))
            }
            Ok(_) => n += 1,
        }
    };
    crate::results::write_atomic(&target, &bytes, true)?;
    Ok(target)
}

/// Was the file at `path` drawn by headhunt (it carries [`canvas::MARK`] near its start)?
pub fn is_headhunt_figure(path: &Path) -> bool {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(4096).read_to_end(&mut head))
        .is_ok_and(|_| canvas::has_mark(&head))
}

/// For the explorer: writes the heatmap of `record` as it is shown (`opts`: range, crop,
/// orientation; the groups are the record's own) beside its saved file `json`, as
/// `STEM.svg` (for a paper) and `STEM.png` (to look at), through [`write_own`]. Returns the
/// paths written.
pub fn write_figure_for(
    record: &RunRecord,
    opts: &heatmap::HeatmapOptions,
    json: &Path,
) -> Result<[PathBuf; 2], PlotError> {
    let fig = heatmap::Heatmap::single(record, opts)?;
    write_both(&fig, &json.with_extension(""))
}

/// `fig` as `STEM.svg` and `STEM.png`, `stem` being a path without extension (its name may
/// hold dots, e.g. a head `1.3`: `.svg` is appended, never substituted).
pub fn write_both(fig: &dyn Figure, stem: &Path) -> Result<[PathBuf; 2], PlotError> {
    let with = |f: Format| {
        let mut name = stem.file_name().unwrap_or_default().to_os_string();
        name.push(".");
        name.push(f.extension());
        stem.with_file_name(name)
    };
    let svg = write_own(fig, &with(Format::Svg))?;
    let png = write_own(fig, &with(Format::Png))?;
    Ok([svg, png])
}

/// The model's name in a figure: the file or folder name of a local model or GGUF file, the
/// hub id (`@revision` when not `main`). A figure goes to a paper or a collaborator, so it
/// never carries a machine path such as `/root/.cache/…/model.gguf`.
pub fn model_name(m: &crate::results::ModelInfo) -> String {
    origin_name(&m.origin)
}

fn origin_name(origin: &crate::model::ModelOrigin) -> String {
    use crate::model::ModelOrigin;
    match origin {
        ModelOrigin::Local { path } | ModelOrigin::Gguf { path } => base_name(path),
        hub => hub.label(),
    }
}

/// `label` unless it looks like a path (starts with `/`, `.` or `~`, or holds more than one
/// `/`; a hub id holds one), then its last component.
pub fn path_free(label: &str) -> String {
    let pathlike = label.starts_with(['/', '.', '~', '\\'])
        || label.matches('/').count() > 1
        || label.contains('\\')
        || label.get(1..3) == Some(":\\");
    if pathlike {
        base_name(label)
    } else {
        label.to_string()
    }
}

/// The last component of a path written as text (either separator), for names in figures.
pub fn base_name(path: &str) -> String {
    let t = path.trim_end_matches(['/', '\\']);
    match t.rsplit(['/', '\\']).next() {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "model".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_figures_carry_no_folders() {
        assert_eq!(base_name("/root/.cache/m/qwen-q8_0.gguf"), "qwen-q8_0.gguf");
        assert_eq!(base_name("models/tiny/"), "tiny");
        assert_eq!(path_free("Qwen/Qwen2.5-0.5B"), "Qwen/Qwen2.5-0.5B");
        assert_eq!(path_free("/root/x/y.gguf"), "y.gguf");
        assert_eq!(path_free("../shared/fixtures/tiny"), "tiny");
        use crate::model::ModelOrigin;
        let gguf = ModelOrigin::Gguf {
            path: "/a/b/m.gguf".into(),
        };
        assert_eq!(origin_name(&gguf), "m.gguf");
        let hub = ModelOrigin::Hub {
            id: "org/m".into(),
            revision: "v2".into(),
            commit: None,
        };
        assert_eq!(origin_name(&hub), "org/m@v2");
    }
}
