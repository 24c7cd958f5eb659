//! The explorer's circuit screen: its keys submit the analysis jobs built from the heatmap's
//! groups (positions included) and cancel them; a real report computed on a fixture by the
//! worker is drawn with its own numbers; `s` saves it as the CLI writes it, the gallery lists
//! it and opening shows it again (read-only for another model); a bad file is one line.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use crossterm::event::KeyCode;
use headhunt::data::{DataFile, DataOptions};
use headhunt::results::analysis::AnalysisFile;
use headhunt::results::HeadGroup;
use headhunt::tui::app::{App, Effect, EntryKind, ReportTab, Screen, Setup};
use headhunt::tui::view;
use headhunt::worker::{AnalysisReport, Event, GroupSpec, Job, Worker};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use serde_json::Value;

use common::tui::{key, press};

fn setup(results: PathBuf, model: &Path) -> Setup {
    let mut s = common::tui::setup(model.to_str().unwrap(), results);
    s.data = DataFile {
        data: model.join("addition.jsonl"),
        options: DataOptions {
            offset: Some(1),
            examples: Some(6),
            ..Default::default()
        },
    };
    s.batch_size = 3;
    s
}

/// Types into an open prompt (replacing its value) and confirms it.
fn type_in(app: &mut App, text: &str) {
    assert!(app.input.is_some(), "no prompt open");
    press(app, text);
    app.on_key(key(KeyCode::Enter));
}

fn groups() -> Vec<HeadGroup> {
    vec![
        HeadGroup {
            name: "fi".into(),
            heads: vec![(3, 1), (2, 0)],
        },
        HeadGroup {
            name: "pt".into(),
            heads: vec![(2, 7), (1, 2)],
        },
        HeadGroup {
            name: "empty".into(),
            heads: vec![],
        },
    ]
}

/// Moves effects to a real worker and worker events to the app until `done`; returns the
/// analysis reports the worker sent (what the screen must draw).
fn pump(
    app: &mut App,
    worker: &Worker,
    rx: &mpsc::Receiver<Event>,
    done: impl Fn(&App) -> bool,
) -> Vec<AnalysisReport> {
    let mut reports = Vec::new();
    loop {
        for e in app.take_effects() {
            match e {
                Effect::Submit(id, job) => worker.submit_as(id, job),
                Effect::Cancel => worker.cancel(),
                Effect::Quit => {}
            }
        }
        if done(app) {
            return reports;
        }
        let ev = rx
            .recv_timeout(Duration::from_secs(300))
            .expect("the worker answers");
        match &ev {
            Event::Analysis { report, .. } => reports.push((**report).clone()),
            Event::Error { message, .. } => panic!("{message}"),
            _ => {}
        }
        app.on_worker(ev);
    }
}

/// The app on tiny-llama with a real worker behind it, model and data loaded.
fn live_app(tag: &str) -> (App, Worker, mpsc::Receiver<Event>, PathBuf) {
    let dir = common::temp_dir(tag);
    let (tx, rx) = mpsc::channel();
    let worker = Worker::spawn(tx);
    let mut app = App::new(setup(dir.clone(), &common::fixture("tiny-llama")));
    pump(&mut app, &worker, &rx, |a| {
        !a.loading && a.model.is_some() && a.data.as_ref().is_some_and(|d| d.eval.is_some())
    });
    app.groups = groups();
    (app, worker, rx, dir)
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

fn draw(app: &mut App) -> String {
    let mut term = Terminal::new(TestBackend::new(110, 40)).unwrap();
    app.viewport = (110, 40);
    term.draw(|f| view::draw(f, app)).unwrap();
    screen_text(&term)
}

fn idle(a: &App) -> bool {
    a.circuit.job.is_none()
}

/// Keys → jobs: the circuit request is built from the tagged groups with the positions typed
/// for them, the default knock-outs are one per group and one per head, `c` cancels, and
/// ablation / FV take the selected group's heads.
#[test]
fn keys_submit_requests_built_from_the_groups_and_cancel() {
    let (mut app, _worker, _rx, dir) = live_app("circuit-keys");
    press(&mut app, "C");
    assert_eq!(app.screen, Screen::Circuit);
    let names: Vec<_> = app.circuit.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["fi", "pt"], "empty groups are left out");
    assert_eq!(app.circuit.groups[0].positions, "all", "default positions");
    press(&mut app, "p");
    type_in(&mut app, "tok:=");
    press(&mut app, "j");
    app.on_key(key(KeyCode::Enter));
    type_in(&mut app, "@answers");
    press(&mut app, "p");
    type_in(&mut app, "middle");
    assert!(
        app.input.is_some(),
        "a bad position set keeps the prompt open"
    );
    app.on_key(key(KeyCode::Esc));
    press(&mut app, "e");
    let effects = app.take_effects();
    let [Effect::Submit(_, Job::Circuit(req))] = effects.as_slice() else {
        panic!("one circuit job, got {effects:?}");
    };
    let want = vec![
        GroupSpec {
            name: "fi".into(),
            heads: vec![(3, 1), (2, 0)],
            positions: "tok:=".into(),
        },
        GroupSpec {
            name: "pt".into(),
            heads: vec![(2, 7), (1, 2)],
            positions: "answers".into(),
        },
    ];
    assert_eq!(req.groups, want);
    let ko: Vec<Vec<(usize, usize)>> = vec![
        vec![(3, 1), (2, 0)],
        vec![(2, 7), (1, 2)],
        vec![(3, 1)],
        vec![(2, 0)],
        vec![(2, 7)],
        vec![(1, 2)],
    ];
    assert_eq!(req.knockouts, ko);
    assert!(req.minimality && req.greedy.is_none() && req.batch_size == 3);
    press(&mut app, "a");
    assert!(app.take_effects().is_empty(), "one analysis at a time");
    press(&mut app, "c");
    assert!(matches!(app.take_effects().as_slice(), [Effect::Cancel]));
    // The job ends (an error here): the screen stops waiting; then ablation and FV.
    let id = app.circuit.job.as_ref().unwrap().id;
    app.on_worker(Event::Error {
        id,
        message: "stopped".into(),
    });
    assert!(app.circuit.job.is_none());
    // A count that would draw 10^9 groups up front is refused where it is typed.
    press(&mut app, "n");
    type_in(&mut app, "1000000000 11");
    assert!(app.input.is_some(), "a huge count keeps the prompt open");
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.circuit.random_groups, 5, "the count is unchanged");
    press(&mut app, "n");
    type_in(&mut app, "7 11");
    press(&mut app, "a");
    match app.take_effects().as_slice() {
        [Effect::Submit(id, Job::Ablation(r))] => {
            assert_eq!(
                (r.heads.clone(), r.random_groups, r.seed),
                (vec![(2, 7), (1, 2)], 7, 11)
            );
            let id = *id;
            app.on_worker(Event::Error {
                id,
                message: "x".into(),
            });
        }
        e => panic!("an ablation job, got {e:?}"),
    }
    press(&mut app, "kf");
    match app.take_effects().as_slice() {
        [Effect::Submit(_, Job::FunctionVectors(r))] => {
            assert_eq!(r.heads, vec![(3, 1), (2, 0)]);
            assert_eq!(r.options.batch_size, 3);
        }
        e => panic!("an FV job, got {e:?}"),
    }
    incomplete_report_says_so(&mut app);
    press(&mut app, "K");
    type_in(&mut app, "3.1+2.7 1.2");
    assert_eq!(
        app.circuit.knockout_sets(),
        vec![vec![(3, 1), (2, 7)], vec![(1, 2)]]
    );
    app.on_key(key(KeyCode::Esc));
    assert_eq!(app.screen, Screen::Heatmap);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A cancelled circuit job: `Cancelled`, then the partial report, which is drawn with a note.
fn incomplete_report_says_so(app: &mut App) {
    use headhunt::analysis::circuit::{Circuit, Group};
    use headhunt::analysis::positions::PositionSet;
    use headhunt::worker::CircuitReport;
    let id = app.circuit.job.as_ref().map(|j| j.id);
    if let Some(id) = id {
        app.on_worker(Event::Error {
            id,
            message: "x".into(),
        });
    }
    press(app, "e");
    let Some(Effect::Submit(id, _)) = app.take_effects().pop() else {
        panic!("a circuit job");
    };
    let circuit = Circuit {
        groups: vec![Group {
            name: "fi".into(),
            heads: vec![(3, 1)],
            positions: PositionSet::All,
        }],
    };
    let report = CircuitReport {
        circuit,
        ld_normal: 1.0,
        ld_contrast: -1.0,
        f_c: 0.5,
        f_m: -1.0,
        faithfulness: 0.25,
        completeness: vec![],
        minimality: vec![],
        greedy: None,
        complete: false,
        warnings: vec![],
    };
    app.on_worker(Event::Cancelled { id });
    app.on_worker(Event::Analysis {
        id,
        report: Box::new(AnalysisReport::Circuit(report)),
    });
    assert!(app.circuit.job.is_none());
    let text = draw(app);
    assert!(text.contains("incomplete: cancelled"), "{text}");
    assert!(
        text.contains("F(C) +0.5000") && text.contains("faithfulness 0.2500"),
        "{text}"
    );
}

fn f4(x: f64) -> String {
    format!("{x:+.4}")
}

/// The three reports computed by the worker on tiny-llama are drawn with their own numbers
/// (at the printed precision); `s` saves them and the file equals the CLI's JSON; the gallery
/// lists it and opening it shows it again.
#[test]
fn real_reports_are_drawn_saved_as_the_cli_writes_and_opened_again() {
    let (mut app, worker, rx, dir) = live_app("circuit-render");
    press(&mut app, "C");
    press(&mut app, "p");
    type_in(&mut app, "tok:=");
    press(&mut app, "e");
    let reports = pump(&mut app, &worker, &rx, idle);
    let [AnalysisReport::Circuit(r)] = reports.as_slice() else {
        panic!("a circuit report, got {reports:?}");
    };
    assert!(r.complete);
    let text = draw(&mut app);
    assert!(text.contains(&format!("F(C) {}", f4(r.f_c))), "{text}");
    assert!(
        text.contains(&format!("faithfulness {:.4}", r.faithfulness)),
        "{text}"
    );
    let k = &r.completeness[0];
    let row = format!(
        "{:<28} {:>+10.4} {:>+10.4} {:>10.4}",
        "3.1+2.0", k.f_c_minus_k, k.f_m_minus_k, k.gap
    );
    assert!(text.contains(&row), "knock-out row {row:?} in\n{text}");
    assert_eq!(r.minimality.len(), 4);
    let m = &r.minimality[2];
    // The knock-out row of 2.7 comes first, its minimality bar last.
    let mline = text
        .lines()
        .rfind(|l| l.starts_with("2.7 "))
        .expect("a minimality bar");
    assert!(mline.contains('█') || m.value == 0.0, "{mline}");
    assert!(
        mline.trim_end().ends_with(&format!(" {:.4}", m.value)),
        "{mline}"
    );

    // Function vectors of the first group.
    press(&mut app, "f");
    let reports = pump(&mut app, &worker, &rx, idle);
    let [AnalysisReport::Fv(fv)] = reports.as_slice() else {
        panic!("an FV report, got {reports:?}");
    };
    assert_eq!(app.circuit.tab, ReportTab::Fv);
    for (panel, (key, grid)) in fv.result.delta.iter().enumerate() {
        app.circuit.fv_panel = panel;
        let text = draw(&mut app);
        let dec = view::circuit::fv_decimals(grid);
        let name = if key == "all" {
            "all heads".to_string()
        } else {
            format!("H{key}")
        };
        assert!(text.contains(&format!("◀ {name} ▶")), "{text}");
        for i in [0, 4, 9] {
            let cells: String = grid[i].iter().map(|v| format!("{v:>+7.dec$}")).collect();
            assert!(
                text.contains(&cells),
                "row {i} of {key}: {cells:?} in\n{text}"
            );
        }
    }

    // Ablation of the second group against random groups.
    press(&mut app, "jn");
    type_in(&mut app, "3 42");
    press(&mut app, "a");
    let reports = pump(&mut app, &worker, &rx, idle);
    let [AnalysisReport::Ablation(ab)] = reports.as_slice() else {
        panic!("an ablation report, got {reports:?}");
    };
    let text = draw(&mut app);
    let h = &ab.heads;
    let row = format!(
        "{:<28} {:>+9.4} {:>8.3} {:>8.3}",
        "ablate 2.7,1.2", h.logit_diff, h.acc_normal_answer, h.acc_contrast_answer
    );
    assert!(text.contains(&row), "{row:?} in\n{text}");
    let (mean, _) =
        headhunt::analysis::mean_std(&ab.random.iter().map(|r| r.logit_diff).collect::<Vec<_>>());
    assert!(text.contains(&format!("{mean:>+9.4}")), "{text}");

    save_and_compare_with_cli(&mut app, &dir);
    std::fs::remove_dir_all(dir).unwrap();
}

/// `s` writes one file per report; again says "already saved as"; the circuit file has the
/// CLI's fields and numbers; the gallery lists it and Enter shows it.
fn save_and_compare_with_cli(app: &mut App, dir: &Path) {
    press(app, "s");
    let saved: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(saved.len(), 3, "{saved:?} · {}", app.status.1);
    for p in &saved {
        // What the explorer saves, `headhunt plot` draws.
        headhunt::plot::load(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
    press(app, "s");
    assert_eq!(
        app.status.1.matches("already saved as").count(),
        3,
        "{}",
        app.status.1
    );
    assert_eq!(
        std::fs::read_dir(dir).unwrap().count(),
        3,
        "nothing written twice"
    );
    let circuit = saved
        .iter()
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("circuit-")
        })
        .expect("a circuit file");
    let ours: Value = serde_json::from_str(&std::fs::read_to_string(circuit).unwrap()).unwrap();
    let cli = cli_circuit(dir);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        keys(&ours),
        keys(&cli),
        "the same fields as headhunt circuit --json"
    );
    for k in ["LD_normal", "LD_contrast", "F_C", "F_M", "faithfulness"] {
        let (a, b) = (ours[k].as_f64().unwrap(), cli[k].as_f64().unwrap());
        assert!((a - b).abs() < 1e-9, "{k}: {a} vs CLI {b}");
    }
    for k in [
        "groups",
        "batch_size",
        "completeness",
        "minimality",
        "data",
        "greedy",
    ] {
        same_json(&ours[k], &cli[k], k);
    }
    assert_eq!(keys(&ours["model"]), keys(&cli["model"]));
    // The gallery lists the three with their kind; Enter opens the circuit one.
    app.screen = Screen::Heatmap;
    press(app, "w");
    let i = app
        .gallery
        .entries
        .iter()
        .position(|e| &e.path == circuit)
        .expect("listed");
    assert!(app.gallery.entries[i].label().contains("circuit"));
    assert!(matches!(
        app.gallery.entries[i].kind,
        EntryKind::Analysis(_)
    ));
    // An analysis result has no matrix to compare: said, not a blank "did not load".
    app.gallery.marked = Some((i + 1) % app.gallery.entries.len());
    app.gallery.selected = i;
    press(app, "c");
    assert_eq!(app.screen, Screen::Gallery);
    assert!(app.status.1.contains("circuit screen"), "{}", app.status.1);
    app.gallery.marked = None;
    let shown = app.circuit.report(ReportTab::Circuit).unwrap().file.clone();
    app.circuit.reports = [None, None, None];
    app.gallery.selected = i;
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.screen, Screen::Circuit);
    let opened = app.circuit.report(ReportTab::Circuit).unwrap().file.clone();
    // serde_json reads floats back to within an ulp (no float_roundtrip feature).
    same_json(
        &serde_json::from_str(&opened.to_json()).unwrap(),
        &serde_json::from_str(&shown.to_json()).unwrap(),
        "opened",
    );
    assert!(
        app.circuit.read_only.is_none(),
        "its model is the loaded one"
    );
    let text = draw(app);
    let AnalysisFile::Circuit(c) = opened else {
        panic!()
    };
    assert!(text.contains(&format!("F(C) {}", f4(c.f_c))), "{text}");
}

/// Equal JSON, numbers to 1e-12 relative (the last bit of a float read back may differ).
fn same_json(a: &Value, b: &Value, at: &str) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(
                x.keys().collect::<Vec<_>>(),
                y.keys().collect::<Vec<_>>(),
                "{at}"
            );
            for (k, v) in x {
                same_json(v, &y[k], &format!("{at}.{k}"));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}");
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                same_json(p, q, &format!("{at}[{i}]"));
            }
        }
        (Value::Number(x), Value::Number(y)) => {
            let (p, q) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (p - q).abs() <= 1e-12 * p.abs().max(1.0),
                "{at}: {p} vs {q}"
            );
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

/// `headhunt circuit --json` on the same model, data, groups and batch size as the explorer.
fn cli_circuit(dir: &Path) -> Value {
    let f = common::fixture("tiny-llama");
    let out = dir.join("cli").join("c.json");
    let d = f.join("addition.jsonl");
    let args = [
        "circuit",
        "--model",
        f.to_str().unwrap(),
        "--data",
        d.to_str().unwrap(),
        "--offset",
        "1",
        "--examples",
        "6",
        "--batch-size",
        "3",
        "--group",
        "fi=3.1,2.0@tok:=",
        "--group",
        "pt=2.7,1.2@all",
        "--knockout",
        "3.1+2.0",
        "--knockout",
        "2.7+1.2",
        "--knockout",
        "3.1",
        "--knockout",
        "2.0",
        "--knockout",
        "2.7",
        "--knockout",
        "1.2",
        "--minimality",
        "--json",
    ];
    let st = Command::new(common::bin())
        .args(args)
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
}

/// A damaged analysis file is one line naming the file and the field, in the loader, the
/// gallery and `headhunt open`; a file of another model opens read-only.
#[test]
fn bad_analysis_file_is_one_line_and_foreign_model_is_read_only() {
    let dir = common::temp_dir("circuit-bad");
    let bad = dir.join("circuit-bad.json");
    std::fs::write(
        &bad,
        r#"{"format": "headhunt-circuit", "format_version": 1, "groups": []}"#,
    )
    .unwrap();
    let e = AnalysisFile::load(&bad).unwrap_err().to_string();
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.contains("circuit-bad.json") && e.contains("headhunt-circuit"),
        "{e}"
    );
    let other = dir.join("other.json");
    std::fs::write(&other, r#"{"format": "headhunt-fvv"}"#).unwrap();
    let e = AnalysisFile::load(&other).unwrap_err().to_string();
    assert!(
        e.contains("`format`") && e.contains("expected one of"),
        "{e}"
    );
    let entries = headhunt::tui::app::scan_results(std::slice::from_ref(&dir));
    let b = entries.iter().find(|x| x.path == bad).unwrap();
    assert!(b.label().contains("unreadable") && b.record.is_err());
    let (code, _, err) = open_cli(&bad);
    common::assert_one_line_error(code, &err, &["circuit-bad.json"]);

    // A valid file of another model: shown, nothing runs.
    let good = dir.join("circuit-good.json");
    foreign_file(&good);
    let mut s = setup(dir.clone(), &common::fixture("tiny-llama"));
    s.open = Some(good.clone());
    let mut app = App::new(s);
    app.take_effects();
    assert_eq!(app.screen, Screen::Circuit, "{}", app.status.1);
    assert!(app
        .circuit
        .read_only
        .as_ref()
        .unwrap()
        .contains("some/other-model"));
    press(&mut app, "e");
    assert!(app.status.1.contains("read-only"), "{}", app.status.1);
    assert!(app.take_effects().is_empty());
    let text = draw(&mut app);
    assert!(
        text.contains("F(C) +1.2346") && text.contains("read-only"),
        "{text}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

fn open_cli(p: &Path) -> (i32, String, String) {
    let out = Command::new(common::bin())
        .args(["open", p.to_str().unwrap()])
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// A circuit file of a model "some/other-model" (not loaded), F(C) = 1.23456.
fn foreign_file(path: &Path) {
    use headhunt::results::analysis::{CircuitFile, Common, GroupRecord};
    let model = headhunt::results::ModelInfo {
        origin: headhunt::model::ModelOrigin::Local {
            path: "some/other-model".into(),
        },
        label: "some/other-model".into(),
        family: headhunt::model::Family::Llama,
        n_layers: 4,
        n_heads: 8,
        n_kv_heads: 8,
        d_model: 64,
        d_head: 8,
        d_mlp: 128,
        vocab_size: 50,
        dtype: "f32".into(),
        device: "cpu".into(),
        quantization: None,
        ignored_config_keys: Vec::new(),
        parallel_block: false,
    };
    let spec =
        headhunt::data::DataSpec::new(Path::new("d.jsonl"), headhunt::data::TaskKind::Addition);
    let f = CircuitFile {
        common: Common {
            format: "headhunt-circuit".into(),
            format_version: 1,
            headhunt_version: "0".into(),
            created: "2026-01-01T00:00:00Z".into(),
            model,
            data: headhunt::results::DataInfo {
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
            positions: "tok:=".into(),
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

/// A signal (SIGTERM, SIGHUP) ends the explorer with nobody there to press `s`: the analysis
/// reports on the circuit screen that are not saved yet are saved as `s` saves them, and the
/// status line says where. One already saved is neither written nor mentioned again.
#[test]
fn a_signal_saves_the_unsaved_analysis_reports() {
    let (mut app, worker, rx, dir) = live_app("circuit-signal");
    press(&mut app, "C");
    press(&mut app, "e");
    pump(&mut app, &worker, &rx, idle);
    press(&mut app, "s");
    press(&mut app, "a");
    let reports = pump(&mut app, &worker, &rx, idle);
    assert!(matches!(reports.as_slice(), [AnalysisReport::Ablation(_)]));
    app.save_before_exit();
    assert!(app.quit);
    let kinds: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter_map(|e| AnalysisFile::load(&e.path()).ok())
        .map(|f| f.kind().to_string())
        .collect();
    assert_eq!(
        kinds.len(),
        2,
        "the circuit (saved by s) and the ablation: {kinds:?}"
    );
    assert!(kinds.iter().any(|k| k.contains("ablat")), "{kinds:?}");
    assert!(app.status.1.starts_with("saved "), "{}", app.status.1);
    assert!(!app.status.1.contains("already"), "{}", app.status.1);
    assert_eq!(app.unsaved(), None);
}

/// At 80×24 nothing on the circuit screen is cut silently at the edge: prose lines wrap (the
/// ablation's answer-set note, the options line with its seed; both were cut before).
#[test]
fn the_circuit_screen_wraps_or_marks_what_does_not_fit_at_80x24() {
    let (mut app, worker, rx, _dir) = live_app("circuit-80x24");
    press(&mut app, "C");
    press(&mut app, "a");
    pump(&mut app, &worker, &rx, idle);
    let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
    app.viewport = (80, 24);
    term.draw(|f| view::draw(f, &app)).unwrap();
    let text = screen_text(&term);
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let options = format!(
        "n random {}, seed {}",
        app.circuit.random_groups, app.circuit.seed
    );
    for whole in [options.as_str(), "(full: the whole vocabulary)"] {
        assert!(joined.contains(whole), "{whole:?} cut in\n{text}");
    }
    drop(worker);
}
