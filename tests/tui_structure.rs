//! The explorer's structure: every key table entry dispatches, the help reads the tables, and
//! no function in src/tui grows past what can be read at once.

use headhunt::tui::app::screens::runs::RunsScreen;
use headhunt::tui::app::{Component, Screen, SideView};
use headhunt::tui::keymap::{self, Binding, ATTENTION, COMPARE, GALLERY, HEATMAP, SETUP};
use headhunt::tui::view::help_table;

/// Every key of a table reaches its own action: no key is shadowed by an earlier entry
/// (which would make the help promise something the dispatch never does). Returns how many.
fn check_dispatch<A: Copy + PartialEq + std::fmt::Debug>(
    name: &str,
    table: &[Binding<A>],
) -> usize {
    let mut n = 0;
    for b in table {
        assert!(
            !b.keys.is_empty(),
            "{name}: help line {:?} has no key",
            b.label
        );
        for &(code, action) in b.keys {
            assert_eq!(
                keymap::lookup(table, code),
                Some(action),
                "{name}: {code:?} of {:?}",
                b.label
            );
            n += 1;
        }
    }
    n
}

/// The help lines of a screen are exactly its table's lines (then its notes), in order.
fn check_help<A>(screen: Screen, table: &[Binding<A>], notes: &[(&str, &str)]) {
    let (_, lines) = help_table(screen);
    let mut want: Vec<_> = table.iter().map(|b| (b.label, b.what)).collect();
    want.extend_from_slice(notes);
    assert_eq!(lines, want, "{screen:?}");
}

#[test]
fn every_key_of_every_table_dispatches_to_its_table_action() {
    assert!(check_dispatch("heatmap", HEATMAP) >= 36);
    assert!(check_dispatch("attention", ATTENTION) >= 17);
    assert!(check_dispatch("setup", SETUP) >= 8);
    assert!(check_dispatch("gallery", GALLERY) >= 11);
    assert!(check_dispatch("compare", COMPARE) >= 4);
    assert!(check_dispatch("runs", RunsScreen::KEYS) >= 8);
    assert!(check_dispatch("side", SideView::KEYS) >= 8);
}

#[test]
fn every_screens_help_comes_from_its_table() {
    check_help(Screen::Heatmap, HEATMAP, keymap::HEATMAP_NOTES);
    check_help(Screen::Attention, ATTENTION, &[]);
    check_help(Screen::Setup, SETUP, &[]);
    check_help(Screen::Gallery, GALLERY, &[]);
    check_help(Screen::Compare, COMPARE, &[]);
    check_help(Screen::Runs, RunsScreen::KEYS, &[]);
    check_help(Screen::Side, SideView::KEYS, &[]);
}

/// A shadowed key is caught: the check is not vacuous.
#[test]
#[should_panic(expected = "of \"second\"")]
fn a_shadowed_key_fails_the_dispatch_check() {
    const T: &[Binding<u8>] = &[
        Binding {
            label: "first",
            what: "",
            keys: &[(crossterm::event::KeyCode::Char('x'), 1)],
        },
        Binding {
            label: "second",
            what: "",
            keys: &[(crossterm::event::KeyCode::Char('x'), 2)],
        },
    ];
    check_dispatch("test", T);
}

/// The circuit screen's table: every key reaches its own action, and `?` prints the table.
#[test]
fn circuit_keys_dispatch_and_make_its_help() {
    for b in keymap::CIRCUIT {
        assert!(!b.keys.is_empty(), "help line {:?} has no key", b.label);
        for &(code, action) in b.keys {
            assert_eq!(
                keymap::lookup(keymap::CIRCUIT, code),
                Some(action),
                "{code:?}"
            );
        }
    }
    let (title, lines) = help_table(headhunt::tui::app::Screen::Circuit);
    assert_eq!(title, "circuit");
    assert_eq!(lines, keymap::help_lines(keymap::CIRCUIT));
}

/// Functions in src/tui that are known to be longer than 80 lines, with the length they may
/// not exceed (debt to split; the list may only shrink).
const KNOWN_LONG: &[(&str, usize)] = &[];

/// Lengths of `fn` items: from the `fn` line to the closing brace at the same indentation.
fn fn_lengths(text: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        let indent = &l[..l.len() - t.len()];
        let t = t
            .strip_prefix("pub ")
            .or_else(|| t.strip_prefix("pub(super) "))
            .unwrap_or(t);
        let t = t.strip_prefix("pub(crate) ").unwrap_or(t);
        let t = t.strip_prefix("async ").unwrap_or(t);
        let Some(rest) = t.strip_prefix("fn ") else {
            continue;
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let close = format!("{indent}}}");
        if let Some(end) = lines[i..].iter().position(|x| *x == close) {
            out.push((name, end + 1));
        }
    }
    out
}

fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_function_in_tui_is_over_80_lines() {
    let mut files = Vec::new();
    rust_files(std::path::Path::new("src/tui"), &mut files);
    assert!(files.len() > 5);
    let mut long = Vec::new();
    for f in files {
        for (name, len) in fn_lengths(&std::fs::read_to_string(&f).unwrap()) {
            let cap = KNOWN_LONG
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(80, |&(_, c)| c);
            if len > cap {
                long.push(format!(
                    "{}: fn {name} is {len} lines (at most {cap})",
                    f.display()
                ));
            }
        }
    }
    assert!(long.is_empty(), "{}", long.join("\n"));
}

#[test]
fn the_length_scan_can_fail() {
    let body = "    x();\n".repeat(90);
    let text = format!("fn long() {{\n{body}}}\n");
    assert_eq!(fn_lengths(&text), vec![("long".to_string(), 92)]);
}

/// The keys named in the first column of README's heatmap key table ("Keys of the heatmap"):
/// backquoted keys, and the bare names in it (hjkl, arrows, PgUp/PgDn, Home/End). Mouse and
/// Ctrl-C (a key on every screen, not a table entry) are left out. An unknown name fails.
fn readme_heatmap_keys(readme: &str) -> Vec<crossterm::event::KeyCode> {
    use crossterm::event::KeyCode as K;
    let start = readme
        .find("Keys of the heatmap")
        .expect("README has its heatmap key table");
    let rows = readme[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2);
    let mut keys = Vec::new();
    for row in rows {
        let cell = row.split('|').nth(1).unwrap();
        for tok in cell.split([' ', ',', '/']).filter(|t| !t.is_empty()) {
            let tok = tok.trim_matches('`');
            let code = match tok {
                "mouse" | "^C" | "Ctrl-C" => continue,
                "hjkl" => {
                    keys.extend("hjkl".chars().map(K::Char));
                    continue;
                }
                "←↓↑→" => {
                    keys.extend([K::Left, K::Down, K::Up, K::Right]);
                    continue;
                }
                "PgUp" => K::PageUp,
                "PgDn" => K::PageDown,
                "Home" => K::Home,
                "End" => K::End,
                "Enter" => K::Enter,
                "Esc" => K::Esc,
                "Bksp" | "Backspace" => K::Backspace,
                "space" => K::Char(' '),
                t if t.chars().count() == 1 => K::Char(t.chars().next().unwrap()),
                t => panic!("README's heatmap key table names {t:?}: not a key this test knows"),
            };
            keys.push(code);
        }
    }
    keys
}

/// README's heatmap key list and the heatmap's table (what `?` prints and the dispatch reads)
/// name the same keys, so README cannot promise a key the explorer lacks or miss one it has.
#[test]
fn readmes_key_list_names_exactly_the_heatmap_tables_keys() {
    use std::collections::BTreeSet;
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let fmt = |k: &crossterm::event::KeyCode| format!("{k:?}");
    let in_readme: BTreeSet<String> = readme_heatmap_keys(&readme).iter().map(fmt).collect();
    let in_table: BTreeSet<String> = HEATMAP
        .iter()
        .flat_map(|b| b.keys.iter().map(|(k, _)| fmt(k)))
        .collect();
    let missing: Vec<_> = in_table.difference(&in_readme).collect();
    let extra: Vec<_> = in_readme.difference(&in_table).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "README's heatmap keys differ from the table: missing {missing:?}, not in the table {extra:?}"
    );
    // The reading is not vacuous: a README row less is a key less.
    let cut = readme.replacen("| `a` `w` `L` `m` `C` |", "| `w` `L` `m` `C` |", 1);
    assert!(cut != readme, "the test's sample row is in README");
    assert!(!readme_heatmap_keys(&cut).contains(&crossterm::event::KeyCode::Char('a')));
}

/// Each screen besides the heatmap (whose state is the `Session` itself: runs, cursor,
/// groups) keeps its state struct and its update in its own file: a component's in
/// `src/tui/app/screens/` (with its `impl Component`), another's in `src/tui/app/` (its
/// `update_*`); the shared `app/mod.rs` and `keys.rs` define none of those structs.
#[test]
fn each_screens_state_and_update_are_in_its_own_file() {
    let app = concat!(env!("CARGO_MANIFEST_DIR"), "/src/tui/app");
    let read = |f: &str| std::fs::read_to_string(format!("{app}/{f}")).unwrap();
    let screens = [
        (
            "screens/attention.rs",
            "pub struct AttentionView",
            &["impl Component for AttentionView", "fn update("][..],
        ),
        (
            "screens/runs.rs",
            "pub struct RunsScreen",
            &["impl Component for RunsScreen", "fn update("],
        ),
        (
            "screens/side.rs",
            "pub struct SideView",
            &["impl Component for SideView", "fn update("],
        ),
        (
            "gallery.rs",
            "pub struct Gallery {",
            &["fn update_gallery(", "fn update_compare("],
        ),
        ("setup.rs", "pub struct Setup {", &["fn update_setup("]),
        (
            "circuit.rs",
            "pub struct CircuitView",
            &["fn update_circuit("],
        ),
    ];
    let shared = read("mod.rs") + &read("keys.rs");
    for (file, state, updates) in screens {
        let text = read(file);
        assert!(text.contains(state), "{file} lacks {state:?}");
        assert!(
            !shared.contains(state),
            "{state:?} is in app/mod.rs or keys.rs"
        );
        for u in updates {
            assert!(text.contains(u), "{file} lacks {u:?}");
            assert!(!shared.contains(u), "{u:?} is in app/mod.rs or keys.rs");
        }
    }
}

/// The view only reads the state: no drawing function takes `&mut App` (layout that keys
/// and the mouse need, such as `App::heatmap_geometry`, is computed from `&App` and the
/// terminal size, never written back by a draw).
#[test]
fn the_view_never_takes_the_app_mutably() {
    let mut files = Vec::new();
    rust_files(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src/tui/view")),
        &mut files,
    );
    assert!(files.len() >= 4, "{files:?}");
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let squeezed: String = text.split_whitespace().collect();
        assert!(
            !squeezed.contains("&mutApp") && !squeezed.contains("&mutcrate::tui::app::App"),
            "{} takes &mut App",
            f.display()
        );
    }
    // Nor can a draw write through `&App`: the state holds no interior mutability.
    let mut state = Vec::new();
    rust_files(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src/tui/app")),
        &mut state,
    );
    for f in state {
        let text = std::fs::read_to_string(&f).unwrap();
        for cell in ["Cell<", "RefCell", "Mutex<", "RwLock<"] {
            assert!(!text.contains(cell), "{} holds a {cell}", f.display());
        }
    }
}
