//! The figure key (`F`): what is on screen, as SVG and PNG (`crate::plot`), beside the run's
//! saved JSON so that a figure and the numbers it shows travel together.

use super::*;
use crate::plot::heatmap::HeatmapOptions;
use crate::results::text::CellMeasure;

impl Session {
    /// The saved JSON of the current run, saving it first (as `s` does) when it is not saved
    /// yet. `None` when it cannot be saved (nothing run, still running: `save_current` says
    /// why in the status line).
    pub(in crate::tui::app) fn saved_run_path(&mut self) -> Option<PathBuf> {
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

    /// The status line after writing a figure: where it went (after "saved …" when the run
    /// was saved for it), or why it was not written.
    pub(in crate::tui::app) fn figure_status(
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
}
