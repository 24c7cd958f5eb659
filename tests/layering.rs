//! The crate's layers point one way: model → data → patching (and the analyses, the demo) →
//! results → worker → tui, with `cli` and `main.rs` on top. This test reads `src/` as text and
//! checks the two rules that keep it so: nothing below `cli` names `crate::cli` or clap (the
//! core stays usable without a command line and its errors do not speak in flags), and the
//! graph of `crate::X` / `super::` uses between top-level modules has no cycle.
//!
//! Every top-level module except `cli` counts as "below cli", so a module added later is held to
//! the rule without editing this file. `demo` is below cli too: it is a model and dataset
//! provider (and a training loop) built on `model` and `data`; only the command line reaches it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The modules allowed to use clap and `crate::cli`: the command line itself.
const TOP: &[&str] = &["cli"];

/// One source file: its top-level module (`None` for `lib.rs`/`main.rs`), its module path inside
/// the crate (for resolving `super::`) and its text with comments removed.
struct Source {
    path: PathBuf,
    top: Option<String>,
    module: Vec<String>,
    code: String,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The text without `//` comments (doc comments name other modules in links and prose) and
/// without `/* */` blocks. String literals are kept; none of them spells a `crate::` path.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("//") {
            rest = r.find('\n').map_or("", |i| &r[i..]);
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.find("*/").map_or("", |i| &r[i + 2..]);
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

fn sources() -> Vec<Source> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files
        .into_iter()
        .map(|path| {
            let rel = path.strip_prefix(&src).unwrap();
            let mut module: Vec<String> = rel
                .iter()
                .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_string())
                .collect();
            if module.last().is_some_and(|m| m == "mod") {
                module.pop();
            }
            if module == ["lib"] || module == ["main"] {
                module.clear();
            }
            let top = module.first().cloned();
            let code = strip_comments(&std::fs::read_to_string(&path).unwrap());
            Source {
                path,
                top,
                module,
                code,
            }
        })
        .collect()
}

/// The identifier at the start of `s`.
fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// Whether `word` occurs in `code` as a whole identifier.
fn has_word(code: &str, word: &str) -> bool {
    code.match_indices(word).any(|(i, _)| {
        let before = code[..i].chars().next_back();
        let after = code[i + word.len()..].chars().next();
        let edge = |c: Option<char>| !c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        edge(before) && edge(after)
    })
}

/// The top-level modules that `s` reaches through `crate::X` or a `super::` chain (one per
/// `super`, `super::super::X` included), other than its own.
fn uses(s: &Source) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (i, _) in s.code.match_indices("crate::") {
        let before = s.code[..i].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        found.insert(ident(&s.code[i + "crate::".len()..]).to_string());
    }
    for (i, _) in s.code.match_indices("super::") {
        let before = s.code[..i].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let mut depth = 0;
        let mut rest = &s.code[i..];
        while let Some(r) = rest.strip_prefix("super::") {
            depth += 1;
            rest = r;
        }
        // `super` from module a::b::c is a::b; reaching the crate root names a top-level module.
        if depth >= s.module.len() {
            found.insert(ident(rest).to_string());
        }
    }
    found.retain(|m| Some(m) != s.top.as_ref() && !m.is_empty());
    found
}

#[test]
fn nothing_below_cli_uses_cli_or_clap() {
    let mut offences = Vec::new();
    for s in sources() {
        let Some(top) = &s.top else { continue };
        if TOP.contains(&top.as_str()) {
            continue;
        }
        let rel = s.path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap();
        if uses(&s).contains("cli") {
            offences.push(format!("{}: uses crate::cli", rel.display()));
        }
        if has_word(&s.code, "clap") {
            offences.push(format!("{}: uses clap", rel.display()));
        }
    }
    assert!(
        offences.is_empty(),
        "modules below cli must not use the command line:\n{}",
        offences.join("\n")
    );
}

/// A cycle in `graph` as a path `a -> b -> ... -> a`, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in sources() {
        if let Some(top) = &s.top {
            graph.entry(top.clone()).or_default().extend(uses(&s));
        }
    }
    graph
}

#[test]
fn top_level_modules_have_no_import_cycle() {
    let graph = module_graph();
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "import cycle between top-level modules: {}",
            cycle.join(" -> ")
        );
    }
}

/// The scanner itself: it must see the uses it is there to catch, or the tests above prove
/// nothing.
#[test]
fn the_scanner_sees_uses_and_cycles() {
    let s = Source {
        path: PathBuf::from("src/tui/app/files.rs"),
        top: Some("tui".into()),
        module: vec!["tui".into(), "app".into(), "files".into()],
        code: strip_comments(
            "// crate::plot in a comment\nuse crate::cli::x; fn f() { super::super::super::worker::y(); super::keys::z(); }",
        ),
    };
    let expected: BTreeSet<String> = ["cli", "worker"].map(String::from).into();
    assert_eq!(uses(&s), expected);
    assert!(has_word("#[derive(clap::ValueEnum)]", "clap"));
    assert!(!has_word("let clapper = 1;", "clap"));
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("a".into());
    assert_eq!(find_cycle(&g).unwrap(), ["a", "b", "a"]);
    g.get_mut("b").unwrap().clear();
    assert!(find_cycle(&g).is_none());
    assert!(
        module_graph().contains_key("model"),
        "the scan found no modules"
    );
}

/// The explorer's own layers, lowest first: the key tables, colours and layout (pure
/// functions of sizes and data) under the state (`app`), and the state under the drawing
/// (`view`). A file may use its own layer and those below it, never one above: the state
/// computes where things are before anything is drawn, and the view only reads it. Every
/// module of `src/tui` must be listed here, so that a new one is placed on purpose.
const TUI_LAYERS: &[&[&str]] = &[&["color", "keymap", "layout"], &["app"], &["view"]];

/// The `tui` submodules that `s` names: through `crate::tui::X`, `crate::tui::{X, ..}` or a
/// `super::` chain that resolves inside `tui`.
fn tui_uses(s: &Source) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut add_group = |rest: &str| {
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                found.insert(ident(item.trim()).to_string());
            }
        } else {
            found.insert(ident(rest).to_string());
        }
    };
    for (i, _) in s.code.match_indices("crate::tui::") {
        let before = s.code[..i].chars().next_back();
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            add_group(&s.code[i + "crate::tui::".len()..]);
        }
    }
    for (i, _) in s.code.match_indices("super::") {
        let before = s.code[..i].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let mut depth = 0;
        let mut rest = &s.code[i..];
        while let Some(r) = rest.strip_prefix("super::") {
            depth += 1;
            rest = r;
        }
        // From tui::a::b, `super` is tui::a; a chain that lands on `tui` itself names a
        // submodule of it.
        if s.module.len() == depth + 1 && s.module[0] == "tui" {
            add_group(rest);
        }
    }
    found.retain(|m| !m.is_empty() && m != "self");
    found
}

/// The layer of a `tui` submodule, if it is listed.
fn tui_layer(module: &str) -> Option<usize> {
    TUI_LAYERS.iter().position(|l| l.contains(&module))
}

#[test]
fn explorer_layers_point_one_way() {
    let mut offences = Vec::new();
    for s in sources() {
        if s.module.first().map(String::as_str) != Some("tui") || s.module.len() < 2 {
            continue;
        }
        let rel = s.path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap();
        let own = &s.module[1];
        let Some(layer) = tui_layer(own) else {
            offences.push(format!("{}: tui::{own} is in no layer", rel.display()));
            continue;
        };
        for used in tui_uses(&s) {
            if tui_layer(&used).is_some_and(|l| l > layer) {
                offences.push(format!("{}: tui::{own} uses tui::{used}", rel.display()));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "the explorer's state must not reach into its drawing:\n{}",
        offences.join("\n")
    );
}

/// The explorer's scanner sees each way of naming a sibling module.
#[test]
fn the_tui_scanner_sees_state_reaching_into_the_view() {
    let s = Source {
        path: PathBuf::from("src/tui/app/gallery.rs"),
        top: Some("tui".into()),
        module: vec!["tui".into(), "app".into(), "gallery".into()],
        code: strip_comments(
            "// crate::tui::keymap\nuse crate::tui::{color, view}; fn f() { crate::tui::layout::plan(); super::super::view::x(); super::files::y(); }",
        ),
    };
    let expected: BTreeSet<String> = ["color", "view", "layout"].map(String::from).into();
    assert_eq!(tui_uses(&s), expected);
    assert_eq!(tui_layer("app"), Some(1));
    assert!(tui_layer("view") > tui_layer("app"));
}
