//! The explorer's state machine (keys → state changes) and its rendering with ratatui's
//! TestBackend, without a model: worker events are fed by hand.

mod common;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use headhunt::data::{DataSpec, TaskKind};
use headhunt::model::HeadInput;
use headhunt::patching::{Algorithm, PatchEvent, Receiver};
use headhunt::results::groups::GroupsFile;
use headhunt::results::{DataInfo, HeadGroup, RunRecord};
use headhunt::tui::app::{
    App, Effect, EntryKind, InputPurpose, Orientation, RangeMode, RunState, Screen, Setup,
};
use headhunt::tui::view;
use headhunt::worker::{Event, Job, PairPreview};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::path::PathBuf;

use common::tui::{baselines, info, key, press, HEADS, LAYERS};

/// The common start with the paper's offset +1 (the contrast adds one).
fn setup(results: PathBuf) -> Setup {
    let mut s = common::tui::setup("fixture", results);
    s.data.options.offset = Some(1);
    s
}

/// An app with model and data "loaded".
fn ready_app(tag: &str) -> (App, PathBuf) {
    let dir = common::temp_dir(tag);
    (loaded(setup(dir.clone())), dir)
}

/// An app of `setup`, with model and data "loaded".
fn loaded(setup: Setup) -> App {
    let mut app = App::new(setup);
    let effects = app.take_effects();
    assert!(
        matches!(effects[0], Effect::Submit(_, Job::LoadModel(_))),
        "{effects:?}"
    );
    assert!(
        matches!(effects[1], Effect::Submit(_, Job::LoadData(_))),
        "{effects:?}"
    );
    app.on_worker(Event::ModelLoaded {
        id: 1,
        info: info(),
        seconds: 0.1,
        n_params: 1000,
    });
    let spec = DataSpec::new(
        common::fixture("tiny-gemma2").join("addition.jsonl"),
        TaskKind::Addition,
    );
    app.on_worker(Event::DataLoaded {
        id: 2,
        info: DataInfo {
            spec,
            n_examples: 8,
            skipped: vec![],
            multi_token_answers: vec![],
        },
        lengths: vec![29],
        preview: vec![PairPreview {
            index: 0,
            normal_tokens: vec![
                "<bos>".into(),
                "2".into(),
                "+".into(),
                "2".into(),
                "=".into(),
            ],
            contrast_tokens: vec![
                "<bos>".into(),
                "2".into(),
                "+".into(),
                "2".into(),
                "=".into(),
            ],
            normal_answer: "4".into(),
            contrast_answer: "5".into(),
        }],
    });
    app
}

/// The id of the patch job the last effects submitted.
fn submitted_patch(app: &mut App) -> (u64, Receiver) {
    let effects = app.take_effects();
    effects
        .iter()
        .find_map(|e| match e {
            Effect::Submit(id, Job::Patch(spec)) => Some((*id, spec.receiver.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no patch job in {effects:?}"))
}

/// Feeds a whole sweep's events for job `id`: rows with r = -0.1 * (layer + 1) on head 0.
fn finish_run(app: &mut App, id: u64, receiver: &Receiver) {
    app.on_worker(baselines(id));
    let layers: Vec<usize> = (0..=receiver.max_layer()).rev().collect();
    let mut m = headhunt::patching::PatchMatrix::new(LAYERS, HEADS, 2.0, -1.0, 8);
    for (i, &l) in layers.iter().enumerate() {
        let mut row = vec![-1.0; HEADS];
        row[0] = -1.0 + 0.3 * (l as f64 + 1.0); // r = -0.1 (l+1)
        m.set_row(l, row.clone());
        app.on_worker(Event::Patch {
            id,
            event: PatchEvent::Row {
                layer: l,
                patched: row,
                done: i + 1,
                total: layers.len(),
                elapsed: 0.1,
                eta: 0.1,
            },
        });
    }
    let rec = RunRecord::from_run(headhunt::results::RecordParts {
        matrix: &m,
        complete: true,
        receiver,
        begin_layer: 0,
        algorithm: Algorithm::Fast,
        batch_size: 4,
        model: info(),
        data: None,
        timing: headhunt::results::Timing {
            load_seconds: 0.0,
            cache_seconds: 0.01,
            sweep_seconds: 0.02,
        },
    });
    app.on_worker(Event::PatchDone {
        id,
        record: Box::new(rec),
    });
}

#[test]
fn opens_on_the_last_layers_resid_post_and_runs_with_one_key() {
    let (mut app, _) = ready_app("open");
    assert_eq!(app.breadcrumbs(), vec!["resid_post 3"]);
    assert_eq!(app.cursor, (3, 0), "cursor starts on the top layer");
    assert!(
        app.status.1.contains("r runs 16 senders"),
        "{}",
        app.status.1
    );
    press(&mut app, "r");
    let (id, receiver) = submitted_patch(&mut app);
    assert_eq!(receiver, Receiver::resid_post(3));
    assert!(matches!(
        app.current().unwrap().state,
        RunState::Running { .. }
    ));
    finish_run(&mut app, id, &receiver);
    assert_eq!(app.current().unwrap().state, RunState::Done);
    let rec = app.current_record().unwrap();
    assert!((rec.r(2, 0).unwrap() - (-0.3)).abs() < 1e-12);
    assert!(
        !app.calibrations.is_empty(),
        "the run calibrates later ETAs"
    );
}

#[test]
fn rows_fill_in_while_running() {
    let (mut app, _) = ready_app("rows");
    press(&mut app, "r");
    let (id, _) = submitted_patch(&mut app);
    app.on_worker(baselines(id));
    app.on_worker(Event::Patch {
        id,
        event: PatchEvent::Row {
            layer: 3,
            patched: vec![-1.3, -1.0, -1.0, -1.0],
            done: 1,
            total: 4,
            elapsed: 0.0,
            eta: 1.0,
        },
    });
    let rec = app.current_record().unwrap();
    assert_eq!(rec.rows_computed, vec![3]);
    assert!((rec.r(3, 0).unwrap() - 0.1).abs() < 1e-12);
    assert_eq!(
        rec.r(2, 0),
        None,
        "rows not yet computed are distinct from 0"
    );
    // Cancelling asks the worker to stop.
    press(&mut app, "c");
    assert!(app
        .take_effects()
        .iter()
        .any(|e| matches!(e, Effect::Cancel)));
}

#[test]
fn cursor_moves_and_stays_inside() {
    let (mut app, _) = ready_app("cursor");
    app.orientation = Orientation::LayersAsRows;
    assert_eq!(app.cursor, (3, 0));
    press(&mut app, "k"); // up = higher layer: stays at the top
    assert_eq!(app.cursor, (3, 0));
    press(&mut app, "jjl");
    assert_eq!(app.cursor, (1, 1));
    for _ in 0..10 {
        app.on_key(key(KeyCode::Right));
    }
    assert_eq!(app.cursor, (1, HEADS - 1));
    app.orientation = Orientation::LayersAsColumns;
    press(&mut app, "h"); // left = lower layer
    assert_eq!(app.cursor, (0, HEADS - 1));
    press(&mut app, "k"); // up = lower head
    assert_eq!(app.cursor, (0, HEADS - 2));
}

#[test]
fn drill_down_back_forward_and_cache() {
    let (mut app, _) = ready_app("drill");
    press(&mut app, "r");
    let (id, r) = submitted_patch(&mut app);
    finish_run(&mut app, id, &r);
    app.cursor = (2, 1);
    app.on_key(key(KeyCode::Enter));
    let (id2, r2) = submitted_patch(&mut app);
    assert_eq!(r2, Receiver::head(2, 1, HeadInput::V));
    assert_eq!(app.breadcrumbs(), vec!["resid_post 3", "2.1.v"]);
    finish_run(&mut app, id2, &r2);
    press(&mut app, "[");
    assert_eq!(app.trail_pos, 0);
    assert_eq!(app.current().unwrap().key.receiver, Receiver::resid_post(3));
    press(&mut app, "]");
    assert_eq!(app.trail_pos, 1);
    // Back, then drill into the same head again: it opens from the cache, no new job.
    press(&mut app, "[");
    app.cursor = (2, 1);
    app.on_key(key(KeyCode::Enter));
    assert!(app.take_effects().is_empty(), "a cached run starts no job");
    assert_eq!(app.current().unwrap().state, RunState::Done);
    // q / k inputs via i.
    press(&mut app, "[");
    press(&mut app, "i");
    assert_eq!(app.drill_input, HeadInput::Q);
    app.cursor = (3, 2);
    app.on_key(key(KeyCode::Enter));
    let (_, r3) = submitted_patch(&mut app);
    assert_eq!(r3, Receiver::head(3, 2, HeadInput::Q));
    assert_eq!(
        app.breadcrumbs(),
        vec!["resid_post 3", "3.2.q"],
        "forward history is replaced"
    );
}

#[test]
fn typed_receiver_begin_layer_and_crop() {
    let (mut app, _) = ready_app("typed");
    press(&mut app, ":");
    assert_eq!(app.input.as_ref().unwrap().purpose, InputPurpose::Receiver);
    // Clear the prefilled text, type two head receivers.
    for _ in 0..30 {
        app.on_key(key(KeyCode::Backspace));
    }
    press(&mut app, "3.1.v 2.0.k");
    app.on_key(key(KeyCode::Enter));
    let (_, r) = submitted_patch(&mut app);
    assert_eq!(r.label(), "2.0.k + 3.1.v");
    // A bad receiver keeps the prompt open and says why.
    press(&mut app, ":");
    for _ in 0..30 {
        app.on_key(key(KeyCode::Backspace));
    }
    press(&mut app, "9.0.v");
    app.on_key(key(KeyCode::Enter));
    assert!(app.input.is_some());
    assert!(app.status.1.contains("out of range"), "{}", app.status.1);
    app.on_key(key(KeyCode::Esc));
    assert!(app.input.is_none());
    // Begin layer.
    press(&mut app, "b");
    app.on_key(key(KeyCode::Backspace));
    press(&mut app, "1");
    app.on_key(key(KeyCode::Enter));
    let effects = app.take_effects();
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::Submit(_, Job::Patch(s)) if s.begin_layer == 1)));
    // Crop to layers 1-2.
    press(&mut app, "z");
    for _ in 0..10 {
        app.on_key(key(KeyCode::Backspace));
    }
    press(&mut app, "1-2");
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.crop, Some((1, 2)));
    assert!((1..=2).contains(&app.cursor.0));
    press(&mut app, "Z");
    assert_eq!(app.crop, None);
}

#[test]
fn groups_selection_range_help_and_quit() {
    let (mut app, dir) = ready_app("groups");
    app.cursor = (3, 1);
    press(&mut app, "t");
    assert_eq!(app.groups[0].heads, vec![(3, 1)]);
    press(&mut app, "t");
    assert!(app.groups[0].heads.is_empty(), "t toggles");
    press(&mut app, "g");
    assert_eq!(app.active_group, 1);
    press(&mut app, "G");
    press(&mut app, "mover");
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.groups.last().unwrap().name, "mover");
    press(&mut app, "t ");
    assert_eq!(app.groups.last().unwrap().heads, vec![(3, 1)]);
    assert!(app.selected.contains(&(3, 1)));
    press(&mut app, "f");
    assert_eq!(app.range, RangeMode::Fixed20);
    press(&mut app, "?");
    assert!(app.help);
    press(&mut app, "r");
    assert!(
        app.take_effects().is_empty(),
        "keys do nothing under the help"
    );
    app.on_key(key(KeyCode::Esc));
    assert!(!app.help);
    press(&mut app, "S");
    let saved: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(saved.len(), 1, "groups file saved");
    app.on_key(key(KeyCode::Esc)); // clears the selection first
    assert!(app.selected.is_empty() && !app.quit);
    press(&mut app, "q");
    assert!(app.quit);
    assert!(app.take_effects().iter().any(|e| matches!(e, Effect::Quit)));
}

#[test]
fn save_writes_a_new_file_only_for_new_content() {
    let (mut app, dir) = ready_app("save");
    press(&mut app, "s");
    assert!(app.status.1.contains("nothing to save"), "{}", app.status.1);
    press(&mut app, "r");
    let (id, r) = submitted_patch(&mut app);
    finish_run(&mut app, id, &r);
    app.cursor = (3, 0);
    press(&mut app, "t");
    app.cursor = (2, 1);
    press(&mut app, " ");
    press(&mut app, "s");
    let first = app.status.1.clone();
    assert!(first.starts_with("saved "), "{first}");
    // The same again writes nothing and says where it is.
    press(&mut app, "s");
    let path = first.trim_start_matches("saved ");
    assert_eq!(app.status.1, format!("already saved as {path}"));
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    // Another group makes another file.
    app.cursor = (1, 1);
    press(&mut app, "t");
    press(&mut app, "s");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    let rec = RunRecord::load(std::path::Path::new(path)).unwrap();
    assert_eq!(rec.receiver, Receiver::resid_post(3));
    assert_eq!(rec.groups[0].heads, vec![(3, 0)]);
    assert_eq!(
        rec.selected,
        vec![(2, 1)],
        "the selection is saved with the run"
    );
    // Opened in a fresh explorer, the file brings back its groups and its selection.
    let mut other = loaded(setup(common::temp_dir("save-reopen")));
    other.open_record(rec, PathBuf::from(path));
    assert_eq!(other.groups[0].heads, vec![(3, 0)]);
    assert_eq!(
        other.selected.iter().copied().collect::<Vec<_>>(),
        vec![(2, 1)]
    );
    // The gallery lists them; Enter opens one as a new breadcrumb.
    press(&mut app, "w");
    assert_eq!(app.screen, Screen::Gallery);
    assert_eq!(app.gallery.entries.len(), 2);
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.screen, Screen::Heatmap);
    assert!(matches!(app.current().unwrap().state, RunState::Opened(_)));
    // Compare: mark one, select the other, side by side and difference.
    press(&mut app, "w");
    press(&mut app, "mj");
    press(&mut app, "c");
    assert_eq!(app.screen, Screen::Compare);
    assert!(!app.gallery.diff);
    press(&mut app, "d");
    assert!(app.gallery.diff);
}

#[test]
fn mouse_click_moves_the_cursor() {
    let (mut app, _) = ready_app("mouse");
    press(&mut app, "r");
    let (id, r) = submitted_patch(&mut app);
    finish_run(&mut app, id, &r);
    let mut term = Terminal::new(TestBackend::new(100, 30)).unwrap();
    render(&mut term, &mut app);
    let g = app.heatmap_geometry().expect("heatmap drawn");
    // Click the cell of layer 1, head 2.
    let (col, row) = if g.layers_as_rows {
        (2, g.row_first - 1)
    } else {
        (1 - g.col_first, 2)
    };
    let click = MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: g.x + col as u16 * g.cell_w,
        row: g.y + row as u16,
        modifiers: KeyModifiers::NONE,
    };
    app.on_mouse(click);
    assert_eq!(app.cursor, (1, 2));
}

/// Draws the app at the terminal's size (the app lays out from its viewport).
fn render(term: &mut Terminal<TestBackend>, app: &mut App) {
    let a = term.backend().buffer().area;
    app.viewport = (a.width, a.height);
    term.draw(|f| view::draw(f, app)).unwrap();
}

fn screen_text(term: &Terminal<TestBackend>) -> String {
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

#[test]
fn renders_heatmap_readout_and_lists() {
    let (mut app, _) = ready_app("render");
    press(&mut app, "r");
    let (id, r) = submitted_patch(&mut app);
    finish_run(&mut app, id, &r);
    app.cursor = (2, 0);
    let mut term = Terminal::new(TestBackend::new(100, 30)).unwrap();
    render(&mut term, &mut app);
    let text = screen_text(&term);
    assert!(text.contains("resid_post 3"), "{text}");
    assert!(text.contains("H2.0  (layer 2, head 0)"), "{text}");
    assert!(text.contains("r        -30.00%"), "{text}");
    assert!(text.contains("|r| > 5%:"), "{text}");
    assert!(text.contains("3.0   -40.0%"), "{text}");
    assert!(text.contains("-40.0"), "cells show r in %: {text}");
    // The cursor cell is drawn reversed.
    let g = app.heatmap_geometry().unwrap();
    let (row, col) = if g.layers_as_rows {
        (g.row_first - 2, 0)
    } else {
        (0, 2 - g.col_first)
    };
    let cell = &term.backend().buffer()[(g.x + col as u16 * g.cell_w + 1, g.y + row as u16)];
    assert!(cell.modifier.contains(ratatui::style::Modifier::REVERSED));
    // Colours: negative r is red-ish in truecolor.
    app.color = headhunt::tui::color::ColorMode::TrueColor;
    render(&mut term, &mut app);
    let cell = &term.backend().buffer()[(g.x + col as u16 * g.cell_w + 1, g.y + row as u16)];
    match cell.bg {
        ratatui::style::Color::Rgb(r, _, b) => {
            assert!(r > b, "negative r drawn red: {:?}", cell.bg)
        }
        other => panic!("expected an RGB background, got {other:?}"),
    }
}

#[test]
fn renders_attention_grid_and_bars() {
    let (mut app, _) = ready_app("attn");
    press(&mut app, "a");
    assert_eq!(app.screen, Screen::Attention);
    let effects = app.take_effects();
    let id = match &effects[0] {
        Effect::Submit(id, Job::Attention(req)) => {
            assert_eq!(req.heads, vec![(3, 0)]);
            *id
        }
        other => panic!("{other:?}"),
    };
    let tokens: Vec<String> = ["<bos>", "1", "+", "1", "=", "3", "\n", "2", "+", "2", "="]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let n = tokens.len();
    let pattern: Vec<Vec<f32>> = (0..n)
        .map(|q| {
            (0..n)
                .map(|k| if k == q.saturating_sub(1) { 1.0 } else { 0.0 })
                .collect()
        })
        .collect();
    app.on_worker(Event::Attention {
        id,
        request: headhunt::worker::AttentionRequest {
            heads: vec![(3, 0)],
            run: headhunt::worker::RunKind::Contrast,
            prompts: headhunt::worker::PromptChoice::Mean(4),
        },
        tokens,
        patterns: vec![pattern],
    });
    let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
    render(&mut term, &mut app);
    let text = screen_text(&term);
    assert!(text.contains("Attention H3.0 · contrast run"), "{text}");
    assert!(text.contains(" 10 ="), "query labels: {text}");
    assert!(text.contains("↵"), "newline tokens shown as ↵: {text}");
    press(&mut app, "b");
    render(&mut term, &mut app);
    let text = screen_text(&term);
    assert!(text.contains("query 10 \"=\" attends to:"), "{text}");
    assert!(text.contains("   9 2      1.00 █"), "{text}");
    // Switching to the normal run asks the worker again.
    press(&mut app, "n");
    assert!(
        matches!(&app.take_effects()[0], Effect::Submit(_, Job::Attention(r)) if r.run == headhunt::worker::RunKind::Normal)
    );
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.screen, Screen::Heatmap);
}

#[test]
fn renders_help_and_setup() {
    let (mut app, _) = ready_app("help");
    let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
    press(&mut app, "?");
    render(&mut term, &mut app);
    // Descriptions wrap instead of being cut: at 80×24 the help scrolls to show them all.
    let mut text = screen_text(&term);
    press(&mut app, "G");
    render(&mut term, &mut app);
    text += &screen_text(&term);
    for k in [
        "drill down",
        "cancel the sweep",
        "gallery",
        "fixed ±20%",
        "quit",
        "save the run",
    ] {
        assert!(text.contains(k), "help lacks {k:?}: {text}");
    }
    app.on_key(key(KeyCode::Esc));
    press(&mut app, "m");
    render(&mut term, &mut app);
    let text = screen_text(&term);
    assert!(
        text.contains("shots")
            && text.contains("batch size")
            && text.contains("[<bos>][2][+][2][=]"),
        "{text}"
    );
    // Editing a field validates it.
    press(&mut app, "jjjjjj"); // shots
    app.on_key(key(KeyCode::Enter));
    for _ in 0..5 {
        app.on_key(key(KeyCode::Backspace));
    }
    press(&mut app, "x");
    app.on_key(key(KeyCode::Enter));
    assert!(
        app.status.1.contains("shots: expected a whole number"),
        "{}",
        app.status.1
    );
    app.on_key(key(KeyCode::Backspace));
    press(&mut app, "8");
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.setup.data.options.shots, 8);
    press(&mut app, "L");
    let effects = app.take_effects();
    assert!(
        matches!(&effects[1], Effect::Submit(_, Job::LoadData(spec)) if spec.shots == 8),
        "{effects:?}"
    );
}

#[test]
fn never_panics_on_tiny_or_odd_terminals() {
    let (mut app, _) = ready_app("tiny");
    press(&mut app, "r");
    let (id, r) = submitted_patch(&mut app);
    finish_run(&mut app, id, &r);
    let sizes = [
        (1, 1),
        (2, 2),
        (5, 3),
        (10, 4),
        (20, 6),
        (40, 10),
        (80, 24),
        (200, 60),
        (300, 5),
    ];
    for screen in ["heatmap", "attention", "setup", "gallery", "help", "input"] {
        for &(w, h) in &sizes {
            let (mut app2, _) = ready_app("tiny2");
            press(&mut app2, "r");
            let (id, r) = submitted_patch(&mut app2);
            finish_run(&mut app2, id, &r);
            match screen {
                "attention" => press(&mut app2, "a"),
                "setup" => press(&mut app2, "m"),
                "gallery" => press(&mut app2, "w"),
                "help" => press(&mut app2, "?"),
                "input" => press(&mut app2, ":"),
                _ => {}
            }
            let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
            render(&mut term, &mut app2);
            // Resize to another odd size and redraw.
            term.backend_mut().resize(h.max(1), w.max(1));
            term.resize(ratatui::layout::Rect::new(0, 0, h.max(1), w.max(1)))
                .unwrap();
            render(&mut term, &mut app2);
        }
    }
    let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
    render(&mut term, &mut app);
}

#[test]
fn baselines_and_accuracy_show_before_any_run() {
    let (mut app, _) = ready_app("eval");
    app.on_worker(Event::Evaluated {
        id: 2,
        n: 8,
        normal_ok: 7,
        contrast_ok: 1,
        contrast_gives_normal: 6,
        ld_normal: 0.5,
        ld_contrast: 0.2,
        seconds: 0.01,
        warnings: vec![],
    });
    assert!(app.status.1.contains("ill-conditioned"), "{}", app.status.1);
    let mut term = Terminal::new(TestBackend::new(120, 24)).unwrap();
    render(&mut term, &mut app);
    let text = screen_text(&term);
    assert!(
        text.contains("normal answer on 7/8 normal prompts, contrast answer on 1/8"),
        "{text}"
    );
    assert!(
        text.contains("16 senders (layers 0..=3 × 4 heads), ETA ≈ "),
        "a first ETA: {text}"
    );
}

/// A groups file of another shape opened at start says so, and the baseline warning that
/// follows (the evaluation finishes after the load) does not wipe that notice.
#[test]
fn a_groups_file_of_another_shape_keeps_its_notice() {
    let dir = common::temp_dir("groups-other-shape");
    let path = dir.join("groups.json");
    let groups = headhunt::results::groups::GroupsFile::new(
        "models/other",
        (42, 16),
        vec![headhunt::results::HeadGroup {
            name: "fi".into(),
            heads: vec![(39, 7)],
        }],
        vec![],
    );
    groups.save(&path, false).unwrap();
    let mut s = setup(dir.clone());
    s.open = Some(path);
    let mut app = loaded(s);
    assert!(app.status.1.contains("not applied"), "{}", app.status.1);
    app.on_worker(Event::Evaluated {
        id: 2,
        n: 8,
        normal_ok: 0,
        contrast_ok: 0,
        contrast_gives_normal: 0,
        ld_normal: -3.0,
        ld_contrast: 2.0,
        seconds: 0.01,
        warnings: vec!["the model rarely predicts the scored answers".into()],
    });
    let said = &app.status.1;
    assert!(
        said.contains("not applied") && said.contains("rarely predicts"),
        "{said}"
    );
}

/// The baseline-accuracy warning of the data load is in the status line and beside the
/// baselines, before any run.
#[test]
fn a_low_baseline_accuracy_is_shown_beside_the_baselines() {
    let (mut app, _) = ready_app("low-accuracy");
    let w = "the model rarely predicts the scored answers (baseline accuracy: normal 0.00, contrast 0.12): on normal prompts it scores \"a\"";
    app.on_worker(Event::Evaluated {
        id: 2,
        n: 8,
        normal_ok: 0,
        contrast_ok: 1,
        contrast_gives_normal: 0,
        ld_normal: -3.0,
        ld_contrast: 2.0,
        seconds: 0.01,
        warnings: vec![w.to_string()],
    });
    assert_eq!(app.status.0, headhunt::tui::app::Level::Warn);
    assert!(app.status.1.contains("rarely predicts"), "{}", app.status.1);
    let mut term = Terminal::new(TestBackend::new(120, 30)).unwrap();
    render(&mut term, &mut app);
    let text = screen_text(&term);
    assert!(
        text.contains("⚠ the model rarely predicts the scored answers"),
        "{text}"
    );
}

/// The setup switches among the paper's addition files by setting, nmax and offset.
#[test]
fn setup_follows_the_papers_files() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut s = setup(common::temp_dir("paperfiles"));
    s.data.data = root.join("data/paper/addition/setting1/addition_nmax9_offset1.jsonl");
    assert_eq!(s.field(13), "setting1");
    assert_eq!(s.field(14), "9");
    s.set_field(13, "setting2").unwrap();
    assert!(s
        .data
        .data
        .ends_with("addition/setting2/addition_nmax9_offset1.jsonl"));
    s.set_field(14, "99").unwrap();
    assert!(s
        .data
        .data
        .ends_with("addition/setting2/addition_nmax99_offset1.jsonl"));
    s.set_field(7, "-3").unwrap();
    assert!(s
        .data
        .data
        .ends_with("addition/setting2/addition_nmax99_offset-3.jsonl"));
    assert_eq!(s.data.options.offset, Some(-3));
    // nmax 9 has offsets -2..2 only.
    let e = s.set_field(14, "9").unwrap_err();
    assert!(e.contains("no file"), "{e}");
    assert!(s.set_field(13, "setting7").is_err());
    s.data.data = common::fixture("tiny-gemma2").join("addition.jsonl");
    assert_eq!(s.field(13), "-");
    assert!(s
        .set_field(14, "9")
        .unwrap_err()
        .contains("not one of the paper's"));
}

/// A record of the fixture model with `patched` on every head and the given baselines.
fn record_with(
    ld_normal: f64,
    ld_contrast: f64,
    patched: impl Fn(usize, usize) -> f64,
) -> RunRecord {
    let mut m = headhunt::patching::PatchMatrix::new(LAYERS, HEADS, ld_normal, ld_contrast, 8);
    for l in 0..LAYERS {
        m.set_row(l, (0..HEADS).map(|h| patched(l, h)).collect());
    }
    RunRecord::from_run(headhunt::results::RecordParts {
        matrix: &m,
        complete: true,
        receiver: &Receiver::resid_post(LAYERS - 1),
        begin_layer: 0,
        algorithm: Algorithm::Fast,
        batch_size: 4,
        model: info(),
        data: None,
        timing: Default::default(),
    })
}

fn paper(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data/paper/results")
        .join(file)
}

#[test]
fn narrow_cells_show_a_glyph_never_a_clipped_digit() {
    use headhunt::results::text::CellMeasure;
    use headhunt::tui::view::heatmap::cell_text;
    // Gemma-2-9B resid_post_41 at 80×24: -27.1%, -8.6%, +17.2% in two-character cells.
    assert_eq!(cell_text(-0.271, CellMeasure::R, 2), " ▼");
    assert_eq!(cell_text(-0.086, CellMeasure::R, 2), "-9");
    assert_eq!(cell_text(0.172, CellMeasure::R, 2), "17");
    assert_eq!(cell_text(-0.138, CellMeasure::R, 3), "-14");
    assert_eq!(cell_text(-0.003, CellMeasure::R, 2), " 0", "no -0");
    assert_eq!(cell_text(-0.2710, CellMeasure::R, 5), "-27.1");
}

#[test]
fn auto_range_has_a_floor_and_the_legend_says_so() {
    let (mut app, dir) = ready_app("floor");
    // Largest |r| 0.4%.
    let rec = record_with(2.0, -1.0, |l, h| {
        if (l, h) == (2, 1) {
            -1.0 - 0.012
        } else {
            -1.0
        }
    });
    app.open_record(rec.clone(), dir.join("x.json"));
    let range = headhunt::tui::view::heatmap::color_range(&rec, RangeMode::Auto, (0, LAYERS - 1));
    assert!((range.largest - 0.004).abs() < 1e-9, "{range:?}");
    assert_eq!(range.range, 0.05);
    let mut term = Terminal::new(TestBackend::new(100, 30)).unwrap();
    render(&mut term, &mut app);
    let text = screen_text(&term);
    assert!(text.contains("r -5.0%") && text.contains("+5.0%"), "{text}");
    assert!(text.contains("auto: floor; largest 0.4%"), "{text}");
}

#[test]
fn ill_conditioned_runs_show_the_raw_effect_as_the_command_line_does() {
    let (mut app, dir) = ready_app("ill");
    // Baselines 0.3 apart: r would be (p - LD_c)/0.3.
    let rec = record_with(
        2.0,
        1.7,
        |l, h| if (l, h) == (2, 1) { 1.7 + 0.25 } else { 1.7 },
    );
    assert_eq!(
        headhunt::results::text::cell_measure(&rec),
        headhunt::results::text::CellMeasure::RawEffect
    );
    app.open_record(rec, dir.join("x.json"));
    assert_eq!(app.cursor, (2, 1), "opens at the largest effect");
    let mut term = Terminal::new(TestBackend::new(100, 30)).unwrap();
    render(&mut term, &mut app);
    let text = screen_text(&term);
    assert!(text.contains("patched−LD_c"), "{text}");
    assert!(
        text.contains("+0.25"),
        "the raw effect, not r = 83%: {text}"
    );
    assert!(!text.contains("83.3"), "{text}");
    assert!(text.contains("r        not shown:"), "{text}");
}

#[test]
fn threshold_labels_are_the_thresholds_applied() {
    let (mut app, dir) = ready_app("thresholds");
    let rec = record_with(2.0, -1.0, |l, h| {
        if (l, h) == (2, 1) {
            -1.0 - 0.069
        } else {
            -1.0
        }
    });
    app.open_record(rec, dir.join("x.json"));
    press(&mut app, "<<<<<<");
    assert_eq!(
        app.thresholds.hi, 0.03,
        "never at or below the second list's 2%"
    );
    let mut term = Terminal::new(TestBackend::new(100, 30)).unwrap();
    render(&mut term, &mut app);
    let text = screen_text(&term);
    assert!(
        text.contains("|r| > 3%:") && text.contains("2% < |r| ≤ 3%:"),
        "{text}"
    );
    let weak = text.split("2% < |r| ≤ 3%:").nth(1).unwrap();
    assert!(
        weak.contains("  2.1    +2.3%"),
        "2.3% listed between 2% and 3%: {text}"
    );
    press(&mut app, ">");
    assert_eq!(app.thresholds.hi, 0.04);
}

#[test]
fn esc_never_quits_and_q_asks_when_groups_are_unsaved() {
    let (mut app, _) = ready_app("esc");
    app.on_key(key(KeyCode::Esc));
    app.on_key(key(KeyCode::Esc));
    assert!(!app.quit, "Esc quit the explorer");
    press(&mut app, "t");
    press(&mut app, "q");
    assert!(!app.quit, "q with an unsaved group");
    let list = app.unsaved_list();
    assert!(list[0].starts_with("head groups: "), "{list:?}");
    assert!(app.status.1.contains("1 not saved"), "{}", app.status.1);
    press(&mut app, "q");
    assert!(app.quit);
}

/// A sweep that ends while another run is on screen (`R` after a drill) does not say
/// "done: … s saves it", which would be about the run shown.
#[test]
fn a_sweep_finishing_off_screen_says_so_not_done() {
    let (mut app, _) = ready_app("offscreen");
    press(&mut app, "r");
    let (id, r) = submitted_patch(&mut app);
    finish_run(&mut app, id, &r);
    app.cursor = (3, 1);
    app.on_key(key(KeyCode::Enter));
    let (id2, r2) = submitted_patch(&mut app);
    assert_eq!(r2.label(), "3.1.v");
    press(&mut app, "R");
    assert_eq!(app.current().unwrap().key.receiver, r);
    finish_run(&mut app, id2, &r2);
    assert!(!app.status.1.starts_with("done"), "{}", app.status.1);
    assert!(
        app.status.1.contains("3.1.v finished in the background"),
        "{}",
        app.status.1
    );
    // The breadcrumbs lead to it, finished.
    press(&mut app, "[");
    assert_eq!(app.current().unwrap().key.receiver, r2);
    assert!(matches!(app.current().unwrap().state, RunState::Done));
}

fn ctrl_c() -> KeyEvent {
    KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)
}

#[test]
fn ctrl_c_asks_as_q_does_when_a_finished_run_is_unsaved() {
    let (mut app, _) = ready_app("ctrlc");
    press(&mut app, "r");
    let (id, r) = submitted_patch(&mut app);
    finish_run(&mut app, id, &r);
    app.on_key(ctrl_c());
    assert!(!app.quit, "Ctrl-C dropped an unsaved finished run");
    assert_eq!(
        app.unsaved_list(),
        vec!["run resid_post 3 (finished, 4 rows)"]
    );
    assert!(app.status.1.contains("1 not saved"), "{}", app.status.1);
    // Any other key stays; Ctrl-C (or q) right after the question quits.
    press(&mut app, "j");
    assert!(!app.quit && !app.confirm_quit);
    app.on_key(ctrl_c());
    assert!(!app.quit);
    app.on_key(ctrl_c());
    assert!(app.quit);
    // With nothing unsaved, Ctrl-C quits at once, from a text prompt too.
    let (mut fresh, _) = ready_app("ctrlc-fresh");
    press(&mut fresh, ":");
    assert!(fresh.input.is_some());
    fresh.on_key(ctrl_c());
    assert!(fresh.quit);
}

/// What a signal makes the app save (`save_before_exit`, after which it quits): the files
/// in its results folder `dir`.
fn saved_on_signal(app: &mut App, dir: &std::path::Path) -> Vec<PathBuf> {
    app.save_before_exit();
    assert!(app.quit);
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

#[test]
fn a_signal_saves_the_unsaved_run_and_groups_before_quitting() {
    let (mut app, dir) = ready_app("sigterm");
    press(&mut app, "r");
    let (id, r) = submitted_patch(&mut app);
    finish_run(&mut app, id, &r);
    app.cursor = (3, 0);
    press(&mut app, "t");
    let files = saved_on_signal(&mut app, &dir);
    assert_eq!(
        files.len(),
        1,
        "the run (with its groups) is saved: {files:?}"
    );
    let rec = RunRecord::load(&files[0]).unwrap();
    assert_eq!(rec.groups[0].heads, vec![(3, 0)]);
    assert!(app.status.1.starts_with("saved "), "{}", app.status.1);
    assert_eq!(app.unsaved(), None);
}

/// The exit save has the fallback every command's save has: when the results folder cannot
/// take the run (here a file stands where the folder should be, as a vanished or full folder
/// would refuse it), it goes to a `.recovered` file that the status line names.
#[test]
fn the_exit_save_falls_back_to_a_recovered_file() {
    let dir = common::temp_dir("exit-save-fallback");
    let blocked = dir.join("results");
    std::fs::write(&blocked, "not a folder").unwrap();
    let mut app = loaded(setup(blocked.clone()));
    press(&mut app, "r");
    let (id, r) = submitted_patch(&mut app);
    finish_run(&mut app, id, &r);
    app.save_before_exit();
    assert!(app.quit);
    let said = app.status.1.clone();
    let path = said
        .strip_prefix("saved ")
        .and_then(|s| s.split(" (").next())
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("not saved: {said}"));
    assert!(path.to_string_lossy().contains(".recovered-"), "{said}");
    let rec = RunRecord::load(&path).unwrap();
    assert_eq!(rec.rows_computed.len(), LAYERS);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&blocked).unwrap(), "not a folder");
}

/// A signal while a sweep runs keeps the rows it finished, as `patch` does on a signal: the
/// run is saved as a cancelled one (marked partial) with exactly those rows.
#[test]
fn a_signal_during_a_sweep_saves_its_finished_rows() {
    let (mut app, dir) = ready_app("sigterm-running");
    press(&mut app, "r");
    let (id, receiver) = submitted_patch(&mut app);
    let top = receiver.max_layer();
    app.on_worker(baselines(id));
    let mut row = vec![-1.0; HEADS];
    row[1] = -0.7; // r = -0.1
    app.on_worker(Event::Patch {
        id,
        event: PatchEvent::Row {
            layer: top,
            patched: row,
            done: 1,
            total: top + 1,
            elapsed: 0.1,
            eta: 0.3,
        },
    });
    assert!(app.busy());
    assert_eq!(
        app.unsaved(),
        None,
        "a running sweep is not yet a finished one"
    );
    let files = saved_on_signal(&mut app, &dir);
    assert_eq!(files.len(), 1, "the partial run is saved: {files:?}");
    let rec = RunRecord::load(&files[0]).unwrap();
    assert!(!rec.complete);
    assert_eq!(rec.rows_computed, vec![top]);
    let r = rec.relative[top].as_ref().expect("the finished row");
    assert!((r[1] + 0.1).abs() < 1e-12, "{r:?}");
    assert!((0..top).all(|l| rec.relative[l].is_none()));
    assert!(app.status.1.starts_with("saved "), "{}", app.status.1);
}

#[test]
fn a_result_of_another_model_is_its_own_context_and_drills_into_its_saved_results() {
    let (mut app, _) = ready_app("foreign");
    press(&mut app, "t"); // a group on the loaded model's head (3, 0)
    app.open_record(
        RunRecord::load(&paper("gemma_2_9b/resid_post_41.json")).unwrap(),
        paper("gemma_2_9b/resid_post_41.json"),
    );
    assert_eq!(app.context_name().as_deref(), Some("gemma_2_9b"));
    assert_eq!((app.n_layers(), app.n_heads()), (42, 16));
    assert_eq!(app.cursor, (39, 7), "opens at the largest |r|");
    assert!(
        app.groups.iter().all(|g| g.heads.is_empty()),
        "the fixture's groups stay with it"
    );
    let mut term = Terminal::new(TestBackend::new(120, 40)).unwrap();
    render(&mut term, &mut app);
    let text = screen_text(&term);
    assert!(
        text.lines().next().unwrap().contains("gemma_2_9b"),
        "{text}"
    );
    assert!(!text.contains("0 ex"), "{text}");
    app.on_key(key(KeyCode::Enter));
    let cur = app.current().unwrap();
    assert!(
        matches!(&cur.state, RunState::Opened(p) if p.ends_with("ind_h39_7_v.json")),
        "{:?}",
        app.status
    );
    app.cursor = (20, 3);
    app.on_key(key(KeyCode::Enter));
    assert!(
        app.status.1.contains("load gemma_2_9b in the setup"),
        "{}",
        app.status.1
    );
    press(&mut app, "[[");
    assert_eq!(app.context_name().as_deref(), Some("fixture"));
    assert_eq!(
        app.groups[0].heads,
        vec![(3, 0)],
        "the fixture's group is back"
    );
}

#[test]
fn a_failed_load_shows_its_first_error_and_keeps_the_previous_model() {
    let (mut app, _) = ready_app("loadfail");
    press(&mut app, "m");
    app.setup.model = "/no/such/model".into();
    press(&mut app, "L");
    let ids: Vec<u64> = app
        .take_effects()
        .iter()
        .filter_map(|e| match e {
            Effect::Submit(id, _) => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(ids.len(), 2);
    app.on_worker(Event::Error {
        id: ids[0],
        message: "/no/such/model: no such file or directory".into(),
    });
    app.on_worker(Event::Error {
        id: ids[1],
        message: "no model loaded".into(),
    });
    assert_eq!(
        app.load_error.as_deref(),
        Some("/no/such/model: no such file or directory")
    );
    assert!(app.status.1.contains("no such file"), "{}", app.status.1);
    assert_eq!(app.setup.model, "fixture", "back to the setup that loaded");
    let effects = app.take_effects();
    assert!(
        matches!(&effects[0], Effect::Submit(_, Job::LoadModel(r)) if r.model == "fixture"),
        "{effects:?}"
    );
    let mut term = Terminal::new(TestBackend::new(100, 30)).unwrap();
    render(&mut term, &mut app);
    let text = screen_text(&term);
    assert!(
        text.contains("could not load: /no/such/model: no such file"),
        "{text}"
    );
}

#[test]
fn a_receiver_no_sender_reaches_says_why() {
    let (mut app, _) = ready_app("unreachable");
    press(&mut app, ":");
    for _ in 0..20 {
        app.on_key(key(KeyCode::Backspace));
    }
    press(&mut app, "0.1.v");
    app.on_key(key(KeyCode::Enter));
    assert!(
        app.status.1.contains("no sender can reach 0.1.v"),
        "{}",
        app.status.1
    );
}

#[test]
fn prompts_edit_as_in_readline() {
    let (mut app, _) = ready_app("readline");
    press(&mut app, ":");
    assert_eq!(app.input.as_ref().unwrap().buffer, "resid_post:3");
    // Typing replaces the pre-filled value.
    press(&mut app, "resid_post:2");
    assert_eq!(app.input.as_ref().unwrap().buffer, "resid_post:2");
    app.on_key(key(KeyCode::Home));
    app.on_key(key(KeyCode::Delete));
    press(&mut app, "R");
    app.on_key(key(KeyCode::End));
    app.on_key(key(KeyCode::Left));
    app.on_key(key(KeyCode::Backspace));
    assert_eq!(app.input.as_ref().unwrap().buffer, "Resid_post2");
    app.on_key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
    assert_eq!(app.input.as_ref().unwrap().buffer, "2");
    press(&mut app, "3.1.v 2.0.v x");
    app.on_key(KeyEvent::new(KeyCode::Char('w'), KeyModifiers::CONTROL));
    assert_eq!(app.input.as_ref().unwrap().buffer, "3.1.v 2.0.v 2");
    app.on_key(key(KeyCode::Enter));
    let input = app.input.as_ref().expect("stays open after an error");
    assert!(input.error.is_some(), "says why");
    // A successful crop clears the earlier crop error.
    app.on_key(key(KeyCode::Esc));
    press(&mut app, "z");
    press(&mut app, "x");
    app.on_key(key(KeyCode::Enter));
    assert!(
        app.status.1.contains("crop: expected LO-HI"),
        "{}",
        app.status.1
    );
    app.on_key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
    press(&mut app, "1-2");
    app.on_key(key(KeyCode::Enter));
    assert!(app.input.is_none());
    assert!(!app.status.1.contains("crop"), "{}", app.status.1);
}

#[test]
fn attention_grid_aligns_separates_and_shows_values_at_40x12() {
    let (mut app, _) = ready_app("attn-grid");
    press(&mut app, "a");
    let id = match &app.take_effects()[0] {
        Effect::Submit(id, Job::Attention(_)) => *id,
        other => panic!("{other:?}"),
    };
    let tokens: Vec<String> = ["<bos>", "4", "+", " =", "1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    // Query 4 attends .4 to <bos>, .6 to " ="; query 1 all on <bos>.
    let pattern: Vec<Vec<f32>> = vec![
        vec![1.0, 0.0, 0.0, 0.0, 0.0],
        vec![1.0, 0.0, 0.0, 0.0, 0.0],
        vec![0.5, 0.5, 0.0, 0.0, 0.0],
        vec![0.0, 0.0, 0.0, 1.0, 0.0],
        vec![0.4, 0.0, 0.0, 0.6, 0.0],
    ];
    app.on_worker(Event::Attention {
        id,
        request: headhunt::worker::AttentionRequest {
            heads: vec![(3, 0)],
            run: headhunt::worker::RunKind::Contrast,
            prompts: headhunt::worker::PromptChoice::Mean(4),
        },
        tokens,
        patterns: vec![pattern],
    });
    let mut term = Terminal::new(TestBackend::new(40, 12)).unwrap();
    render(&mut term, &mut app);
    let text = screen_text(&term);
    let lines: Vec<&str> = text.lines().collect();
    let header = lines.iter().find(|l| l.contains("<b")).expect("key labels");
    assert!(
        header.contains("<bos> 4     +     ·="),
        "separate labels, leading space shown: {text}"
    );
    let col = |line: &str, pat: &str| line.find(pat).map(|b| line[..b].chars().count());
    let last = lines
        .iter()
        .find(|l| l.contains("  4 1"))
        .expect("query 4 row");
    assert_eq!(
        col(last, ".4"),
        col(header, "<b"),
        "digit under its token: {text}"
    );
    assert_eq!(col(last, ".6"), col(header, "·="), "{text}");
    let row1 = lines
        .iter()
        .find(|l| l.contains("  1 4"))
        .expect("query 1 row");
    assert!(row1.contains("1.0"), "1.0, not 1.: {text}");
    // Cut at the edge, visibly.
    assert!(
        text.contains("values: mean over 4 prompts, labels: pr…"),
        "{text}"
    );
}

#[test]
fn back_keeps_the_cursor_on_the_same_head_where_it_exists() {
    let (mut app, _) = ready_app("backcursor");
    press(&mut app, "r");
    let (id, r) = submitted_patch(&mut app);
    finish_run(&mut app, id, &r);
    app.cursor = (2, 1);
    app.on_key(key(KeyCode::Enter));
    let (id2, r2) = submitted_patch(&mut app);
    finish_run(&mut app, id2, &r2);
    // A head that exists in both results: `[` and `]` keep it.
    app.cursor = (1, 3);
    press(&mut app, "[");
    assert_eq!(app.cursor, (1, 3), "same head after [");
    press(&mut app, "]");
    assert_eq!(app.cursor, (1, 3), "same head after ]");
    press(&mut app, "[");
    // A 42×16 result: (39, 7) does not exist in the 4×4 run, so `[` returns to where the
    // cursor was there, never to a clamped (3, 3).
    app.cursor = (2, 2);
    let file = paper("gemma_2_9b/resid_post_41.json");
    app.open_record(RunRecord::load(&file).unwrap(), file);
    assert_eq!(app.cursor, (39, 7));
    press(&mut app, "[");
    assert_eq!(app.cursor, (2, 2), "back where it was in the 4×4 run");
    press(&mut app, "]");
    assert_eq!(app.cursor, (2, 2), "(2, 2) exists in the 42×16 result too");
}

#[test]
fn help_scrolls_at_40x12_and_says_what_is_clipped() {
    let (mut app, _) = ready_app("helpscroll");
    let mut term = Terminal::new(TestBackend::new(40, 12)).unwrap();
    render(&mut term, &mut app);
    press(&mut app, "?");
    render(&mut term, &mut app);
    let text = screen_text(&term);
    assert!(text.contains("hjkl"), "{text}");
    assert!(text.contains("more ↓"), "{text}");
    assert!(!text.contains("prompts"), "the last key is below: {text}");
    app.on_key(key(KeyCode::PageDown));
    press(&mut app, "jjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjj");
    render(&mut term, &mut app);
    let text = screen_text(&term);
    assert!(text.contains("prompts"), "scrolled to the end: {text}");
    assert!(text.contains("more ↑") && !text.contains("↓"), "{text}");
    assert!(!text.contains("hjkl"), "{text}");
    // One k scrolls back at once (the scroll stops at the end, never beyond).
    press(&mut app, "k");
    render(&mut term, &mut app);
    assert!(screen_text(&term).contains("more ↑↓"));
    for _ in 0..8 {
        app.on_key(key(KeyCode::PageUp));
    }
    render(&mut term, &mut app);
    assert!(screen_text(&term).contains("hjkl"));
    // No description is cut: each wraps inside the box.
    press(&mut app, "g");
    render(&mut term, &mut app);
    let text = screen_text(&term);
    assert!(
        text.contains("move the cursor (mouse:") && text.contains("click, wheel)"),
        "{text}"
    );
    assert!(app.help, "scroll keys leave the help open");
    app.on_key(key(KeyCode::Esc));
    assert!(!app.help);
}

#[test]
fn a_prompt_pair_file_shows_no_shots_or_offset() {
    let (mut app, _) = ready_app("pairswords");
    let mut spec = DataSpec::new(PathBuf::from("pairs.jsonl"), TaskKind::Pairs);
    spec.shots = 4;
    spec.offset = 0;
    app.data.as_mut().unwrap().info.spec = spec;
    press(&mut app, "m");
    let mut term = Terminal::new(TestBackend::new(120, 40)).unwrap();
    render(&mut term, &mut app);
    let text = screen_text(&term);
    let line = text.lines().find(|l| l.contains("pairs.jsonl")).unwrap();
    assert!(line.contains("8 prompt pairs"), "{line}");
    assert!(
        !line.contains("shots") && !line.contains("offset"),
        "{line}"
    );
    // An addition file keeps both.
    app.data.as_mut().unwrap().info.spec =
        DataSpec::new(PathBuf::from("addition.jsonl"), TaskKind::Addition);
    render(&mut term, &mut app);
    let text = screen_text(&term);
    let line = text.lines().find(|l| l.contains("addition.jsonl")).unwrap();
    assert!(
        line.contains("4 shots") && line.contains("offset +1"),
        "{line}"
    );
}

#[test]
fn the_gallery_shows_where_the_selection_is() {
    let (mut app, _) = ready_app("galpos");
    app.setup.gallery_dirs = vec![paper("")];
    press(&mut app, "w");
    let n = app.gallery.entries.len();
    assert!(n > 20, "{n}");
    let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
    render(&mut term, &mut app);
    let text = screen_text(&term);
    assert!(text.contains(&format!("saved results 1/{n}")), "{text}");
    assert!(text.contains("more ↓"), "{text}");
    // At 40 columns the title keeps its position and drops the keys whole, not cut.
    let mut narrow = Terminal::new(TestBackend::new(40, 12)).unwrap();
    render(&mut narrow, &mut app);
    let top = screen_text(&narrow)
        .lines()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    assert!(top.contains(&format!(" saved results 1/{n} ─")), "{top}");
    render(&mut term, &mut app);
    press(&mut app, "jjj");
    render(&mut term, &mut app);
    assert!(screen_text(&term).contains(&format!("4/{n}")));
    for _ in 0..n {
        press(&mut app, "j");
    }
    render(&mut term, &mut app);
    let text = screen_text(&term);
    assert!(text.contains(&format!("{n}/{n}")), "{text}");
    assert!(
        text.contains("more ↑") && !text.contains("more ↑↓"),
        "{text}"
    );
}

/// The groups files in `dir`.
fn groups_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("groups-")
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_groups_file_is_saved_once_and_applies_to_a_model_of_its_shape() {
    let (mut app, dir) = ready_app("groupsfile");
    press(&mut app, "S");
    assert!(
        app.status.1.contains("no groups file written"),
        "{}",
        app.status.1
    );
    assert!(groups_files(&dir).is_empty());
    app.cursor = (3, 1);
    press(&mut app, "t ");
    app.cursor = (2, 2);
    press(&mut app, " ");
    press(&mut app, "S");
    assert!(app.status.1.starts_with("saved "), "{}", app.status.1);
    let files = groups_files(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    press(&mut app, "S");
    assert_eq!(
        app.status.1,
        format!("already saved as {}", files[0].display())
    );
    assert_eq!(
        groups_files(&dir).len(),
        1,
        "the same groups twice: one file"
    );
    let file = GroupsFile::load(&files[0]).unwrap();
    assert_eq!(
        (file.model.as_str(), file.n_layers, file.n_heads),
        ("fixture", 4, 4)
    );
    assert_eq!(file.groups.len(), 1, "empty groups are not saved");
    assert_eq!(file.groups[0].heads, vec![(3, 1)]);
    assert_eq!(file.selected, vec![(2, 2), (3, 1)]);

    // `headhunt open FILE`: applied once the model is in.
    let mut s = setup(common::temp_dir("groupsfile-open"));
    s.open = Some(files[0].clone());
    let opened = loaded(s);
    assert_eq!(opened.groups[0].heads, vec![(3, 1)]);
    assert_eq!(
        opened.selected.iter().copied().collect::<Vec<_>>(),
        vec![(2, 2), (3, 1)]
    );
    assert!(
        opened.status.1.starts_with("applied "),
        "{}",
        opened.status.1
    );

    // The gallery lists it with its model; Enter applies it to a fresh view.
    let mut fresh = loaded(setup(dir.clone()));
    press(&mut fresh, "w");
    let e = &fresh.gallery.entries[0];
    assert!(matches!(e.kind, EntryKind::Groups(_)), "{}", e.label());
    assert!(
        e.label().contains("head groups") && e.label().contains("fixture"),
        "{}",
        e.label()
    );
    let mut term = Terminal::new(TestBackend::new(100, 24)).unwrap();
    render(&mut term, &mut fresh);
    let text = screen_text(&term);
    assert!(
        text.contains("head groups of fixture (4 layers × 4 heads)"),
        "{text}"
    );
    fresh.on_key(key(KeyCode::Enter));
    assert_eq!(fresh.screen, Screen::Heatmap);
    assert_eq!(fresh.groups[0].heads, vec![(3, 1)]);
    assert_eq!(fresh.selected.len(), 2);
}

#[test]
fn a_groups_file_of_another_shape_says_whose_it_is_and_is_not_applied() {
    let (mut app, dir) = ready_app("groupsshape");
    let file = GroupsFile::new(
        "google/gemma-2-9b",
        (42, 16),
        vec![HeadGroup {
            name: "mover".into(),
            heads: vec![(39, 7)],
        }],
        vec![(39, 7)],
    );
    file.save(&dir.join("groups-gemma.json"), false).unwrap();
    press(&mut app, "w");
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.screen, Screen::Gallery, "stays in the gallery");
    let msg = &app.status.1;
    assert!(
        msg.contains("head groups of gemma-2-9b (42 layers × 16 heads)"),
        "{msg}"
    );
    assert!(msg.contains("not applied"), "{msg}");
    assert!(app.groups.iter().all(|g| g.name != "mover") && app.selected.is_empty());
    // Compare has nothing to compare in a groups file.
    press(&mut app, "m");
    RunRecord::from_run(headhunt::results::RecordParts {
        matrix: &headhunt::patching::PatchMatrix::new(LAYERS, HEADS, 2.0, -1.0, 8),
        complete: true,
        receiver: &Receiver::resid_post(3),
        begin_layer: 0,
        algorithm: Algorithm::Fast,
        batch_size: 4,
        model: info(),
        data: None,
        timing: Default::default(),
    })
    .save(&dir.join("run.json"), false)
    .unwrap();
    press(&mut app, "r"); // rescan: groups-gemma.json, run.json
    press(&mut app, "j");
    press(&mut app, "c");
    assert_eq!(app.screen, Screen::Gallery);
    assert!(
        app.status.1.contains("head groups have no matrix"),
        "{}",
        app.status.1
    );
}

#[test]
fn the_selection_becomes_one_receiver_with_each_heads_input() {
    let (mut app, _) = ready_app("multihead");
    press(&mut app, "D");
    assert!(app.input.is_none());
    assert!(
        app.status.1.contains("no heads selected"),
        "{}",
        app.status.1
    );
    app.cursor = (3, 1);
    press(&mut app, " ");
    app.cursor = (2, 2);
    press(&mut app, " ");
    press(&mut app, "i"); // q for all
    press(&mut app, "D");
    let input = app.input.as_ref().unwrap();
    assert_eq!(input.purpose, InputPurpose::Receiver);
    assert_eq!(input.buffer, "2.2.q 3.1.q");
    // Edit one head's input: the last character, q → v.
    app.on_key(key(KeyCode::End));
    app.on_key(key(KeyCode::Backspace));
    press(&mut app, "v");
    app.on_key(key(KeyCode::Enter));
    let (_, r) = submitted_patch(&mut app);
    assert_eq!(
        r,
        Receiver::parse_many(&["2.2.q".into(), "3.1.v".into()]).unwrap()
    );
    assert_eq!(app.current().unwrap().key.begin_layer, 0);
    let mut term = Terminal::new(TestBackend::new(100, 24)).unwrap();
    render(&mut term, &mut app);
    let text = screen_text(&term);
    assert!(
        text.lines()
            .next()
            .unwrap()
            .contains("resid_post 3 → 2.2.q + 3.1.v"),
        "{text}"
    );
}

#[test]
fn the_receiver_prompt_takes_lists_as_the_command_line_does() {
    let (mut app, _) = ready_app("lists");
    for (typed, want) in [
        ("3.1.v,2.0.k", "2.0.k + 3.1.v"),
        ("resid_post:2,resid_post:3", "resid_post 2,3"),
        ("resid_mid:1, 2", "resid_mid 1,2"),
    ] {
        press(&mut app, ":");
        for _ in 0..40 {
            app.on_key(key(KeyCode::Backspace));
        }
        press(&mut app, typed);
        app.on_key(key(KeyCode::Enter));
        assert!(app.input.is_none(), "{typed}: {}", app.status.1);
        let (_, r) = submitted_patch(&mut app);
        assert_eq!(r.label(), want, "{typed}");
    }
    // A head hears only layers below its own: begin 2 with receiver 2.1.v becomes 1.
    press(&mut app, "b");
    app.on_key(key(KeyCode::Backspace));
    press(&mut app, "2");
    app.on_key(key(KeyCode::Enter));
    app.take_effects();
    press(&mut app, ":");
    for _ in 0..40 {
        app.on_key(key(KeyCode::Backspace));
    }
    press(&mut app, "2.1.v");
    app.on_key(key(KeyCode::Enter));
    let (_, r) = submitted_patch(&mut app);
    assert_eq!(r, Receiver::head(2, 1, HeadInput::V));
    assert_eq!(
        app.current().unwrap().key.begin_layer,
        1,
        "{}",
        app.status.1
    );
}

#[test]
fn saving_an_opened_file_unchanged_writes_nothing() {
    let (mut app, dir) = ready_app("saveopened");
    let file = paper("gemma_2_9b/resid_post_41.json");
    app.open_record(RunRecord::load(&file).unwrap(), file.clone());
    press(&mut app, "s");
    assert_eq!(app.status.1, format!("already saved as {}", file.display()));
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    // A head tagged on it is new content: a file of its own, with the group.
    press(&mut app, "t");
    press(&mut app, "s");
    assert!(app.status.1.starts_with("saved "), "{}", app.status.1);
    let saved: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(saved.len(), 1);
    let rec = RunRecord::load(&saved[0]).unwrap();
    assert_eq!(rec.groups[0].heads, vec![(39, 7)]);
}

/// The prompts each attention request asks for, for the keys pressed one by one.
fn attention_prompts(app: &mut App, keys: &str) -> Vec<headhunt::worker::PromptChoice> {
    keys.chars()
        .map(|c| {
            press(app, &c.to_string());
            match app.take_effects().last() {
                Some(Effect::Submit(_, Job::Attention(r))) => r.prompts,
                other => panic!("{c}: {other:?}"),
            }
        })
        .collect()
}

#[test]
fn attention_keys_step_prompts_and_heads_from_its_table() {
    use headhunt::worker::PromptChoice::{Mean, One};
    let (mut app, _) = ready_app("attnkeys");
    app.cursor = (3, 1);
    press(&mut app, " ");
    app.cursor = (2, 0);
    press(&mut app, " ");
    press(&mut app, "a");
    app.take_effects();
    assert_eq!(app.screens.attention.heads, vec![(3, 1), (2, 0)]);
    assert_eq!(
        attention_prompts(&mut app, "+=-pppP"),
        vec![Mean(5), Mean(6), Mean(5), One(0), One(1), One(2), Mean(4)]
    );
    press(&mut app, "+");
    press(&mut app, "p");
    app.take_effects();
    assert_eq!(attention_prompts(&mut app, "-"), vec![Mean(1)]);
    app.on_key(key(KeyCode::Tab));
    assert_eq!(app.screens.attention.current, 1);
    press(&mut app, "l");
    assert_eq!(app.screens.attention.current, 0, "wraps");
    app.on_key(key(KeyCode::BackTab));
    assert_eq!(app.screens.attention.current, 1);
    press(&mut app, "b");
    assert!(app.screens.attention.bars);
    press(&mut app, "?");
    assert!(app.help);
    let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
    render(&mut term, &mut app);
    let text = screen_text(&term);
    assert!(text.contains("keys: attention"), "{text}");
    assert!(text.contains("next / previous selected head"), "{text}");
    app.on_key(key(KeyCode::Esc));
    press(&mut app, "q");
    assert_eq!(app.screen, Screen::Heatmap);
}

#[test]
fn the_comparison_has_its_own_keys_and_help() {
    let (mut app, _) = ready_app("comparekeys");
    app.setup.gallery_dirs = vec![paper("gemma_2_9b")];
    press(&mut app, "w");
    press(&mut app, "mjd");
    assert_eq!(app.screen, Screen::Compare);
    assert!(app.gallery.diff);
    press(&mut app, "d");
    assert!(!app.gallery.diff, "d toggles");
    press(&mut app, "?");
    let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
    render(&mut term, &mut app);
    let text = screen_text(&term);
    assert!(text.contains("keys: compare"), "{text}");
    assert!(text.contains("back to the gallery"), "{text}");
    app.on_key(key(KeyCode::Esc));
    assert!(!app.help);
    press(&mut app, "q");
    assert_eq!(app.screen, Screen::Gallery);
}

/// The comparison has a cursor, the same on both sides: it opens on the marked result's
/// largest effect, each title says the value there, and moving scrolls both grids together
/// (at 80×24 a 42×16 pair does not fit; every head and layer can be reached). The loaded
/// model's groups are not drawn on another model's results.
#[test]
fn the_comparison_scrolls_with_its_cursor_and_says_the_values_there() {
    let (mut app, _) = ready_app("compare-cursor");
    // A group on the loaded fixture's head (3, 0): it is not drawn on Gemma's results.
    press(&mut app, "t");
    app.setup.gallery_dirs = vec![paper("gemma_2_9b")];
    press(&mut app, "w");
    let find = |app: &App, name: &str| {
        let stem = |e: &headhunt::tui::app::GalleryEntry| e.path.file_stem().unwrap() == name;
        app.gallery.entries.iter().position(stem).expect(name)
    };
    app.gallery.selected = find(&app, "resid_post_41");
    press(&mut app, "m");
    app.gallery.selected = find(&app, "ind_h39_7_v");
    press(&mut app, "c");
    assert_eq!(app.screen, Screen::Compare);
    assert_eq!(app.gallery.cursor, (39, 7), "opens on the largest |r|");
    let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
    render(&mut term, &mut app);
    let text = screen_text(&term);
    assert!(text.contains("39.7 -27.08%"), "{text}");
    assert!(
        !text.contains('●'),
        "the fixture's group drawn on Gemma's heads: {text}"
    );
    assert!(text.contains("heads 0..10/16"), "clipped, and said: {text}");
    press(&mut app, "llllllllllllllllllll");
    assert_eq!(app.gallery.cursor, (39, 15));
    render(&mut term, &mut app);
    let text = screen_text(&term);
    assert!(text.contains("39.15 "), "{text}");
    assert!(
        text.contains("heads 5..15/16"),
        "scrolled to the cursor: {text}"
    );
    press(&mut app, "jjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjj");
    assert_eq!(app.gallery.cursor, (0, 15), "down reaches layer 0");
    render(&mut term, &mut app);
    let text = screen_text(&term);
    // The row label of layer 0 (the heads' header also holds "   0 ", so a row must start so).
    assert!(
        text.lines().any(|l| l.starts_with("   0 ")),
        "layer 0 on screen: {text}"
    );
}

/// A finished sweep calibrates the ETA of the next sweep of its kind only: a head receiver
/// runs every position, the last layer's resid_post only the last one, so the resid_post's
/// seconds per unit of layer cost would put a head receiver's ETA far too low. Within a
/// kind, the cache passes are a fixed part of the estimate, the sweep the part per cost.
#[test]
fn etas_are_calibrated_per_kind_with_the_cache_as_a_fixed_cost() {
    let (mut app, _) = ready_app("eta");
    press(&mut app, "r");
    let (id, r) = submitted_patch(&mut app);
    finish_run(&mut app, id, &r); // caches 0.01 s, sweep 0.02 s
    let spec = |app: &App, text: &str| {
        app.setup
            .spec(Receiver::parse_many(&[text.to_string()]).unwrap(), 0)
    };
    let resid = spec(&app, "resid_post:3");
    let cost = resid.total_cost(LAYERS);
    let eta = app.eta(&resid).unwrap();
    assert!((eta - (0.01 + 0.02)).abs() < 1e-12, "{eta}");
    // Half the cost: the caches stay whole.
    let head = spec(&app, "3.1.v");
    let resid2 = spec(&app, "resid_post:2");
    let eta2 = app.eta(&resid2);
    assert!(!resid2.receiver.last_position_only(LAYERS));
    assert_eq!(
        eta2, None,
        "another kind, and no evaluation measured yet: no ETA"
    );
    assert_eq!(
        app.eta(&head),
        None,
        "a head receiver is not timed by resid_post's run"
    );
    // A head receiver's run calibrates head receivers.
    app.cursor = (3, 1);
    app.on_key(key(KeyCode::Enter));
    let (id2, r2) = submitted_patch(&mut app);
    finish_run(&mut app, id2, &r2);
    let head_cost = head.total_cost(LAYERS);
    let other = spec(&app, "2.0.v");
    let want = 0.01 + 0.02 / head_cost * other.total_cost(LAYERS);
    assert!((app.eta(&other).unwrap() - want).abs() < 1e-12);
    assert!((app.eta(&resid).unwrap() - (0.01 + 0.02 / cost * cost)).abs() < 1e-12);
}

/// The setup takes a device list (a sweep worker per device); a list of CPUs streams rows as
/// one CPU does, and a bad entry anywhere in the list is refused.
#[test]
fn setup_takes_a_device_list() {
    let mut s = setup(common::temp_dir("devicelist"));
    s.set_field(2, "cpu,cpu").unwrap();
    assert_eq!(s.device, "cpu,cpu");
    s.set_field(2, "cpu+cpu,cpu").unwrap();
    assert_eq!(
        s.device, "cpu+cpu,cpu",
        "one model over two devices, and a copy"
    );
    assert!(s.set_field(2, "cpu+gpu").is_err());
    assert_eq!(s.chunk_rows(), 0, "CPU workers stream rows");
    s.set_field(2, "cuda:0,cuda:1").unwrap();
    assert_eq!(s.chunk_rows(), headhunt::patching::DEFAULT_GPU_CHUNK_ROWS);
    let e = s.set_field(2, "cpu,gpu").unwrap_err();
    assert!(e.contains("device") && e.contains("cpu,gpu"), "{e}");
}

/// A typed `mlp_in:L` is set up for the loaded model's block shape, as `patch` sets it up:
/// in a parallel block (Pythia) layer L's heads do not reach it.
#[test]
fn a_typed_mlp_in_receiver_follows_the_block_shape() {
    use headhunt::model::BlockShape;
    for (parallel, shape) in [
        (false, BlockShape::Sequential),
        (true, BlockShape::Parallel),
    ] {
        let (mut app, _) = ready_app(&format!("mlpin{parallel}"));
        app.model.as_mut().unwrap().parallel_block = parallel;
        press(&mut app, ":");
        for _ in 0..40 {
            app.on_key(key(KeyCode::Backspace));
        }
        press(&mut app, "mlp_in:2");
        app.on_key(key(KeyCode::Enter));
        assert!(app.input.is_none(), "{}", app.status.1);
        let (_, r) = submitted_patch(&mut app);
        let want = Receiver::parse_one("mlp_in:2").unwrap().for_block(shape);
        assert_eq!(r, want);
        assert_eq!(
            r.reachable_from(2),
            !parallel,
            "layer 2's heads reach it in sequence only"
        );
    }
}
