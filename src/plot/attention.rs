//! Attention-pattern figures from `headhunt attention --json` files: a query × key grid per head
//! with the prompt's tokens as tick labels (like the paper's `gemma_2_circuit_2`), or one query
//! row as bars.

use plotters::prelude::DrawingBackend;

use super::canvas::{self, figure, text_size, Anchor, Area, Rgb, BLACK_TEXT, GREY_TEXT};
use super::canvas::{SUBTITLE, TICK};
use super::scale::{along, SEQUENTIAL};
use super::PlotError;

pub use crate::results::attention::{
    AttentionFile, HeadPattern, PromptsUsed, FORMAT, FORMAT_VERSION,
};

/// The model and data of `f`, for subtitles (the model by name, never a machine path).
fn subtitle(f: &AttentionFile) -> String {
    let model = f
        .model
        .as_ref()
        .map_or_else(|| "unknown model".to_string(), super::model_name);
    match &f.data {
        Some(d) => format!(
            "{model} · {}",
            d.spec
                .file
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
        ),
        None => model,
    }
}

/// The patterns of `heads` (all when empty), as [`AttentionFile::select`].
fn select<'a>(
    f: &'a AttentionFile,
    heads: &[(usize, usize)],
) -> Result<Vec<&'a HeadPattern>, PlotError> {
    f.select(heads).map_err(PlotError::Invalid)
}

/// Token tick labels: at most 14 characters, with their position.
fn token_label(i: usize, t: &str) -> String {
    let short: String = t.chars().take(12).collect();
    format!("{short} ({i})")
}

/// Query × key grids side by side, one sequential scale per head on 0..1.
#[derive(Debug, Clone)]
pub struct AttentionGrid {
    pub size: (u32, u32),
    pub title: String,
    pub subtitle: String,
    pub tokens: Vec<String>,
    pub heads: Vec<HeadPattern>,
    pub cell: f64,
    /// Top-left corner of each head's grid.
    pub origins: Vec<(i32, i32)>,
}
figure!(AttentionGrid);

impl AttentionGrid {
    pub fn new(f: &AttentionFile, heads: &[(usize, usize)]) -> Result<Self, PlotError> {
        let chosen: Vec<HeadPattern> = select(f, heads)?.into_iter().cloned().collect();
        let n = f.tokens.len().max(1);
        let cell = (480.0 / n as f64).clamp(14.0, 36.0).round();
        let label_w = f
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| text_size(&token_label(i, t), TICK).0)
            .max()
            .unwrap_or(0) as i32;
        let grid = (cell * n as f64).round() as i32;
        let (left, top, gap, right) = (label_w + 16, 84, 60 + label_w, 70);
        let origins: Vec<(i32, i32)> = (0..chosen.len())
            .map(|i| (left + i as i32 * (grid + gap), top))
            .collect();
        let width = left + chosen.len() as i32 * (grid + gap) - gap + right;
        let height = top + grid + label_w + 40;
        let title = format!("Attention patterns, {}", f.prompts_label());
        let subtitle = format!("{} · rows: query, columns: key", subtitle(f));
        let width = width
            .max(480)
            .max(canvas::headings_width(&title, &subtitle));
        Ok(AttentionGrid {
            size: (width as u32, height as u32),
            title,
            subtitle,
            tokens: f.tokens.clone(),
            heads: chosen,
            cell,
            origins,
        })
    }

    /// With another title (the explorer words its own), the figure widened when it needs
    /// more room for it than the one it was laid out for.
    pub fn with_title(mut self, title: String) -> Self {
        let need = canvas::headings_width(&title, &self.subtitle).max(0) as u32;
        self.size.0 = self.size.0.max(need);
        self.title = title;
        self
    }

    /// The colour of weight `w` in the grid of head number `i`.
    pub fn colour(i: usize, w: f64) -> Rgb {
        along(SEQUENTIAL[i % SEQUENTIAL.len()], w)
    }

    /// Pixel rectangle of (query, key) in the grid of head number `i`.
    pub fn cell_rect(&self, i: usize, q: usize, k: usize) -> ((i32, i32), (i32, i32)) {
        let (x0, y0) = self.origins[i];
        let at = |j: usize| (j as f64 * self.cell).round() as i32;
        ((x0 + at(k), y0 + at(q)), (x0 + at(k + 1), y0 + at(q + 1)))
    }

    fn draw<DB: DrawingBackend>(&self, area: &Area<DB>) -> Result<(), PlotError> {
        canvas::headings(area, self.size.0, &self.title, &self.subtitle)?;
        let n = self.tokens.len();
        let grid = (self.cell * n as f64).round() as i32;
        for (i, hp) in self.heads.iter().enumerate() {
            for (q, row) in hp.pattern.iter().enumerate() {
                for (k, &wgt) in row.iter().enumerate() {
                    let (a, b) = self.cell_rect(i, q, k);
                    canvas::fill(area, a, b, Self::colour(i, wgt as f64))?;
                }
            }
            let (x0, y0) = self.origins[i];
            canvas::outline(area, (x0, y0), (x0 + grid, y0 + grid), GREY_TEXT, 1)?;
            let name = format!("H{}.{}", hp.head.0, hp.head.1);
            canvas::text(
                area,
                &name,
                (x0 + grid / 2, y0 - 22),
                SUBTITLE,
                Anchor::Top,
                BLACK_TEXT,
            )?;
            for (j, t) in self.tokens.iter().enumerate() {
                let mid = ((j as f64 + 0.5) * self.cell).round() as i32;
                let s = token_label(j, t);
                canvas::text(
                    area,
                    &s,
                    (x0 - 4, y0 + mid),
                    TICK,
                    Anchor::Right,
                    BLACK_TEXT,
                )?;
                canvas::text_up(area, &s, (x0 + mid, y0 + grid + 4), TICK, BLACK_TEXT)?;
            }
            let scale = move |v: f64| Self::colour(i, v);
            let bx = x0 + grid + 10;
            canvas::colour_bar(
                area,
                (bx, y0 + 10),
                (10, grid - 10),
                (0.0, 1.0),
                &scale,
                "",
                "",
                TICK,
            )?;
        }
        Ok(())
    }
}

/// One query row of each head as bars over the key tokens, heads stacked.
#[derive(Debug, Clone)]
pub struct AttentionRow {
    pub size: (u32, u32),
    pub title: String,
    pub subtitle: String,
    pub tokens: Vec<String>,
    /// (head, weights of the query row).
    pub rows: Vec<((usize, usize), Vec<f32>)>,
    pub query: usize,
    pub pitch: f64,
    pub plot_h: i32,
    pub origins: Vec<(i32, i32)>,
}
figure!(AttentionRow);

impl AttentionRow {
    /// `query` is 0-based; negative counts from the end (-1: the last token).
    pub fn new(f: &AttentionFile, heads: &[(usize, usize)], query: i64) -> Result<Self, PlotError> {
        let n = f.tokens.len();
        let q = if query < 0 { n as i64 + query } else { query };
        if q < 0 || q as usize >= n {
            return Err(PlotError::Invalid(format!(
                "query {query}: the prompts have {n} tokens"
            )));
        }
        let q = q as usize;
        let rows: Vec<_> = select(f, heads)?
            .into_iter()
            .map(|hp| (hp.head, hp.pattern[q].clone()))
            .collect();
        let pitch = (720.0 / n.max(1) as f64).clamp(16.0, 40.0).round();
        let label_w = (0..n)
            .map(|i| text_size(&token_label(i, &f.tokens[i]), TICK).0)
            .max()
            .unwrap_or(0) as i32;
        let plot_h = 160;
        let (left, top) = (60, 74);
        let block = plot_h + label_w + 40;
        let origins = (0..rows.len())
            .map(|i| (left, top + i as i32 * block))
            .collect();
        let width = left + (pitch * n as f64) as i32 + 30;
        let title = format!(
            "Attention of query {q} {:?}, {}",
            f.tokens[q],
            f.prompts_label()
        );
        let subtitle = subtitle(f);
        let width = width
            .max(480)
            .max(canvas::headings_width(&title, &subtitle));
        Ok(AttentionRow {
            size: (width as u32, (top + rows.len() as i32 * block) as u32),
            title,
            subtitle,
            tokens: f.tokens.clone(),
            rows,
            query: q,
            pitch,
            plot_h,
            origins,
        })
    }

    /// With another title, widened as [`AttentionGrid::with_title`].
    pub fn with_title(mut self, title: String) -> Self {
        let need = canvas::headings_width(&title, &self.subtitle).max(0) as u32;
        self.size.0 = self.size.0.max(need);
        self.title = title;
        self
    }

    /// Pixel rectangle of the bar of key `k` in block `i`.
    pub fn bar_rect(&self, i: usize, k: usize) -> ((i32, i32), (i32, i32)) {
        let (x0, y0) = self.origins[i];
        let w = self.rows[i].1[k].clamp(0.0, 1.0) as f64;
        let x = x0 + (k as f64 * self.pitch).round() as i32;
        let top = y0 + ((1.0 - w) * self.plot_h as f64).round() as i32;
        let bar_w = (self.pitch * 0.8).round() as i32;
        ((x + 1, top), (x + 1 + bar_w, y0 + self.plot_h))
    }

    fn draw<DB: DrawingBackend>(&self, area: &Area<DB>) -> Result<(), PlotError> {
        canvas::headings(area, self.size.0, &self.title, &self.subtitle)?;
        let n = self.tokens.len();
        for (i, ((l, h), _)) in self.rows.iter().enumerate() {
            let (x0, y0) = self.origins[i];
            let x1 = x0 + (self.pitch * n as f64).round() as i32;
            for t in [0.0, 0.25, 0.5, 0.75, 1.0] {
                let y = y0 + ((1.0 - t) * self.plot_h as f64).round() as i32;
                canvas::fill(area, (x0, y), (x1, y + 1), (225, 225, 225))?;
                canvas::text(
                    area,
                    &super::number::fixed(t, 2),
                    (x0 - 4, y),
                    TICK,
                    Anchor::Right,
                    BLACK_TEXT,
                )?;
            }
            let colour = along(SEQUENTIAL[i % SEQUENTIAL.len()], 0.75);
            for k in 0..n {
                let (a, b) = self.bar_rect(i, k);
                canvas::fill(area, a, b, colour)?;
                let mid = x0 + ((k as f64 + 0.5) * self.pitch).round() as i32;
                let s = token_label(k, &self.tokens[k]);
                canvas::text_up(area, &s, (mid, y0 + self.plot_h + 4), TICK, BLACK_TEXT)?;
            }
            let name = format!("H{l}.{h}");
            canvas::text(
                area,
                &name,
                (x0 + 6, y0 - 4),
                SUBTITLE,
                Anchor::Left,
                BLACK_TEXT,
            )?;
        }
        Ok(())
    }
}
