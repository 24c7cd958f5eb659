//! `headhunt open DIR` on a folder of shard parts (a running array job): the parts there
//! merged into one heatmap, merged again as more land, until every shard is in and the
//! heatmap equals the unsharded run.

mod common;

use std::path::Path;

use headhunt::results::RunRecord;
use headhunt::tui::app::{App, Screen};

/// `headhunt patch` of tiny-llama's addition data to `out` with `extra`.
fn patch(out: &Path, extra: &[&str]) {
    common::patch_fixture("tiny-llama", out, extra);
}

/// Waits past the explorer's once-a-second look at the folder, then ticks.
fn tick_after_a_second(app: &mut App) {
    std::thread::sleep(std::time::Duration::from_millis(1100));
    app.on_tick();
}

#[test]
fn a_folder_of_parts_fills_in_as_shards_land() {
    let dir = common::temp_dir("tui-parts");
    let parts = dir.join("parts");
    let whole = dir.join("whole.json");
    patch(&whole, &[]);
    patch(&parts.join("shard-2.json"), &["--shard", "2/3"]);
    let mut s = common::tui::setup(
        common::fixture("tiny-llama").to_str().unwrap(),
        dir.join("results"),
    );
    s.open = Some(parts.clone());
    let mut app = App::new(s);
    app.take_effects();
    assert_eq!(app.screen, Screen::Heatmap, "{}", app.status.1);
    assert!(
        app.status.1.contains("1 of 3 shards merged"),
        "{}",
        app.status.1
    );
    let first = app.current_record().unwrap().clone();
    assert!(
        !first.complete && first.rows_computed.len() < 4,
        "{:?}",
        first.rows_computed
    );
    // Nothing changed: nothing is merged again.
    tick_after_a_second(&mut app);
    assert_eq!(
        app.current_record().unwrap().rows_computed,
        first.rows_computed
    );
    patch(&parts.join("shard-0.json"), &["--shard", "0/3"]);
    patch(&parts.join("shard-1.json"), &["--shard", "1/3"]);
    tick_after_a_second(&mut app);
    assert!(
        app.status.1.contains("3 of 3 shards merged, all in"),
        "{}",
        app.status.1
    );
    let rec = app.current_record().unwrap();
    let want = RunRecord::load(&whole).unwrap();
    assert!(rec.complete);
    assert_eq!(rec.rows_computed, want.rows_computed);
    assert_eq!(
        rec.relative, want.relative,
        "the heatmap is the unsharded run's"
    );
    assert_eq!(
        app.runs.len(),
        1,
        "merged in place of the opened run, not beside it"
    );
}
