//! Figures of the circuit analyses (`headhunt fv`, `ablate`, `circuit` JSON files):
//! function-vector Δ grids with digit labels, ablation accuracy bars against random groups
//! with error bars, and minimality bars.

use std::collections::BTreeMap;

use plotters::prelude::DrawingBackend;

use super::canvas::{self, figure, group_colour, text_size, Anchor, Area, Rgb, Swatch};
use super::canvas::{BLACK_TEXT, GREY_TEXT, SUBTITLE, TICK};
use super::number::fixed;
use super::scale::{auto_range, diverging};
use super::PlotError;

use crate::results::analysis::Common;
pub use crate::results::analysis::{AblationFile, CircuitFile, FvFile};
pub use crate::results::analysis::{ABLATION_FORMAT, CIRCUIT_FORMAT, FV_FORMAT};

/// The model's name and the data file's name of an analysis file, for subtitles: no
/// folders (see [`super::model_name`]).
fn source_label(c: &Common) -> String {
    let model = super::model_name(&c.model);
    match c.data.spec.file.file_name() {
        Some(d) => format!("{model} · {}", d.to_string_lossy()),
        None => model,
    }
}

fn head_name((l, h): (usize, usize)) -> String {
    format!("{l}.{h}")
}

fn heads_list(heads: &[(usize, usize)]) -> String {
    heads
        .iter()
        .map(|&h| head_name(h))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the figures need of a function-vector file beyond what its loader checks.
impl FvFile {
    /// The panels of `heads`, and the panel of all heads together when `with_all`: for a
    /// figure of one head's FV (`--head 13.8`), or of it beside the combined one (`--head
    /// 13.8 --head all`). `heads` stays the file's list, so a title can say what "all" is.
    /// A head or panel not in the file is an error that lists what it has.
    pub fn only(&self, heads: &[(usize, usize)], with_all: bool) -> Result<FvFile, PlotError> {
        let mut delta = BTreeMap::new();
        let mut keys: Vec<String> = heads.iter().map(|&h| head_name(h)).collect();
        if with_all {
            keys.push("all".into());
        }
        for k in keys {
            let m = self.delta.get(&k).ok_or_else(|| {
                let what = if k == "all" {
                    "the panel of all heads together (`all`)".to_string()
                } else {
                    format!("head {k}")
                };
                PlotError::Invalid(format!(
                    "{what} is not in the file (it has {})",
                    self.keys().join(", ")
                ))
            })?;
            delta.insert(k, m.clone());
        }
        Ok(FvFile {
            delta,
            ..self.clone()
        })
    }

    /// The figure's title: the heads shown, and which heads the panel "all" combines when
    /// not every one of them is shown beside it.
    pub fn title(&self) -> String {
        let keys = self.keys();
        let shown: Vec<&String> = keys.iter().filter(|k| *k != "all").collect();
        let all = keys.len() > shown.len();
        let list = |v: &[&String]| {
            let noun = if v.len() == 1 { "head" } else { "heads" };
            let names: Vec<&str> = v.iter().map(|s| s.as_str()).collect();
            format!("{noun} {}", names.join(", "))
        };
        let every = shown.len() == self.heads.len();
        match (shown.is_empty(), all) {
            (false, false) => format!("Function-vector Δ, {}", list(&shown)),
            (false, true) if every => format!("Function-vector Δ, {}", list(&shown)),
            (_, true) => {
                let heads = format!("heads {} together", heads_list(&self.heads));
                if shown.is_empty() {
                    format!("Function-vector Δ of {heads}")
                } else {
                    format!("Function-vector Δ, {}; all: {heads}", list(&shown))
                }
            }
            (true, false) => "Function-vector Δ".into(),
        }
    }
}

/// Function-vector Δ grids, five per row, on one RdBu scale.
#[derive(Debug, Clone)]
pub struct FvFigure {
    pub size: (u32, u32),
    pub title: String,
    pub subtitle: String,
    pub file: FvFile,
    pub keys: Vec<String>,
    pub range: f64,
    pub cell: f64,
    pub origins: Vec<(i32, i32)>,
}
figure!(FvFigure);

impl FvFigure {
    pub fn new(file: &FvFile, range: Option<f64>) -> Result<Self, PlotError> {
        let keys = file.keys();
        let range =
            range.unwrap_or_else(|| auto_range(file.delta.values().flatten().flatten().copied()));
        let cell = 22.0;
        let label_w = file
            .naive_prompts
            .iter()
            .map(|p| text_size(&short(p), TICK).0)
            .max()
            .unwrap_or(0) as i32;
        let rows = file.naive_prompts.len() as i32;
        let cols = file.digits.len() as i32;
        let (pw, ph) = (cols * cell as i32 + label_w + 24, rows * cell as i32 + 70);
        let per_row = keys.len().min(5) as i32;
        let origins = (0..keys.len() as i32)
            .map(|i| (20 + label_w + (i % per_row) * pw, 70 + (i / per_row) * ph))
            .collect();
        let n_rows = (keys.len() as i32 + per_row - 1) / per_row;
        let title = file.title();
        let subtitle = format!(
            "{} · rows: naive prompt, columns: digit",
            source_label(&file.common)
        );
        let width = (per_row * pw + 110)
            .max(480)
            .max(canvas::headings_width(&title, &subtitle));
        Ok(FvFigure {
            size: (width as u32, (70 + n_rows * ph) as u32),
            title,
            subtitle,
            file: file.clone(),
            keys,
            range,
            cell,
            origins,
        })
    }

    pub fn cell_rect(&self, panel: usize, r: usize, c: usize) -> ((i32, i32), (i32, i32)) {
        let (x0, y0) = self.origins[panel];
        let s = self.cell as i32;
        let (x, y) = (x0 + c as i32 * s, y0 + r as i32 * s);
        ((x, y), (x + s, y + s))
    }

    fn draw<DB: DrawingBackend>(&self, area: &Area<DB>) -> Result<(), PlotError> {
        let w = self.size.0 as i32;
        canvas::headings(area, self.size.0, &self.title, &self.subtitle)?;
        for (p, key) in self.keys.iter().enumerate() {
            let m = &self.file.delta[key];
            for (r, row) in m.iter().enumerate() {
                for (c, &v) in row.iter().enumerate() {
                    let (a, b) = self.cell_rect(p, r, c);
                    let col = if v.is_finite() {
                        diverging(v, self.range)
                    } else {
                        canvas::MISSING
                    };
                    canvas::fill(area, a, b, col)?;
                }
            }
            let (x0, y0) = self.origins[p];
            let s = self.cell as i32;
            let name = if key == "all" {
                "all heads".to_string()
            } else {
                format!("H{key}")
            };
            let gw = s * self.file.digits.len() as i32;
            canvas::text(
                area,
                &name,
                (x0 + gw / 2, y0 - 18),
                SUBTITLE,
                Anchor::Top,
                BLACK_TEXT,
            )?;
            for (r, pr) in self.file.naive_prompts.iter().enumerate() {
                let y = y0 + r as i32 * s + s / 2;
                canvas::text(
                    area,
                    &short(pr),
                    (x0 - 4, y),
                    TICK,
                    Anchor::Right,
                    BLACK_TEXT,
                )?;
            }
            let gh = s * self.file.naive_prompts.len() as i32;
            for (c, d) in self.file.digits.iter().enumerate() {
                let x = x0 + c as i32 * s + s / 2;
                canvas::text(area, d, (x, y0 + gh + 3), TICK, Anchor::Top, BLACK_TEXT)?;
            }
        }
        let range = self.range;
        canvas::colour_bar(
            area,
            (w - 80, 90),
            (14, 200),
            (-range, range),
            &|v| diverging(v, range),
            "",
            "Δ",
            TICK,
        )
    }
}

fn short(s: &str) -> String {
    let p = crate::model::tokenizer::printable(s);
    if p.chars().count() > 14 {
        format!("{}…", p.chars().take(13).collect::<String>())
    } else {
        p
    }
}

/// One bar: value, error (± std) and its colour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    pub value: f64,
    pub err: Option<f64>,
    pub colour: Rgb,
}

/// Horizontal grouped bars (ablation) or vertical bars (minimality): both are a list of
/// labelled groups of bars on one value axis.
#[derive(Debug, Clone)]
pub struct BarFigure {
    pub size: (u32, u32),
    pub title: String,
    pub subtitle: String,
    pub axis: String,
    /// (label, bars) per category.
    pub categories: Vec<(String, Vec<Bar>)>,
    pub legend: Vec<(String, Rgb)>,
    pub lo: f64,
    pub hi: f64,
    pub horizontal: bool,
    /// Plot rectangle.
    pub plot: ((i32, i32), (i32, i32)),
}
figure!(BarFigure);

/// The paper's colours of Base Acc and Contrast Acc bars.
pub const NORMAL_ACC: Rgb = (0xbf, 0x31, 0x00);
pub const CONTRAST_ACC: Rgb = (0xec, 0x9f, 0x05);

impl BarFigure {
    pub fn ablation(f: &AblationFile) -> Self {
        let pct = |v: f64| 100.0 * v;
        let pair = |n: f64, c: f64, en: Option<f64>, ec: Option<f64>| {
            vec![
                Bar {
                    value: pct(n),
                    err: en.map(pct),
                    colour: NORMAL_ACC,
                },
                Bar {
                    value: pct(c),
                    err: ec.map(pct),
                    colour: CONTRAST_ACC,
                },
            ]
        };
        let b = &f.baseline;
        let mut categories = vec![
            (
                "no ablation".to_string(),
                pair(b.acc_normal_answer, b.acc_contrast_answer, None, None),
            ),
            (
                format!("ablate {} heads", f.heads.len()),
                pair(f.acc_normal_answer, f.acc_contrast_answer, None, None),
            ),
        ];
        let mut sub = format!(
            "{} · logit diff: {} without ablation, {} ablated",
            source_label(&f.common),
            fixed(b.logit_diff, 3),
            fixed(f.logit_diff, 3)
        );
        let r = &f.random_groups;
        if r.n > 0 {
            categories.push((
                format!("ablate {} random heads (n={})", r.size, r.n),
                pair(
                    r.acc_normal_answer.mean,
                    r.acc_contrast_answer.mean,
                    Some(r.acc_normal_answer.std),
                    Some(r.acc_contrast_answer.std),
                ),
            ));
            sub.push_str(&format!(
                ", {} ± {} random",
                fixed(r.logit_diff.mean, 3),
                fixed(r.logit_diff.std, 3)
            ));
        }
        let legend = vec![
            ("normal answer".to_string(), NORMAL_ACC),
            ("contrast answer".to_string(), CONTRAST_ACC),
        ];
        let title = format!("Accuracy when ablating {}", heads_list(&f.heads));
        BarFigure::lay_out(
            title,
            sub,
            "accuracy (%)".into(),
            categories,
            legend,
            (0.0, 100.0),
            true,
        )
    }

    pub fn minimality(f: &CircuitFile) -> Self {
        let group_of = |h: (usize, usize)| f.groups.iter().position(|g| g.heads.contains(&h));
        let categories: Vec<(String, Vec<Bar>)> = f
            .minimality
            .iter()
            .map(|m| {
                let c = group_of(m.head).map_or(GREY_TEXT, group_colour);
                (
                    head_name(m.head),
                    vec![Bar {
                        value: m.value,
                        err: None,
                        colour: c,
                    }],
                )
            })
            .collect();
        let vals = f.minimality.iter().map(|m| m.value);
        let lo = vals.clone().fold(0.0f64, f64::min);
        let hi = vals.fold(0.0f64, f64::max);
        let hi = if hi > lo { hi } else { lo + 1.0 };
        let legend = f
            .groups
            .iter()
            .enumerate()
            .map(|(g, grp)| (grp.name.clone(), group_colour(g)))
            .collect();
        let sub = format!(
            "{} · F(C) = {}, F(M) = {}, faithfulness = {}",
            source_label(&f.common),
            fixed(f.f_c, 3),
            fixed(f.f_m, 3),
            fixed(f.faithfulness, 3)
        );
        BarFigure::lay_out(
            "Minimality per head".into(),
            sub,
            "minimality (logits)".into(),
            categories,
            legend,
            (lo, hi),
            false,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn lay_out(
        title: String,
        subtitle: String,
        axis: String,
        categories: Vec<(String, Vec<Bar>)>,
        legend: Vec<(String, Rgb)>,
        (lo, hi): (f64, f64),
        horizontal: bool,
    ) -> Self {
        let label_w = categories
            .iter()
            .map(|(l, _)| text_size(l, TICK).0)
            .max()
            .unwrap_or(0) as i32;
        let n = categories.len().max(1) as i32;
        let heads_w = canvas::headings_width(&title, &subtitle);
        let (plot, size) = if horizontal {
            let h = n * 56;
            let width = (label_w + 520).max(heads_w);
            // The bars centred when the width was raised for the headings.
            let x0 = (width - label_w - 520) / 2 + label_w + 20;
            (((x0, 80), (x0 + 460, 80 + h)), (width, 80 + h + 60))
        } else {
            let w = (n * 36).max(200);
            let width = (w + 110).max(560).max(heads_w);
            // Centred under the title, which sets the width of a figure of few bars.
            let x0 = ((width - w) / 2).max(70);
            // Room above the plot for the tallest bar's value, under the legend.
            (((x0, 100), (x0 + w, 360)), (width, 360 + label_w + 30))
        };
        BarFigure {
            size: (size.0 as u32, size.1 as u32),
            title,
            subtitle,
            axis,
            categories,
            legend,
            lo,
            hi,
            horizontal,
            plot,
        }
    }

    /// Pixel position of value `v` along the value axis.
    pub fn at(&self, v: f64) -> i32 {
        let ((x0, y0), (x1, y1)) = self.plot;
        let t = ((v - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0);
        if self.horizontal {
            x0 + (t * (x1 - x0) as f64).round() as i32
        } else {
            y1 - (t * (y1 - y0) as f64).round() as i32
        }
    }

    /// Rectangle of bar `j` of category `i`, from 0 to its value.
    pub fn bar_rect(&self, i: usize, j: usize) -> ((i32, i32), (i32, i32)) {
        let ((x0, y0), (x1, y1)) = self.plot;
        let n = self.categories.len().max(1) as f64;
        let k = self.categories[i].1.len().max(1) as f64;
        let (a, b) = (self.at(0.0), self.at(self.categories[i].1[j].value));
        let (from, to) = (a.min(b), a.max(b).max(a.min(b) + 1));
        let span = if self.horizontal {
            (y1 - y0) as f64
        } else {
            (x1 - x0) as f64
        };
        let slot = span / n;
        let thick = slot * 0.7 / k;
        let start = (i as f64 * slot + slot * 0.15 + j as f64 * thick).round() as i32;
        let end = start + thick.round() as i32 - 1;
        if self.horizontal {
            ((from, y0 + start), (to, y0 + end))
        } else {
            ((x0 + start, from), (x0 + end, to))
        }
    }

    fn draw<DB: DrawingBackend>(&self, area: &Area<DB>) -> Result<(), PlotError> {
        canvas::headings(area, self.size.0, &self.title, &self.subtitle)?;
        self.draw_axis(area)?;
        let ((x0, _), (_, y1)) = self.plot;
        for (i, (label, bars)) in self.categories.iter().enumerate() {
            for (j, bar) in bars.iter().enumerate() {
                let (a, b) = self.bar_rect(i, j);
                canvas::fill(area, a, b, bar.colour)?;
                if let Some(e) = bar.err {
                    let (lo, hi) = (self.at(bar.value - e), self.at(bar.value + e));
                    if self.horizontal {
                        let m = (a.1 + b.1) / 2;
                        canvas::fill(area, (lo.min(hi), m), (lo.max(hi) + 1, m + 1), BLACK_TEXT)?;
                        canvas::fill(area, (lo, m - 4), (lo + 1, m + 5), BLACK_TEXT)?;
                        canvas::fill(area, (hi, m - 4), (hi + 1, m + 5), BLACK_TEXT)?;
                    } else {
                        let m = (a.0 + b.0) / 2;
                        canvas::fill(area, (m, lo.min(hi)), (m + 1, lo.max(hi) + 1), BLACK_TEXT)?;
                    }
                }
                if !self.horizontal {
                    let s = fixed(bar.value, 2);
                    let xc = (a.0 + b.0) / 2;
                    let y = self.at(bar.value.max(0.0)) - 3;
                    canvas::text(area, &s, (xc, y), TICK, Anchor::Bottom, BLACK_TEXT)?;
                } else {
                    let s = fixed(bar.value, 1);
                    let x = self.at(bar.value + bar.err.unwrap_or(0.0)) + 4;
                    canvas::text(
                        area,
                        &s,
                        (x, (a.1 + b.1) / 2),
                        TICK,
                        Anchor::Left,
                        BLACK_TEXT,
                    )?;
                }
            }
            let (a, b) = self.bar_rect(i, 0);
            if self.horizontal {
                let yc = (a.1 + self.bar_rect(i, bars.len() - 1).1 .1) / 2;
                canvas::text(area, label, (x0 - 6, yc), TICK, Anchor::Right, BLACK_TEXT)?;
            } else {
                let xc = (a.0 + b.0) / 2;
                canvas::text_up(area, label, (xc, y1 + 4), TICK, BLACK_TEXT)?;
            }
        }
        let ly = if self.horizontal { y1 + 40 } else { 58 };
        let items: Vec<(String, Rgb, Swatch)> = self
            .legend
            .iter()
            .map(|(name, c)| (name.clone(), *c, Swatch::Filled))
            .collect();
        canvas::legend(area, (x0, ly), &items)
    }

    fn draw_axis<DB: DrawingBackend>(&self, area: &Area<DB>) -> Result<(), PlotError> {
        let ((x0, y0), (x1, y1)) = self.plot;
        let ticks = canvas::nice_ticks(self.lo, self.hi, 5);
        let step = if ticks.len() > 1 {
            ticks[1] - ticks[0]
        } else {
            1.0
        };
        for t in &ticks {
            let p = self.at(*t);
            let s = canvas::tick_label(*t, step);
            if self.horizontal {
                canvas::fill(area, (p, y0), (p + 1, y1), (225, 225, 225))?;
                canvas::text(area, &s, (p, y1 + 4), TICK, Anchor::Top, BLACK_TEXT)?;
            } else {
                canvas::fill(area, (x0, p), (x1, p + 1), (225, 225, 225))?;
                canvas::text(area, &s, (x0 - 4, p), TICK, Anchor::Right, BLACK_TEXT)?;
            }
        }
        let zero = self.at(0.0);
        if self.horizontal {
            canvas::fill(area, (zero, y0), (zero + 1, y1), GREY_TEXT)?;
            canvas::text(
                area,
                &self.axis,
                ((x0 + x1) / 2, y1 + 20),
                TICK,
                Anchor::Top,
                BLACK_TEXT,
            )
        } else {
            canvas::fill(area, (x0, zero), (x1, zero + 1), GREY_TEXT)?;
            canvas::text_up(
                area,
                &self.axis,
                (x0 - 44, (y0 + y1) / 2 - 30),
                TICK,
                BLACK_TEXT,
            )
        }
    }
}
