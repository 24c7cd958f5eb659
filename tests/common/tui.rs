//! What the explorer's state and rendering tests share: a `Setup` on a fixture, the model
//! description the worker would send for a 4 × 4 model, and key presses.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use headhunt::data::{DataFile, DataOptions};
use headhunt::model::{Family, ModelOrigin};
use headhunt::patching::Algorithm;
use headhunt::results::ModelInfo;
use headhunt::tui::app::{App, Setup};
use std::path::PathBuf;

/// Layers and heads of the model that [`info`] describes.
pub const LAYERS: usize = 4;
pub const HEADS: usize = 4;

/// The explorer's start on `model` (a path or "fixture") with tiny-gemma2's addition data,
/// default data options, batch size 4, saving into `results`; tests change fields they need.
pub fn setup(model: &str, results: PathBuf) -> Setup {
    Setup {
        model: model.into(),
        tokenizer: None,
        device: "cpu".into(),
        dtype: None,
        allow_unknown_config_keys: false,
        data: DataFile {
            data: crate::common::fixture("tiny-gemma2").join("addition.jsonl"),
            options: DataOptions::default(),
        },
        batch_size: 4,
        begin_layer: 0,
        algorithm: Algorithm::Fast,
        receiver: None,
        results_dir: results,
        gallery_dirs: vec![],
        open: None,
        side_by_side: vec![],
    }
}

/// A 4 × 4 Gemma-2 model named "fixture", as `Event::ModelLoaded` carries it.
pub fn info() -> ModelInfo {
    ModelInfo {
        origin: ModelOrigin::Local {
            path: "fixture".into(),
        },
        label: "fixture".into(),
        family: Family::Gemma2,
        n_layers: LAYERS,
        n_heads: HEADS,
        n_kv_heads: 2,
        d_model: 64,
        d_head: 16,
        d_mlp: 128,
        vocab_size: 50,
        dtype: "f32".into(),
        device: "cpu".into(),
        quantization: None,
        ignored_config_keys: Vec::new(),
        parallel_block: false,
    }
}

pub fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

/// Presses each character of `keys` in turn.
pub fn press(app: &mut App, keys: &str) {
    for ch in keys.chars() {
        app.on_key(key(KeyCode::Char(ch)));
    }
}

/// The baselines event that opens sweep `id` (LD_normal 2, LD_contrast −1, 8 examples): with
/// patched logit differences p, r = (p + 1) / −3.
pub fn baselines(id: u64) -> headhunt::worker::Event {
    headhunt::worker::Event::Patch {
        id,
        event: headhunt::patching::PatchEvent::Baselines {
            ld_normal: 2.0,
            ld_contrast: -1.0,
            n_examples: 8,
            cache_seconds: 0.01,
            top_tokens: vec![None; 8],
        },
    }
}

/// Feeds the worker's model-load event for [`info`]'s model (job 1).
pub fn model_loaded(app: &mut App) {
    app.on_worker(headhunt::worker::Event::ModelLoaded {
        id: 1,
        info: info(),
        seconds: 0.1,
        n_params: 1000,
    });
}

/// Feeds the worker's data-load event (job 2): tiny-gemma2's addition data, 8 examples of
/// `len` tokens, no preview.
pub fn data_loaded(app: &mut App, len: usize) {
    let spec = headhunt::data::DataSpec::new(
        crate::common::fixture("tiny-gemma2").join("addition.jsonl"),
        headhunt::data::TaskKind::Addition,
    );
    app.on_worker(headhunt::worker::Event::DataLoaded {
        id: 2,
        info: headhunt::results::DataInfo {
            spec,
            n_examples: 8,
            skipped: vec![],
            multi_token_answers: vec![],
        },
        lengths: vec![len],
        preview: vec![],
    });
}

/// An app of `setup` with model and data "loaded" (the effects they asked for dropped).
pub fn loaded(setup: Setup, len: usize) -> App {
    let mut app = App::new(setup);
    app.take_effects();
    model_loaded(&mut app);
    data_loaded(&mut app, len);
    app
}

/// Draws the app at `w` × `h` (ratatui's TestBackend) and returns the screen's text, one
/// line per row.
pub fn screen(app: &mut App, w: u16, h: u16) -> String {
    use ratatui::{backend::TestBackend, Terminal};
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    app.viewport = (w, h);
    term.draw(|f| headhunt::tui::view::draw(f, app)).unwrap();
    let buf = term.backend().buffer();
    let mut s = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            s.push_str(buf[(x, y)].symbol());
        }
        s.push('\n');
    }
    s
}
