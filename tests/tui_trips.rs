//! What a new user tripped over in the explorer (issue 26, item 3), one test per defect: each
//! failed before its fix. Drawn with ratatui's TestBackend; worker events are fed by hand.

mod common;

use std::path::{Path, PathBuf};

use crossterm::event::KeyCode;
use headhunt::data::{DataSpec, TaskKind};
use headhunt::results::DataInfo;
use headhunt::tui::app::{App, Effect, Screen, Setup};
use headhunt::worker::{Event, Job};

use common::tui::{info, key, press};

/// The common start on the 4 × 4 "fixture" model, saving into `results`.
fn setup(results: PathBuf) -> Setup {
    let mut s = common::tui::setup("fixture", results);
    s.data.options.offset = Some(1);
    s
}

/// An app of `setup` with model and data "loaded".
fn loaded(setup: Setup) -> App {
    common::tui::loaded(setup, 29)
}

/// Draws the app at `w` × `h` and returns the screen's text, one line per row.
fn draw(app: &mut App, w: u16, h: u16) -> String {
    common::tui::screen(app, w, h)
}

/// A circuit file of the loaded "fixture" model (4 × 4), F(C) = 1.23456.
fn fixture_circuit_file(path: &Path) {
    use headhunt::results::analysis::{AnalysisFile, CircuitFile, Common, GroupRecord};
    let spec = DataSpec::new(Path::new("d.jsonl"), TaskKind::Addition);
    let f = CircuitFile {
        common: Common {
            format: "headhunt-circuit".into(),
            format_version: 1,
            headhunt_version: "0".into(),
            created: "2026-01-01T00:00:00Z".into(),
            model: info(),
            data: DataInfo {
                spec,
                n_examples: 8,
                skipped: vec![],
                multi_token_answers: vec![],
            },
            batch_size: 8,
            seconds: 0.5,
            complete: true,
            baseline_accuracy: None,
            warnings: Vec::new(),
        },
        metric: Default::default(),
        groups: vec![GroupRecord {
            name: "fi".into(),
            heads: vec![(3, 1)],
            positions: "all".into(),
        }],
        ld_normal: 2.0,
        ld_contrast: -1.0,
        f_c: 1.23456,
        f_m: -1.0,
        faithfulness: 0.25,
        completeness: vec![],
        minimality: vec![],
        greedy: None,
    };
    AnalysisFile::Circuit(f).save(path, false).unwrap();
}

/// `headhunt open` of an analysis file of the model being loaded: read-only only until the
/// model is in, then the screen runs analyses again.
#[test]
fn an_opened_analysis_of_the_model_loading_is_not_read_only_once_it_loads() {
    let dir = common::temp_dir("trips-open-analysis");
    let file = dir.join("circuit-fixture.json");
    fixture_circuit_file(&file);
    let mut s = setup(dir.clone());
    s.open = Some(file);
    let mut app = App::new(s);
    app.take_effects();
    assert_eq!(app.screen, Screen::Circuit, "{}", app.status.1);
    common::tui::model_loaded(&mut app);
    common::tui::data_loaded(&mut app, 29);
    assert!(
        app.circuit.read_only.is_none(),
        "{:?}",
        app.circuit.read_only
    );
    let text = draw(&mut app, 110, 40);
    assert!(!text.contains("read-only"), "{text}");
    press(&mut app, "e");
    let effects = app.take_effects();
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Submit(_, Job::Circuit(_)))),
        "{effects:?} {}",
        app.status.1
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// A record of the fixture model with `patched` on every head and the given baselines.
fn record_with(
    ld_normal: f64,
    ld_contrast: f64,
    patched: impl Fn(usize, usize) -> f64,
) -> headhunt::results::RunRecord {
    let receiver = headhunt::patching::Receiver::resid_post(common::tui::LAYERS - 1);
    record_to(&receiver, ld_normal, ld_contrast, patched)
}

/// A record toward `receiver` with `patched` on every head of every layer, reachable or not
/// (as the paper's files hold the contrast baseline on rows no sender of theirs reaches).
fn record_to(
    receiver: &headhunt::patching::Receiver,
    ld_normal: f64,
    ld_contrast: f64,
    patched: impl Fn(usize, usize) -> f64,
) -> headhunt::results::RunRecord {
    use common::tui::{HEADS, LAYERS};
    let mut m = headhunt::patching::PatchMatrix::new(LAYERS, HEADS, ld_normal, ld_contrast, 8);
    for l in 0..LAYERS {
        m.set_row(l, (0..HEADS).map(|h| patched(l, h)).collect());
    }
    headhunt::results::RunRecord::from_run(headhunt::results::RecordParts {
        matrix: &m,
        complete: true,
        receiver,
        begin_layer: 0,
        algorithm: headhunt::patching::Algorithm::Fast,
        batch_size: 4,
        model: info(),
        data: None,
        timing: Default::default(),
    })
}

/// One helper prints every number, and it never prints a negative zero; the readout of a
/// value that rounds to zero shows `+0.00%`, its baselines `+0.0000`.
#[test]
fn no_negative_zero_in_the_readout_or_the_helper() {
    use headhunt::plot::number::{fixed, signed};
    assert_eq!(fixed(-0.0001, 2), "0.00");
    assert_eq!(fixed(-0.0, 0), "0");
    assert_eq!(fixed(-0.006, 2), "-0.01");
    assert_eq!(signed(-0.00001, 4), "+0.0000");
    assert_eq!(signed(-0.0, 2), "+0.00");
    assert_eq!(signed(0.25, 2), "+0.25");
    assert_eq!(signed(-0.25, 2), "-0.25");
    let dir = common::temp_dir("trips-negzero");
    let mut app = loaded(setup(dir.clone()));
    // LD_c rounds to -0.0000, the cell under the cursor to r = -0.00% and patched -0.0000.
    let c = -0.00001;
    let rec = record_with(2.0, c, |l, h| match (l, h) {
        (3, 2) => c - 0.3,
        _ => c + 1e-6,
    });
    app.open_record(rec, dir.join("x.json"));
    app.cursor = (2, 1);
    let text = draw(&mut app, 100, 30);
    assert!(text.contains("r        +0.00%"), "{text}");
    assert!(text.contains("LD_c     +0.0000"), "{text}");
    assert!(!text.contains("-0.00"), "{text}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// `a` on a result of another model stays on the heatmap and says why in the status line,
/// and asks the worker for nothing (it could only compute the loaded model's attention).
#[test]
fn attention_of_another_models_result_stays_on_the_heatmap_with_the_reason() {
    let dir = common::temp_dir("trips-foreign-attention");
    let mut app = loaded(setup(dir.clone()));
    app.take_effects();
    let mut rec = record_with(2.0, -1.0, |l, h| if (l, h) == (2, 1) { -0.7 } else { -1.0 });
    let model = rec.model.as_mut().unwrap();
    model.label = "org/other-model".into();
    model.origin = headhunt::model::ModelOrigin::Local {
        path: "org/other-model".into(),
    };
    app.open_record(rec, dir.join("x.json"));
    press(&mut app, "a");
    assert_eq!(app.screen, Screen::Heatmap, "{}", app.status.1);
    assert!(app.status.1.contains("other-model"), "{}", app.status.1);
    let effects = app.take_effects();
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::Submit(_, Job::Attention(_)))),
        "{effects:?}"
    );
    let text = draw(&mut app, 120, 40);
    assert!(text.contains("load other-model"), "{text}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// An app on the attention screen with `tokens` and a pattern where each query attends
/// to the key before it.
fn attention_app(tag: &str, tokens: &[&str]) -> (App, PathBuf) {
    let dir = common::temp_dir(tag);
    let mut app = loaded(setup(dir.clone()));
    app.take_effects();
    press(&mut app, "a");
    let id = app
        .take_effects()
        .iter()
        .find_map(|e| match e {
            Effect::Submit(id, Job::Attention(_)) => Some(*id),
            _ => None,
        })
        .expect("an attention job");
    let n = tokens.len();
    let pattern: Vec<Vec<f32>> = (0..n)
        .map(|q| (0..n).map(|k| f32::from(k + 1 == q)).collect())
        .collect();
    app.on_worker(Event::Attention {
        id,
        request: headhunt::worker::AttentionRequest {
            heads: vec![(3, 0)],
            run: headhunt::worker::RunKind::Contrast,
            prompts: headhunt::worker::PromptChoice::Mean(4),
        },
        tokens: tokens.iter().map(|s| s.to_string()).collect(),
        patterns: vec![pattern],
    });
    (app, dir)
}

/// 29 positions, two names that share their first two characters.
const STORY: [&str; 29] = [
    "<bos>", "When", " Mary", " and", " Mark", " went", " to", " the", " store", ",", " Mark",
    " gave", " a", " drink", " to", " Mary", ".", " Then", " Mary", " said", " hi", " to", " Mark",
    " and", " left", " the", " shop", " :", " Mary",
];

/// The attention grid opens on the final query, says what is cut (`▴` rows above, `◂` keys
/// left), numbers the key columns, and uses the width for labels: at 120 columns the rows
/// and the columns tell Mary from Mark; at 80×24 the columns still do (two label lines).
#[test]
fn attention_grid_marks_what_is_cut_numbers_keys_and_uses_the_width_for_labels() {
    let (mut app, dir) = attention_app("trips-attn-grid", &STORY);
    assert_eq!(app.screen, Screen::Attention);
    for (w, h) in [(80, 24), (120, 40), (120, 24)] {
        let text = draw(&mut app, w, h);
        let lines: Vec<&str> = text.lines().collect();
        let last = lines
            .iter()
            .find(|l| l.trim_start().starts_with("28 "))
            .unwrap_or_else(|| panic!("the final query in view at {w}×{h}: {text}"));
        assert!(last.contains("28 ·Mary"), "{w}×{h}: {text}");
        let row = |q: &str| lines.iter().any(|l| l.trim_start().starts_with(q));
        if !row("0 <bos>") {
            assert!(
                text.contains('▴'),
                "rows cut above, marked: {w}×{h}: {text}"
            );
        }
        if !text.contains("<bos>") {
            assert!(text.contains('◂'), "keys cut left, marked: {w}×{h}: {text}");
        }
        let numbers = lines
            .iter()
            .find(|l| l.contains("27") && l.contains("26") && !l.contains('·'))
            .is_some();
        assert!(
            numbers,
            "key positions above the columns at {w}×{h}: {text}"
        );
        let header: String = lines[..8].join("\n");
        assert!(
            header.contains("·Mary") && header.contains("·Mark"),
            "key labels tell Mary from Mark at {w}×{h}: {text}"
        );
    }
    let text = draw(&mut app, 120, 40);
    assert!(
        text.contains("10 ·Mark") && text.contains("15 ·Mary"),
        "whole row labels at 120×40: {text}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// A saved run of the fixture model under a long model path, into `dir/name.json`.
fn save_run(dir: &Path, name: &str, model: &str) {
    let mut rec = record_with(2.0, -1.0, |l, h| if (l, h) == (2, 1) { -0.7 } else { -1.0 });
    let m = rec.model.as_mut().unwrap();
    m.label = model.into();
    rec.data = Some(DataInfo {
        spec: DataSpec::new(
            Path::new("data/paper/addition/setting1/addition_nmax9_offset1.jsonl"),
            TaskKind::Addition,
        ),
        n_examples: 100,
        skipped: vec![],
        multi_token_answers: vec![],
    });
    rec.save(&dir.join(format!("{name}.json")), false).unwrap();
}

/// The gallery's columns are laid out from the width: a 39-character model column gives way
/// before the data column shrinks, names are whole at 120 columns, each entry says when it
/// was made, and `/` filters the list by text (Esc clears the filter, then goes back).
#[test]
fn gallery_columns_fit_the_width_show_the_time_and_filter() {
    let dir = common::temp_dir("trips-gallery");
    // A 39-character model name, as a fine-tuned checkpoint's folder can be.
    let model = "/home/someone/models/Qwen2.5-7B-Instruct-addition-finetune-v2";
    let name = "resid_post_27-addition-run";
    for i in 0..3 {
        save_run(&dir, &format!("{name}{i}"), model);
    }
    save_run(&dir, "other-run", "org/Llama-3-8B");
    let mut app = loaded(setup(dir.clone()));
    press(&mut app, "w");
    assert_eq!(app.screen, Screen::Gallery);
    let text = draw(&mut app, 120, 40);
    let row = |text: &str, what: &str| -> String {
        let l = text.lines().find(|l| l.contains(what));
        l.unwrap_or_else(|| panic!("no {what}: {text}")).to_string()
    };
    let line = row(&text, "run0");
    assert!(line.contains(&format!("{name}0")), "the whole name: {text}");
    assert!(
        line.contains("addition_nmax9_offset1"),
        "the model gives way before the data: {text}"
    );
    let time = regex_like_time(&line);
    assert!(time, "a time column: {line}");
    // At 80 columns every column keeps part of its text; the data is not cut to nothing.
    let text = draw(&mut app, 80, 24);
    let line = row(&text, "run0");
    assert!(line.contains("addition_"), "the data keeps a part: {text}");
    assert!(line.contains("resid_"), "the name keeps its start: {text}");
    // `/` filters as it is typed; Esc clears the filter, then goes back.
    press(&mut app, "/Llama");
    let text = draw(&mut app, 120, 40);
    assert!(text.contains("other-run"), "{text}");
    assert!(!text.contains("run0"), "filtered out: {text}");
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.gallery.filter, "Llama");
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.screen, Screen::Gallery);
    assert!(app.gallery.filter.is_empty());
    let text = draw(&mut app, 120, 40);
    assert!(
        text.contains("run0") && text.contains("other-run"),
        "{text}"
    );
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.screen, Screen::Heatmap);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Whether `line` holds a time as the gallery prints it (`2026-01-31 14:05`).
fn regex_like_time(line: &str) -> bool {
    let c: Vec<char> = line.chars().collect();
    c.windows(16).any(|w| {
        let d = |i: usize| w[i].is_ascii_digit();
        (0..4).all(d)
            && w[4] == '-'
            && d(5)
            && d(6)
            && w[7] == '-'
            && d(8)
            && d(9)
            && w[10] == ' '
            && d(11)
            && d(12)
            && w[13] == ':'
            && d(14)
            && d(15)
    })
}

/// At 80×24 the readout's head lists do not fit: a list cut says how many more it has, and
/// the heads shown and the count add up to the list.
#[test]
fn readout_lists_cut_at_80x24_say_how_many_more() {
    let dir = common::temp_dir("trips-lists");
    let mut app = loaded(setup(dir.clone()));
    // 11 heads with |r| > 5% (r = -10%, -20%, ... on heads 0..=10), 3 between 2% and 5%.
    let rec = record_with(2.0, -1.0, |l, h| {
        let k = l * 4 + h;
        match k {
            0..=10 => -1.0 + 0.3 * (k as f64 + 1.0),
            11..=13 => -1.0 + 0.09,
            _ => -1.0,
        }
    });
    app.open_record(rec, dir.join("x.json"));
    let text = draw(&mut app, 80, 24);
    let more = |text: &str| -> Vec<usize> {
        text.lines()
            .filter_map(|l| {
                let at = l.find(" more")?;
                let start = l[..at].rfind('+')?;
                l[start + 1..at].parse().ok()
            })
            .collect()
    };
    let shown = |text: &str| {
        text.lines()
            .filter(|l| l.trim_end().ends_with('%') && l.contains('.'))
            .count()
    };
    let counts = more(&text);
    assert!(!counts.is_empty(), "a cut list says so: {text}");
    // Both lists: 11 + 3 heads, shown or counted.
    let listed = shown(&text) - text.lines().filter(|l| l.contains("r        ")).count();
    assert_eq!(listed + counts.iter().sum::<usize>(), 14, "{text}");
    // Tall enough, nothing is cut and nothing says so.
    let text = draw(&mut app, 80, 50);
    assert!(more(&text).is_empty(), "{text}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// Two of the paper's Gemma-2-9B results, copied into `dir/paper/gemma_2_9b/`.
fn paper_copy(dir: &Path) -> PathBuf {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/paper/results/gemma_2_9b");
    let to = dir.join("paper/gemma_2_9b");
    std::fs::create_dir_all(&to).unwrap();
    for f in ["resid_post_41.json", "ind_h39_7_v.json"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
    to
}

fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// `F` on a paper result opened from its folder writes the figure into the results folder
/// (`MODEL-NAME`), as the comparison's figure does, and nothing into the paper's folder.
#[test]
fn f_on_a_paper_result_writes_into_the_results_folder() {
    let dir = common::temp_dir("trips-paper-figure");
    let results = dir.join("results");
    std::fs::create_dir_all(&results).unwrap();
    let paper = paper_copy(&dir);
    let mut app = loaded(setup(results.clone()));
    let path = paper.join("resid_post_41.json");
    let rec = headhunt::results::RunRecord::load(&path).unwrap();
    app.open_record(rec, path);
    let before = listing(&paper);
    press(&mut app, "F");
    assert_eq!(listing(&paper), before, "{}", app.status.1);
    let svg = results.join("gemma_2_9b-resid_post_41.svg");
    assert!(svg.is_file(), "{:?} ({})", listing(&results), app.status.1);
    assert!(results.join("gemma_2_9b-resid_post_41.png").is_file());
    std::fs::remove_dir_all(dir).unwrap();
}

/// Columns of the grid cells of a heatmap figure (both panels of a pair).
fn figure_columns(svg: &str) -> usize {
    let rects = common::figure::svg_rects(svg);
    let mut sizes: Vec<i64> = rects
        .iter()
        .filter(|r| (r.w - r.h).abs() < 0.5 && r.w > 2.0)
        .map(|r| r.w.round() as i64)
        .collect();
    sizes.sort_unstable();
    let size = *sizes
        .chunk_by(|a, b| a == b)
        .max_by_key(|c| c.len())
        .expect("cells")
        .first()
        .unwrap();
    let mut xs: Vec<i64> = common::figure::svg_cells(svg, size as f64)
        .iter()
        .map(|r| r.x.round() as i64)
        .collect();
    xs.sort_unstable();
    xs.dedup();
    xs.len()
}

/// The comparison's figure follows the orientation on screen (auto: the comparison's own
/// layout), not the heatmap's.
#[test]
fn the_comparison_figure_follows_the_orientation_on_screen() {
    let dir = common::temp_dir("trips-compare-orient");
    let results = dir.join("results");
    std::fs::create_dir_all(&results).unwrap();
    let paper = paper_copy(&dir);
    let mut s = setup(results.clone());
    s.gallery_dirs = vec![paper];
    let mut app = loaded(s);
    press(&mut app, "w");
    press(&mut app, "mjc");
    assert_eq!(app.screen, Screen::Compare, "{}", app.status.1);
    let mut seen = Vec::new();
    for (w, h) in [(80, 24), (120, 40), (200, 60), (60, 50)] {
        app.viewport = (w, h);
        let rows = app.compare_layers_as_rows();
        if seen.contains(&rows) {
            continue;
        }
        seen.push(rows);
        for f in listing(&results) {
            std::fs::remove_file(f).unwrap();
        }
        press(&mut app, "F");
        let svg = listing(&results)
            .into_iter()
            .find(|p| p.extension().is_some_and(|e| e == "svg"))
            .unwrap_or_else(|| panic!("no figure: {}", app.status.1));
        let cols = figure_columns(&std::fs::read_to_string(svg).unwrap());
        // Gemma-2-9B: 42 layers × 16 heads, two panels.
        let want = if rows { 2 * 16 } else { 2 * 42 };
        assert_eq!(cols, want, "layers as rows on screen: {rows} at {w}×{h}");
    }
    assert_eq!(seen.len(), 2, "both orientations tried: {seen:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A prompt-pair run's figure says "prompt pairs", not the "4 shots, offset +0" its spec
/// holds by default.
#[test]
fn a_prompt_pair_runs_figure_says_prompt_pairs() {
    let mut rec = record_with(2.0, -1.0, |l, h| if (l, h) == (2, 1) { -0.7 } else { -1.0 });
    let mut spec = DataSpec::new(Path::new("pairs.jsonl"), TaskKind::Pairs);
    spec.shots = 4;
    spec.offset = 0;
    rec.data = Some(DataInfo {
        spec,
        n_examples: 8,
        skipped: vec![],
        multi_token_answers: vec![],
    });
    let words = headhunt::plot::heatmap::describe(&rec);
    assert!(words.contains("8 prompt pairs"), "{words}");
    assert!(
        !words.contains("shots") && !words.contains("offset"),
        "{words}"
    );
}

/// After a receiver is refused, typing replaces the refused value instead of appending to it
/// (an arrow key still edits it).
#[test]
fn typing_after_a_refused_receiver_replaces_it() {
    let dir = common::temp_dir("trips-receiver-error");
    let mut app = loaded(setup(dir.clone()));
    press(&mut app, ":");
    press(&mut app, "9.9.v");
    app.on_key(key(KeyCode::Enter));
    let input = app.input.as_ref().expect("stays open after an error");
    assert!(input.error.is_some(), "says why");
    press(&mut app, "2.1.v");
    assert_eq!(app.input.as_ref().unwrap().buffer, "2.1.v");
    app.on_key(key(KeyCode::Enter));
    assert!(app.input.is_none(), "{}", app.status.1);
    // An arrow first: the refused value is edited.
    press(&mut app, ":");
    press(&mut app, "9.9.v");
    app.on_key(key(KeyCode::Enter));
    app.on_key(key(KeyCode::End));
    app.on_key(key(KeyCode::Backspace));
    assert_eq!(app.input.as_ref().unwrap().buffer, "9.9.");
    std::fs::remove_dir_all(dir).unwrap();
}

/// The help at 80×24 lays the heatmap's keys out in two columns: no entry is split between
/// them (each description reads whole under its key), and every key stands at least two
/// columns clear of the text before it.
#[test]
fn help_at_80x24_keeps_entries_whole_and_keys_clear_of_text() {
    let dir = common::temp_dir("trips-help");
    let mut app = loaded(setup(dir.clone()));
    press(&mut app, "?");
    let (_, table) = headhunt::tui::view::help_table(Screen::Heatmap);
    let mut found = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let text = draw(&mut app, 80, 24);
        let lines: Vec<Vec<char>> = text.lines().map(|l| l.chars().collect()).collect();
        for (i, (label, what)) in table.iter().enumerate() {
            if let Some(got) = entry_text(&lines, label, what) {
                assert_eq!(got, *what, "entry {label:?} is split or cut:\n{text}");
                found.insert(i);
            }
        }
        app.on_key(key(KeyCode::Char('j')));
    }
    let missing: Vec<_> = (0..table.len())
        .filter(|i| !found.contains(i))
        .map(|i| table[i])
        .collect();
    assert!(
        missing.is_empty(),
        "not shown whole: {missing:?}\n{}",
        draw(&mut app, 80, 24)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// The description under `label` as drawn: from the line where the label stands (two spaces
/// or the border before it, two spaces after it) down its column until the next key or the
/// box's end. `None` when the label's first line is not on screen.
fn entry_text(lines: &[Vec<char>], label: &str, what: &str) -> Option<String> {
    let label: Vec<char> = label.chars().collect();
    let first_word = what.split(' ').next().unwrap();
    for (y, line) in lines.iter().enumerate() {
        for x in 0..line.len().saturating_sub(label.len()) {
            if line[x..x + label.len()] != label[..] {
                continue;
            }
            let clear_before = x >= 2 && line[x - 2..x].iter().all(|&c| c == ' ' || c == '│')
                || x >= 1 && line[x - 1] == '│';
            let rest: String = line[x + label.len()..].iter().collect();
            let trimmed = rest.trim_start();
            let gap = rest.len() - trimmed.len();
            if !clear_before || gap < 2 || !trimmed.starts_with(first_word) {
                continue;
            }
            let text_x = x + label.len() + gap;
            let mut words = Vec::new();
            for (k, l) in lines[y..].iter().enumerate() {
                let key_part: String = l.get(x..text_x)?.iter().collect();
                if key_part.contains('─') {
                    // The box's end: a whole entry ends here, or it is scrolled, not shown.
                    let got = words.join(" ");
                    return (got == what).then_some(got);
                }
                if k > 0 && !key_part.trim().is_empty() {
                    break;
                }
                let part: String = l[text_x..].iter().collect();
                let part = part
                    .split("   ")
                    .next()
                    .unwrap()
                    .trim_end_matches('│')
                    .trim();
                if part.is_empty() || part.starts_with('─') {
                    break;
                }
                words.push(part.to_string());
            }
            return Some(words.join(" "));
        }
    }
    None
}

/// Types `text` into the open prompt (replacing its pre-filled value) and confirms it.
fn type_in(app: &mut App, text: &str) {
    press(app, text);
    app.on_key(key(KeyCode::Enter));
}

/// A begin-layer change is another run of the same receiver: its breadcrumb says where its
/// senders start, so that the trail never shows one label twice.
#[test]
fn breadcrumbs_tell_a_begin_layer_change_apart() {
    let dir = common::temp_dir("trips-crumbs");
    let mut app = loaded(setup(dir.clone()));
    press(&mut app, "b");
    type_in(&mut app, "1");
    assert_eq!(
        app.breadcrumbs(),
        vec!["resid_post 3", "resid_post 3 from L1"]
    );
    let text = draw(&mut app, 120, 40);
    let title = text.lines().next().unwrap();
    assert!(
        title.contains("resid_post 3 → resid_post 3 from L1"),
        "{title}"
    );
    // A result of the same receiver opened from a file is a crumb of its own too.
    app.open_record(record_with(2.0, -1.0, |_, _| -0.9), dir.join("x.json"));
    let crumbs = app.breadcrumbs();
    assert_eq!(crumbs.last().unwrap(), "resid_post 3 (file)", "{crumbs:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A `z` crop is named in the legend (it is not a scroll: the layers cropped away are gone
/// until `Z`), in full at 120 columns and short at 80.
#[test]
fn a_crop_is_named_in_the_legend() {
    let dir = common::temp_dir("trips-crop");
    let mut app = loaded(setup(dir.clone()));
    app.open_record(
        record_with(2.0, -1.0, |l, h| -1.0 + 0.1 * (l + h) as f64),
        dir.join("x.json"),
    );
    assert!(!draw(&mut app, 120, 40).contains("cropped"));
    press(&mut app, "z");
    type_in(&mut app, "1-2");
    assert_eq!(app.crop, Some((1, 2)));
    let wide = draw(&mut app, 120, 40);
    assert!(
        wide.contains("cropped to layers 1..2 (Z uncrops)"),
        "{wide}"
    );
    let narrow = draw(&mut app, 80, 24);
    assert!(narrow.contains("1..2 (Z"), "{narrow}");
    press(&mut app, "Z");
    assert!(!draw(&mut app, 120, 40).contains("cropped"));
    std::fs::remove_dir_all(dir).unwrap();
}

/// A sender that cannot reach the receiver shows no patched value (a file holds the contrast
/// baseline there, which would read as computed), and no effect beside the baselines; a
/// reachable one still shows both.
#[test]
fn unreachable_cells_show_no_patched_value() {
    let dir = common::temp_dir("trips-unreachable");
    let mut app = loaded(setup(dir.clone()));
    let receiver = headhunt::patching::Receiver::head(2, 1, headhunt::model::HeadInput::V);
    let rec = record_to(&receiver, 2.0, -1.0, |l, _| -1.0 + 0.123 * l as f64);
    app.open_record(rec, dir.join("x.json"));
    app.cursor = (3, 0);
    let text = draw(&mut app, 120, 40);
    assert!(text.contains("cannot reach"), "{text}");
    assert!(!text.contains("patched  "), "{text}");
    assert!(!text.contains("− LD_c"), "{text}");
    app.cursor = (1, 0);
    let text = draw(&mut app, 120, 40);
    assert!(text.contains("patched  -0.8770"), "{text}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// Before a head receiver runs, its senders' layers end below its own layer, as the count
/// says: 4 heads × layers 0..=1 for head 2.1.v is 8 senders, "layers 0..=1".
#[test]
fn a_head_receivers_sender_layers_stop_below_it() {
    let dir = common::temp_dir("trips-senders");
    let mut app = loaded(setup(dir.clone()));
    press(&mut app, ":");
    type_in(&mut app, "2.1.v");
    app.take_effects();
    // The run is submitted; drop its state to draw the pending lines.
    let text = draw(&mut app, 120, 40);
    assert!(
        text.contains("8 senders (layers 0..=1 × 4 heads)"),
        "{text}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// The data-loaded event (job `id`) of tiny-gemma2's addition data with `n` preview pairs of
/// 40 tokens each, the contrast prompt's last token `END{i}`.
fn data_with_previews(id: u64, n: usize) -> Event {
    let pair = |i: usize| headhunt::worker::PairPreview {
        index: i,
        normal_tokens: (0..40).map(|t| format!("n{t}")).collect(),
        contrast_tokens: (0..39)
            .map(|t| format!("c{t}"))
            .chain([format!("END{i}")])
            .collect(),
        normal_answer: "3".into(),
        contrast_answer: "4".into(),
    };
    let spec = DataSpec::new(
        common::fixture("tiny-gemma2").join("addition.jsonl"),
        TaskKind::Addition,
    );
    Event::DataLoaded {
        id,
        info: DataInfo {
            spec,
            n_examples: 8,
            skipped: vec![],
            multi_token_answers: vec![],
        },
        lengths: vec![40],
        preview: (0..n).map(pair).collect(),
    }
}

/// At 80×24 the setup's details do not fit: the contrast prompt is reached by scrolling
/// (PgDn), and `n`/`p` show the other examples of the preview.
#[test]
fn the_setup_scrolls_to_the_contrast_prompt_and_shows_other_examples() {
    let dir = common::temp_dir("trips-setup-scroll");
    let mut app = App::new(setup(dir.clone()));
    app.take_effects();
    common::tui::model_loaded(&mut app);
    app.on_worker(data_with_previews(2, 3));
    press(&mut app, "m");
    assert_eq!(app.screen, Screen::Setup);
    app.viewport = (80, 24);
    let first = draw(&mut app, 80, 24);
    assert!(!first.contains("END0"), "{first}");
    assert!(first.contains("example 1 of 3"), "{first}");
    let mut text = first;
    for _ in 0..10 {
        app.on_key(key(KeyCode::PageDown));
        text = draw(&mut app, 80, 24);
        if text.contains("END0") {
            break;
        }
    }
    assert!(
        text.contains("END0"),
        "PgDn reaches the contrast prompt's end:\n{text}"
    );
    press(&mut app, "n");
    let text = draw(&mut app, 80, 24);
    assert!(text.contains("example 2 of 3"), "{text}");
    assert!(text.contains("END1"), "{text}");
    press(&mut app, "pp");
    assert!(draw(&mut app, 80, 24).contains("example 3 of 3"));
    for _ in 0..10 {
        app.on_key(key(KeyCode::PageUp));
    }
    assert_eq!(app.setup_screen.scroll, 0);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A failed load keeps what was typed in the form (the previous setup is loaded back under
/// it), and the length-mismatch error advises the setup's own "skip mismatched" field, which
/// the next `L` loads with the typed path.
#[test]
fn a_failed_setup_load_keeps_the_typed_path_and_advises_a_field_it_has() {
    let dir = common::temp_dir("trips-setup-error");
    let mut app = loaded(setup(dir.clone()));
    app.take_effects();
    let typed = dir.join("typed-mismatch.jsonl");
    std::fs::copy(
        common::fixture("tiny-gemma2").join("addition.jsonl"),
        &typed,
    )
    .unwrap();
    let typed_text = typed.display().to_string();
    press(&mut app, "m");
    press(&mut app, "jjjj");
    app.on_key(key(KeyCode::Enter));
    type_in(&mut app, &typed_text);
    press(&mut app, "L");
    let data_job = app
        .take_effects()
        .iter()
        .find_map(|e| match e {
            Effect::Submit(id, Job::LoadData(_)) => Some(*id),
            _ => None,
        })
        .expect("a data load");
    let error = headhunt::data::DataError::LengthMismatch {
        file: typed_text.clone(),
        lines: vec![3],
        detail: "line 3: 9 vs 10 tokens".into(),
    };
    app.on_worker(Event::Error {
        id: data_job,
        message: error.to_string(),
    });
    app.viewport = (120, 40);
    let text = draw(&mut app, 120, 40);
    assert!(!text.contains("skip mismatched examples"), "{text}");
    assert!(text.contains("skip mismatched to yes"), "{text}");
    assert_eq!(app.setup_form().field(4), typed_text);
    assert!(text.contains("typed-mismatch.jsonl"), "{text}");
    // The field the error names is on the form: set it, and L loads the typed setup.
    let row = headhunt::tui::app::SETUP_FIELDS
        .iter()
        .position(|f| *f == "skip mismatched")
        .expect("a skip mismatched field");
    press(&mut app, &"j".repeat(row - 4));
    app.on_key(key(KeyCode::Enter));
    type_in(&mut app, "yes");
    app.take_effects();
    press(&mut app, "L");
    let spec = app
        .take_effects()
        .iter()
        .find_map(|e| match e {
            Effect::Submit(_, Job::LoadData(spec)) => Some(spec.clone()),
            _ => None,
        })
        .expect("a data load");
    assert_eq!(spec.file, typed);
    assert!(spec.skip_mismatched, "{spec:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// `L` lists every run of the session with its state and whether it is saved, a run off the
/// breadcrumb trail included; `Enter` shows the chosen one on the heatmap.
#[test]
fn the_session_run_list_names_every_run_and_opens_one() {
    let dir = common::temp_dir("trips-runs");
    let mut app = loaded(setup(dir.clone()));
    // A drill-down, then back and another: the first drill-down leaves the trail.
    press(&mut app, ":");
    type_in(&mut app, "2.1.v");
    press(&mut app, "[");
    press(&mut app, ":");
    type_in(&mut app, "3.0.q");
    assert!(!app.breadcrumbs().contains(&"2.1.v".to_string()));
    app.take_effects();
    press(&mut app, "L");
    assert_eq!(app.screen, Screen::Runs);
    let text = draw(&mut app, 100, 30);
    for want in ["resid_post 3", "2.1.v", "3.0.q", "not saved"] {
        assert!(text.contains(want), "{want}:\n{text}");
    }
    let row = (0..app.runs.len())
        .find(|&i| app.run_label(i) == "2.1.v")
        .unwrap();
    while app.screens.runs.row > row {
        press(&mut app, "k");
    }
    while app.screens.runs.row < row {
        press(&mut app, "j");
    }
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.screen, Screen::Heatmap);
    assert_eq!(app.current().unwrap().key.receiver.label(), "2.1.v");
    std::fs::remove_dir_all(dir).unwrap();
}
