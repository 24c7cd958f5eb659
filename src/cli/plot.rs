//! `headhunt plot`: figures (SVG or PNG) from saved result files, see `crate::plot`.

use anyhow::{bail, Result};
use clap::Args;
use std::path::{Path, PathBuf};

use crate::plot::{self, analysis, attention, heatmap, Figure, Format, Plottable};
use crate::results::HeadGroup;

#[derive(Args, Debug)]
pub struct PlotArgs {
    /// Result files: one path-patching result (two or more with --compare, two with --diff),
    /// an activation-patching scan (`headhunt scan`), an attention file (`headhunt attention
    /// --json`), or an fv / ablation / circuit result.
    #[arg(required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// The figure to write, .svg or .png (default: beside the first file, named after it,
    /// as SVG).
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
    /// Write PNG instead of SVG when --out is not given.
    #[arg(long)]
    pub png: bool,
    /// Path-patching heatmaps: figure width in pixels (default: from the number of cells).
    #[arg(long)]
    pub width: Option<u32>,
    /// Path-patching heatmaps: figure height in pixels (default: from the number of cells).
    #[arg(long)]
    pub height: Option<u32>,
    /// Colour scale of heatmaps and function-vector grids: auto (the largest magnitude shown)
    /// or a half-width, e.g. ±20 (in % for path patching).
    #[arg(long, default_value = "auto", allow_hyphen_values = true)]
    pub range: String,
    /// Only sender layers LO-HI (path patching), e.g. 24-41.
    #[arg(long)]
    pub crop: Option<String>,
    /// Heads as rows and layers as columns (the paper's layout); default: layers as rows.
    #[arg(long)]
    pub heads_as_rows: bool,
    /// Two results side by side on one scale.
    #[arg(long, conflicts_with = "diff")]
    pub compare: bool,
    /// The difference of two results (first minus second).
    #[arg(long)]
    pub diff: bool,
    /// Outline a group of heads: NAME=L.H,L.H,... (repeatable).
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// Attention and function-vector files: only these heads `L.H` (repeatable; default: all
    /// in the file, and for function vectors also the panel of all heads together, which
    /// `--head all` selects).
    #[arg(long = "head")]
    pub heads: Vec<String>,
    /// Attention files: bars of this query row (0-based; negative counts from the end)
    /// instead of the grids.
    #[arg(long, allow_hyphen_values = true)]
    pub query: Option<i64>,
    /// Path-patching results and scans: instead of the heatmap, the N senders of largest |r|
    /// as points with their 95% interval whiskers, largest first (default file `STEM-bars`).
    #[arg(long, value_name = "N")]
    pub bars: Option<usize>,
    /// Overwrite an existing figure.
    #[arg(long)]
    pub force: bool,
}

/// `LO-HI`.
fn parse_crop(s: &str) -> Result<(usize, usize)> {
    let parse = || -> Option<(usize, usize)> {
        let (a, b) = s.split_once('-')?;
        Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
    };
    parse().ok_or_else(|| anyhow::anyhow!("--crop {s:?}: expected LO-HI, e.g. 24-41"))
}

/// `NAME=L.H,L.H`.
fn parse_group(s: &str) -> Result<HeadGroup> {
    let (name, heads) = s
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("--group {s:?}: expected NAME=L.H,L.H,..."))?;
    let heads = heads
        .split(',')
        .map(|h| {
            super::attention::parse_head(h)
                .map_err(|_| anyhow::anyhow!("--group {s:?}: {h:?} is not LAYER.HEAD"))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(HeadGroup {
        name: name.trim().to_string(),
        heads,
    })
}

/// The default figure name: beside the first file, `A.svg`, `A_vs_B.svg` or `A_minus_B.svg`.
fn default_out(a: &PlotArgs) -> PathBuf {
    let format = if a.png { Format::Png } else { Format::Svg };
    let first = &a.files[0];
    match a.files.get(1) {
        Some(_) if a.compare && a.files.len() > 2 => {
            let stems: Vec<String> = a
                .files
                .iter()
                .map(|p| {
                    p.file_stem()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .to_string()
                })
                .collect();
            first.with_file_name(format!("{}.{}", stems.join("_vs_"), format.extension()))
        }
        Some(second) if a.compare || a.diff => {
            let stem = |p: &Path| {
                p.file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string()
            };
            let joint = if a.diff { "minus" } else { "vs" };
            first.with_file_name(format!(
                "{}_{joint}_{}.{}",
                stem(first),
                stem(second),
                format.extension()
            ))
        }
        _ if a.bars.is_some() => {
            let stem = first.file_stem().unwrap_or_default().to_string_lossy();
            first.with_file_name(format!("{stem}-bars.{}", format.extension()))
        }
        _ => plot::default_path(first, format),
    }
}

/// The figure; `--out` is checked before the files are read and saved before printing.
pub fn run(a: PlotArgs) -> Result<super::output::Report> {
    if a.files.len() == 2 && !(a.compare || a.diff) {
        bail!("two files: pass --compare (side by side) or --diff (first minus second)");
    }
    if a.diff && a.files.len() != 2 {
        bail!("--diff needs two result files");
    }
    if a.files.len() > 2 && !a.compare {
        bail!("{} files: pass --compare (side by side)", a.files.len());
    }
    if a.compare && a.files.len() < 2 {
        bail!("--compare needs two or more result files");
    }
    let range =
        crate::plot::scale::parse_range(&a.range).map_err(|e| anyhow::anyhow!("--range {e}"))?;
    if let (true, Some(o)) = (a.png, &a.out) {
        if plot::format_of(o).ok() != Some(Format::Png) {
            bail!(
                "--png and --out {}: --out names the format by its extension; \
                 --png is for when --out is not given",
                o.display()
            );
        }
    }
    let out = a.out.clone().unwrap_or_else(|| default_out(&a));
    let format = plot::format_of(&out).map_err(|e| anyhow::anyhow!("--out {e}"))?;
    let planned = super::output::Planned::given("--out", &out, a.force)?;
    let loaded = a
        .files
        .iter()
        .map(|f| plot::load(f))
        .collect::<Result<Vec<_>, _>>()?;
    let fig = figure(&a, range, &loaded)?;
    let bytes = plot::canvas::render(fig.as_ref(), format)?;
    let mut r = super::output::Report::new();
    r.save(super::output::Output::new(planned, bytes));
    Ok(r)
}

/// The flags given that draw nothing for a file of `kind`, worded by flag name: each kind
/// of figure takes only the flags that change it, so a flag is never silently ignored.
fn check_flags(a: &PlotArgs, file: &Path, kind: &Plottable) -> Result<()> {
    let run = matches!(kind, Plottable::PathPatching(_));
    let scan = matches!(kind, Plottable::Scan(_));
    // A grid of layers: a run's or a scan's.
    let heatmap = run || scan;
    let attention = matches!(kind, Plottable::Attention(_));
    let fv = matches!(kind, Plottable::FunctionVector(_));
    // (flag, given, applies to this kind, the kinds it is for)
    let flags = [
        (
            "--head",
            !a.heads.is_empty(),
            attention || fv,
            "attention and function-vector files",
        ),
        ("--query", a.query.is_some(), attention, "attention files"),
        ("--crop", a.crop.is_some(), heatmap, GRIDS),
        ("--heads-as-rows", a.heads_as_rows, heatmap, GRIDS),
        (
            "--group",
            !a.groups.is_empty(),
            run,
            "path-patching results",
        ),
        ("--width", a.width.is_some(), heatmap, GRIDS),
        ("--height", a.height.is_some(), heatmap, GRIDS),
        (
            "--range",
            a.range.trim() != "auto",
            heatmap || fv,
            "path-patching results, scans and function-vector files",
        ),
        ("--compare", a.compare, run, "two path-patching results"),
        ("--diff", a.diff, run, "two path-patching results"),
        ("--bars", a.bars.is_some(), heatmap, GRIDS),
    ];
    match flags
        .iter()
        .find(|(_, given, applies, _)| *given && !applies)
    {
        Some((flag, _, _, which)) => bail!(
            "{flag} does not apply to {} ({}); it is for {which}",
            file.display(),
            with_article(kind.kind())
        ),
        None => Ok(()),
    }
}

/// The kinds of file drawn as a grid of layers, for messages.
const GRIDS: &str = "path-patching results and scans";

/// `a kind`, or `an kind` before a vowel.
fn with_article(kind: &str) -> String {
    match kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        true => format!("an {kind}"),
        false => format!("a {kind}"),
    }
}

/// `--head` values: `L.H`, and for function-vector files `all` (the panel of all heads
/// together). Returns the heads and whether `all` was asked for.
fn parse_heads(a: &PlotArgs, kind: &Plottable) -> Result<(Vec<(usize, usize)>, bool)> {
    let mut heads = Vec::new();
    let mut all = false;
    for h in &a.heads {
        if h.trim().eq_ignore_ascii_case("all") {
            if !matches!(kind, Plottable::FunctionVector(_)) {
                bail!(
                    "--head all: only function-vector files have a panel of all heads; \
                     without --head every head in the file is drawn"
                );
            }
            all = true;
        } else {
            heads.push(super::attention::parse_head(h)?);
        }
    }
    Ok((heads, all))
}

fn figure(a: &PlotArgs, range: Option<f64>, loaded: &[Plottable]) -> Result<Box<dyn Figure>> {
    for (f, p) in a.files.iter().zip(loaded) {
        check_flags(a, f, p)?;
    }
    let (heads, with_all) = parse_heads(a, &loaded[0])?;
    let opts = heatmap::HeatmapOptions {
        width: a.width,
        height: a.height,
        range,
        crop: a.crop.as_deref().map(parse_crop).transpose()?,
        heads_as_rows: a.heads_as_rows,
        groups: a
            .groups
            .iter()
            .map(|g| parse_group(g))
            .collect::<Result<_>>()?,
    };
    if let Some(n) = a.bars {
        return bars_figure(a, n, &opts, &loaded[0]);
    }
    if a.compare && side_by_side(loaded) {
        return side_figure(a, range, loaded);
    }
    if loaded.len() == 2 {
        let (Plottable::PathPatching(x), Plottable::PathPatching(y)) = (&loaded[0], &loaded[1])
        else {
            bail!("--compare and --diff take two path-patching results");
        };
        let fig = if a.diff {
            heatmap::Heatmap::diff(x, y, &opts)?
        } else {
            heatmap::Heatmap::pair(x, y, &opts)?
        };
        return Ok(Box::new(fig));
    }
    Ok(match &loaded[0] {
        Plottable::PathPatching(r) => Box::new(heatmap::Heatmap::single(r, &opts)?),
        Plottable::Scan(r) => Box::new(heatmap::Heatmap::scan(r, &opts)?),
        Plottable::Attention(f) => {
            // The head or query is checked against this file: say which file.
            let in_file = |e: plot::PlotError| anyhow::anyhow!("{}: {e}", a.files[0].display());
            match a.query {
                Some(q) => Box::new(attention::AttentionRow::new(f, &heads, q).map_err(in_file)?),
                None => Box::new(attention::AttentionGrid::new(f, &heads).map_err(in_file)?),
            }
        }
        Plottable::FunctionVector(f) if !heads.is_empty() || with_all => {
            let only = f
                .only(&heads, with_all)
                .map_err(|e| anyhow::anyhow!("{}: {e}", a.files[0].display()))?;
            Box::new(analysis::FvFigure::new(&only, range)?)
        }
        Plottable::FunctionVector(f) => Box::new(analysis::FvFigure::new(f, range)?),
        Plottable::Ablation(f) => Box::new(analysis::BarFigure::ablation(f)),
        Plottable::Circuit(f) => Box::new(analysis::BarFigure::minimality(f)),
    })
}

/// `--bars N`: the N senders of largest |r| of one run or scan with their intervals. The
/// heatmap's layout flags draw nothing here and are refused by name.
fn bars_figure(
    a: &PlotArgs,
    n: usize,
    opts: &heatmap::HeatmapOptions,
    loaded: &Plottable,
) -> Result<Box<dyn Figure>> {
    if a.files.len() > 1 {
        bail!("--bars draws one result: got {} files", a.files.len());
    }
    if n == 0 {
        bail!("--bars 0: expected the number of senders to draw, at least 1");
    }
    let layout_flags = [
        ("--heads-as-rows", a.heads_as_rows),
        ("--group", !a.groups.is_empty()),
        ("--range", opts.range.is_some()),
        ("--width", a.width.is_some()),
        ("--height", a.height.is_some()),
    ];
    if let Some((flag, _)) = layout_flags.iter().find(|f| f.1) {
        bail!("{flag} does not apply with --bars (it lays out the heatmap)");
    }
    let file = &a.files[0];
    let in_file = |e: plot::PlotError| anyhow::anyhow!("--bars: {}: {e}", file.display());
    let crop = |n_layers: usize| -> Result<(usize, usize)> {
        match opts.crop {
            Some((lo, hi)) if lo > hi || hi >= n_layers => bail!(
                "--crop {lo}-{hi}: expected LO-HI with LO ≤ HI < {n_layers} (the result's layers)"
            ),
            Some(c) => Ok(c),
            None => Ok((0, n_layers.saturating_sub(1))),
        }
    };
    Ok(match loaded {
        Plottable::PathPatching(r) => {
            Box::new(plot::bars::IntervalBars::run(r, n, crop(r.n_layers)?).map_err(in_file)?)
        }
        Plottable::Scan(r) => {
            Box::new(plot::bars::IntervalBars::scan(r, n, crop(r.n_layers)?).map_err(in_file)?)
        }
        other => bail!(
            "--bars does not apply to {} ({})",
            file.display(),
            other.kind()
        ),
    })
}

/// Whether `--compare` draws its results as panels of their own shapes (`plot::side`): more
/// than two, or two of different shapes (two of one shape share one layout, `Heatmap::pair`).
fn side_by_side(loaded: &[Plottable]) -> bool {
    let shapes: Vec<(usize, usize)> = loaded
        .iter()
        .filter_map(|p| match p {
            Plottable::PathPatching(r) => Some((r.n_layers, r.n_heads)),
            _ => None,
        })
        .collect();
    loaded.len() > 2 || shapes.windows(2).any(|w| w[0] != w[1])
}

/// `--compare` of results of any shapes: one panel each on a depth-normalized layer axis,
/// headed with its model (from the record, else the file's folder).
fn side_figure(a: &PlotArgs, range: Option<f64>, loaded: &[Plottable]) -> Result<Box<dyn Figure>> {
    let mut results = Vec::new();
    for (p, file) in loaded.iter().zip(&a.files) {
        let Plottable::PathPatching(r) = p else {
            bail!("{}: --compare takes path-patching results", file.display());
        };
        let name = match &r.model {
            Some(m) => plot::model_name(m),
            None => file
                .parent()
                .and_then(|d| d.file_name())
                .map_or_else(|| "?".into(), |d| d.to_string_lossy().to_string()),
        };
        results.push((&**r, name));
    }
    Ok(Box::new(crate::plot::side::SideBySide::new(
        &results, range,
    )?))
}
