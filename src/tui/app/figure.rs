//! The figure key (`F`): what is on screen, as SVG and PNG (`crate::plot`), beside the run's
//! saved JSON so that a figure and the numbers it shows travel together.

use super::*;
use crate::plot::attention::{AttentionFile, AttentionGrid, AttentionRow, HeadPattern};
use crate::plot::attention::{PromptsUsed, FORMAT, FORMAT_VERSION};
use crate::plot::heatmap::HeatmapOptions;
use crate::plot::Figure;
use crate::results::text::CellMeasure;

impl Session {
    /// The saved JSON of the current run, saving it first (as `s` does) when it is not saved
    /// yet. `None` when it cannot be saved (nothing run, still running: `save_current` says
    /// why in the status line).
    fn saved_run_path(&mut self) -> Option<PathBuf> {
        let i = *self.trail.get(self.trail_pos)?;
        if self.runs[i].saved_to.is_none() {
            self.save_current();
        }
        self.runs[i].saved_to.clone()
    }

    /// The heatmap as shown: the current record with the tagged groups, the colour range in
    /// force (auto with its floor, or fixed), the crop and the orientation.
    pub fn heatmap_figure_options(&self, rec: &RunRecord) -> HeatmapOptions {
        let layers = self.layer_range();
        let c = crate::tui::layout::color_range(rec, self.range, layers);
        HeatmapOptions {
            range: Some(c.measure.shown(c.range)),
            crop: self.crop.map(|_| layers),
            heads_as_rows: !self.layers_as_rows(),
            ..HeatmapOptions::default()
        }
    }

    /// `F` on the heatmap: the figure of the current run, beside its saved JSON.
    pub fn write_heatmap_figure(&mut self) {
        let Some(json) = self.saved_run_path() else {
            return;
        };
        let saved = self.status.1.clone();
        let Some(mut rec) = self.current_record().cloned() else {
            return;
        };
        rec.groups = self.tagged_groups();
        let opts = self.heatmap_figure_options(&rec);
        let json = self.figure_beside(&rec, json);
        let result = crate::plot::write_figure_for(&rec, &opts, &json);
        self.figure_status(result, saved);
    }

    /// Where a heatmap's figure goes, named as its JSON: beside the JSON when that is in the
    /// results folder; otherwise (the paper's results, a file opened from elsewhere) in the
    /// results folder as `MODEL-NAME`, as the comparison's figure does: a figure is never
    /// written into a folder the user did not save to.
    fn figure_beside(&self, rec: &RunRecord, json: PathBuf) -> PathBuf {
        let results = &self.setup.results_dir;
        let inside = |p: &std::path::Path| {
            let abs = |q: &std::path::Path| std::path::absolute(q).unwrap_or(q.to_path_buf());
            abs(p).starts_with(abs(results))
        };
        if inside(&json) {
            return json;
        }
        let model = record_model_name(rec, Some(&json));
        let name = json.file_name().unwrap_or_default().to_string_lossy();
        results.join(format!("{model}-{name}"))
    }

    /// `F` on the comparison: the marked and the selected result side by side on one scale,
    /// or their difference, as `headhunt plot --compare` / `--diff` draws them, with the
    /// colour range, orientation and crop shown, as `A_vs_B` / `A_minus_B` in the results folder
    /// (never beside a file the user did not write there, such as the paper's results).
    pub fn write_compare_figure(&mut self) {
        let g = &self.gallery;
        let Some((m, a, e, b)) = g.compared() else {
            return;
        };
        // The range on screen, in the figure's unit; where the figure's unit is not the
        // screen's (one side ill-conditioned), the figure's own auto range.
        let layers = self.layer_range_of(a.n_layers);
        let c = crate::tui::layout::compare_range((a, b), g.diff, self.range, layers);
        let figure_raw = crate::plot::heatmap::Quantity::of(&[a, b])
            == crate::plot::heatmap::Quantity::RawLogits;
        let range =
            (figure_raw == (c.measure == CellMeasure::RawEffect)).then(|| c.measure.shown(c.range));
        let opts = HeatmapOptions {
            range,
            crop: self.crop.map(|_| self.layer_range_of(a.n_layers)),
            heads_as_rows: !self.compare_layers_as_rows(),
            ..HeatmapOptions::default()
        };
        let stem = |p: &std::path::Path| {
            p.file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string()
        };
        let joint = if g.diff { "minus" } else { "vs" };
        let name = format!("{}_{joint}_{}", stem(&m.path), stem(&e.path));
        let fig = if g.diff {
            crate::plot::heatmap::Heatmap::diff(a, b, &opts)
        } else {
            crate::plot::heatmap::Heatmap::pair(a, b, &opts)
        };
        let result =
            fig.and_then(|f| crate::plot::write_both(&f, &self.setup.results_dir.join(name)));
        self.figure_status(result, String::new());
    }

    /// `F` on the attention screen: the view's heads (grids, or the bars of the query row
    /// shown), for the prompts shown, beside the current run's saved JSON (or in the results
    /// folder when there is no finished run to save).
    pub fn write_attention_figure(&mut self) {
        let a = &self.attention;
        let n = a.tokens.len();
        if a.waiting.is_some() || a.patterns.is_empty() || n == 0 {
            self.set_status(Level::Warn, "the patterns are still being computed");
            return;
        }
        let file = self.attention_file();
        let title = self.attention_title();
        let query = a.query.unwrap_or(n - 1).min(n - 1);
        let fig: Result<Box<dyn Figure>, _> = if a.bars {
            AttentionRow::new(&file, &[], query as i64).map(|f| {
                let t = format!(
                    "Attention of query {query} {:?} · {title}",
                    file.tokens[query]
                );
                Box::new(f.with_title(t)) as Box<dyn Figure>
            })
        } else {
            AttentionGrid::new(&file, &[]).map(|f| {
                let t = format!("Attention patterns · {title}");
                Box::new(f.with_title(t)) as Box<dyn Figure>
            })
        };
        let suffix = self.attention_suffix(query);
        let finished = self
            .current()
            .is_some_and(|s| s.record.is_some() && !matches!(s.state, RunState::Running { .. }));
        let json = if finished {
            self.saved_run_path()
        } else {
            None
        };
        let saved = if json.is_some() {
            self.status.1.clone()
        } else {
            String::new()
        };
        let stem = match json {
            Some(j) => {
                let name = j.file_stem().unwrap_or_default().to_string_lossy();
                j.with_file_name(format!("{name}-{suffix}"))
            }
            None => {
                let model = self.model.as_ref().map_or("model", |m| m.label.as_str());
                let model = std::path::Path::new(model.trim_end_matches('/'))
                    .file_name()
                    .map_or_else(|| "model".into(), |m| m.to_string_lossy().to_string());
                self.setup.results_dir.join(format!("{model}-{suffix}"))
            }
        };
        let result = fig.and_then(|f| crate::plot::write_both(f.as_ref(), &stem));
        self.figure_status(result, saved);
    }

    /// The status line after writing a figure: where it went (after "saved …" when the run
    /// was saved for it), or why it was not written.
    fn figure_status(
        &mut self,
        result: Result<[PathBuf; 2], crate::plot::PlotError>,
        saved: String,
    ) {
        match result {
            Ok([svg, png]) => {
                let before = if saved.starts_with("saved ") {
                    format!("{saved}; ")
                } else {
                    String::new()
                };
                // The PNG is beside the SVG (as a rule): its name is enough.
                let png = match (png.parent() == svg.parent(), png.file_name()) {
                    (true, Some(name)) => name.to_string_lossy().to_string(),
                    _ => png.display().to_string(),
                };
                let msg = format!("{before}figure {} and {png}", svg.display());
                self.set_status(Level::Info, msg);
            }
            Err(e) => self.set_status(Level::Error, format!("figure not written: {e}")),
        }
    }

    /// The attention view's patterns as an attention file (what `headhunt attention --json`
    /// writes), for the figure code.
    fn attention_file(&self) -> AttentionFile {
        let a = &self.attention;
        let data = self.data.as_ref();
        let prompts = match a.prompts {
            PromptChoice::One(example) => PromptsUsed::One { example },
            PromptChoice::Mean(requested) => PromptsUsed::Mean {
                requested,
                // Exact when the examples have one length; else the title says "up to".
                used: requested.min(data.map_or(requested, |d| d.info.n_examples)),
            },
        };
        AttentionFile {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            model: self.model.clone(),
            data: data.map(|d| d.info.clone()),
            run: a.run.name().into(),
            prompts,
            tokens: a
                .tokens
                .iter()
                .map(|t| crate::model::tokenizer::printable(t))
                .collect(),
            heads: a
                .heads
                .iter()
                .zip(&a.patterns)
                .map(|(&head, p)| HeadPattern {
                    head,
                    pattern: p.clone(),
                })
                .collect(),
        }
    }

    /// The run and prompts as the attention screen words them (prompts counted from 1).
    fn attention_title(&self) -> String {
        let a = &self.attention;
        let one_length = self.data.as_ref().is_none_or(|d| d.lengths.len() <= 1);
        let prompts = match a.prompts {
            PromptChoice::Mean(n) if one_length => format!("mean of the first {n} prompts"),
            PromptChoice::Mean(n) => {
                format!("mean of up to the first {n} prompts (those of the first one's length)")
            }
            PromptChoice::One(i) => format!("prompt {} alone", i + 1),
        };
        format!("{} run · {prompts}", a.run.name())
    }

    /// `attention-1.3_2.0-normal-mean4` (grids) or `…-prompt2-query11` (bars): the figure's
    /// name after the run's, so that views of one run do not overwrite each other.
    fn attention_suffix(&self, query: usize) -> String {
        let a = &self.attention;
        let heads: Vec<String> = a.heads.iter().map(|(l, h)| format!("{l}.{h}")).collect();
        let prompts = match a.prompts {
            PromptChoice::Mean(n) => format!("mean{n}"),
            PromptChoice::One(i) => format!("prompt{}", i + 1),
        };
        let bars = if a.bars {
            format!("-query{query}")
        } else {
            String::new()
        };
        format!(
            "attention-{}-{}-{prompts}{bars}",
            heads.join("_"),
            a.run.name()
        )
    }
}
