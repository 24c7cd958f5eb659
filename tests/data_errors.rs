//! Every validation error: one line, naming the file, the line (1-based) and the field.

mod common;

use std::path::PathBuf;

use headhunt::data::{load_pairs, DataError, DataSpec, TaskKind};

/// Writes `text` to a fresh file and returns its path.
/// The message as the command line words it (with flag names).
fn cli(e: DataError) -> String {
    headhunt::error::one_line_error_worded(&e.into(), headhunt::cli::wording::flag_words)
}

fn file(tag: &str, text: &str) -> PathBuf {
    let p = common::temp_dir(tag).join("data.jsonl");
    std::fs::write(&p, text).unwrap();
    p
}

fn load_err(path: &PathBuf, task: TaskKind, shots: usize) -> (DataError, String) {
    let mut s = DataSpec::new(path, task);
    s.shots = shots;
    let e = load_pairs(&s).unwrap_err();
    let msg = e.to_string();
    assert!(!msg.contains('\n'), "one line: {msg}");
    (e, msg)
}

const GOOD: &str = r#"{"demonstration": [[1, 2], [3, 4]], "inference": [5, 6]}"#;

#[test]
fn malformed_json() {
    let p = file("json", &format!("{GOOD}\n{{\"demonstration\": [[1, 2]\n"));
    let (e, msg) = load_err(&p, TaskKind::Addition, 1);
    assert_eq!(e.line(), Some(2));
    assert_eq!(
        msg,
        format!(
            "{}:2: invalid JSON: EOF while parsing a list (column 25)",
            p.display()
        )
    );

    let p = file("json-array", "[1, 2]\n");
    let (_, msg) = load_err(&p, TaskKind::Addition, 1);
    assert_eq!(
        msg,
        format!(
            "{}:1: invalid JSON: expected a JSON object, found the list [1,2]",
            p.display()
        )
    );
}

#[test]
fn missing_fields() {
    let p = file(
        "missing",
        &format!("{GOOD}\n{GOOD}\n{{\"demonstration\": [[1, 2]]}}\n"),
    );
    let (e, msg) = load_err(&p, TaskKind::Addition, 1);
    assert!(
        matches!(e, DataError::MissingField { line: 3, ref field, .. } if field == "inference")
    );
    assert!(
        msg.starts_with(&format!("{}:3: field `inference` is missing", p.display())),
        "{msg}"
    );

    let p = file(
        "missing-pairs",
        r#"{"normal_input": "1=", "normal_output": "1", "contrast_input": "1="}"#,
    );
    let (_, msg) = load_err(&p, TaskKind::Pairs, 0);
    assert!(
        msg.starts_with(&format!(
            "{}:1: field `contrast_output` is missing",
            p.display()
        )),
        "{msg}"
    );
}

#[test]
fn fewer_demonstrations_than_shots() {
    let p = file("shots", &format!("{GOOD}\n{GOOD}\n"));
    assert_eq!(
        load_pairs(&{
            let mut s = DataSpec::new(&p, TaskKind::Addition);
            s.shots = 2;
            s
        })
        .unwrap()
        .len(),
        2
    );
    let (e, msg) = load_err(&p, TaskKind::Addition, 3);
    assert!(matches!(
        e,
        DataError::TooFewDemos {
            line: 1,
            have: 2,
            shots: 3,
            ..
        }
    ));
    assert_eq!(
        msg,
        format!(
            "{}:1: field `demonstration` has 2 demonstration(s), fewer than shots 3",
            p.display()
        )
    );
    // The command line names the flag.
    assert_eq!(
        cli(e),
        msg.replace("fewer than shots 3", "fewer than --shots 3")
    );
    // Same for the cipher and base-k addition.
    let p = file(
        "shots-cipher",
        r#"{"demonstration": [["a", "b"]], "inference": ["c", "d"]}"#,
    );
    let (e, _) = load_err(&p, TaskKind::Cipher, 2);
    assert!(matches!(
        e,
        DataError::TooFewDemos {
            have: 1,
            shots: 2,
            ..
        }
    ));
}

#[test]
fn non_integer_operands() {
    let cases = [
        (
            r#"[[1, 2], [3, 4.5]]"#,
            "[5, 6]",
            "demonstration[1][1]",
            "the number 4.5",
        ),
        (
            r#"[[1, 2], ["3", 4]]"#,
            "[5, 6]",
            "demonstration[1][0]",
            "the string \"3\"",
        ),
        (r#"[[1, 2], [3, 4]]"#, "[5, null]", "inference[1]", "null"),
        (
            r#"[[1, 2], [3, true]]"#,
            "[5, 6]",
            "demonstration[1][1]",
            "a boolean true",
        ),
    ];
    for (demos, inf, field, found) in cases {
        let p = file(
            "operands",
            &format!("{GOOD}\n{{\"demonstration\": {demos}, \"inference\": {inf}}}\n"),
        );
        let (_, msg) = load_err(&p, TaskKind::Addition, 1);
        assert_eq!(
            msg,
            format!(
                "{}:2: field `{field}`: expected an integer, found {found}",
                p.display()
            )
        );
    }
    // A pair that is not two operands.
    let p = file(
        "operands-pair",
        r#"{"demonstration": [[1, 2, 3]], "inference": [5, 6]}"#,
    );
    let (_, msg) = load_err(&p, TaskKind::Addition, 1);
    assert!(
        msg.contains(":1: field `demonstration[0]`: expected a pair [a, b] of integers"),
        "{msg}"
    );
    // The cipher wants strings.
    let p = file(
        "operands-cipher",
        r#"{"demonstration": [["a", 1]], "inference": ["c", "d"]}"#,
    );
    let (_, msg) = load_err(&p, TaskKind::Cipher, 1);
    assert!(
        msg.ends_with(":1: field `demonstration[0][1]`: expected a string, found the integer 1"),
        "{msg}"
    );
    // Base-k addition needs non-negative operands.
    let p = file(
        "operands-base",
        r#"{"demonstration": [[-3, 1]], "inference": [10, 11]}"#,
    );
    let mut s = DataSpec::new(&p, TaskKind::Base);
    s.base = Some(7);
    s.shots = 1;
    let msg = load_pairs(&s).unwrap_err().to_string();
    assert!(
        msg.contains(":1: field `demonstration`: base-k addition needs non-negative"),
        "{msg}"
    );
    // Prompt pairs want strings.
    let p = file(
        "pairs-type",
        r#"{"normal_input": "1=", "normal_output": 1, "contrast_input": "1=", "contrast_output": "2"}"#,
    );
    let (_, msg) = load_err(&p, TaskKind::Pairs, 0);
    assert_eq!(
        msg,
        format!(
            "{}:1: field `normal_output`: expected a string, found the integer 1",
            p.display()
        )
    );
}

#[test]
fn empty_files() {
    for text in ["", "\n", "  \n\n"] {
        let p = file("empty", text);
        let (e, msg) = load_err(&p, TaskKind::Addition, 1);
        assert!(matches!(e, DataError::Empty { .. }));
        assert_eq!(
            msg,
            format!(
                "{}: the file is empty (expected one JSON example per line)",
                p.display()
            )
        );
        assert!(matches!(TaskKind::detect(&p), Err(DataError::Empty { .. })));
    }
}

#[test]
fn blank_lines() {
    // Trailing blank lines (and CRLF endings) are fine, blank lines between examples are not.
    let p = file("blank-end", &format!("{GOOD}\r\n{GOOD}\r\n\r\n\n"));
    let mut s = DataSpec::new(&p, TaskKind::Addition);
    s.shots = 2;
    assert_eq!(load_pairs(&s).unwrap().len(), 2);
    let p = file("blank-middle", &format!("{GOOD}\n\n{GOOD}\n"));
    let (_, msg) = load_err(&p, TaskKind::Addition, 1);
    assert_eq!(
        msg,
        format!(
            "{}:2: invalid JSON: empty line (every line must hold one example)",
            p.display()
        )
    );
}

#[test]
fn too_many_examples() {
    let p = file("examples", &format!("{GOOD}\n{GOOD}\n{GOOD}\n"));
    let mut s = DataSpec::new(&p, TaskKind::Addition);
    s.shots = 1;
    s.examples = Some(3);
    assert_eq!(load_pairs(&s).unwrap().len(), 3);
    s.examples = Some(4);
    let e = load_pairs(&s).unwrap_err();
    assert!(matches!(
        e,
        DataError::TooManyExamples {
            requested: 4,
            available: 3,
            ..
        }
    ));
    assert_eq!(
        e.to_string(),
        format!(
            "{}: examples 4 is more than the 3 example(s) in the file",
            p.display()
        )
    );
    assert_eq!(
        cli(e),
        format!(
            "{}: --examples 4 is more than the 3 example(s) in the file",
            p.display()
        )
    );
    s.examples = Some(0);
    let e = load_pairs(&s).unwrap_err();
    assert_eq!(e.to_string(), "examples 0: use at least one example");
    assert_eq!(cli(e), "--examples 0: use at least one example");
}

#[test]
fn only_the_used_examples_are_parsed() {
    // A broken line after the first N examples does not matter when only N are used...
    let p = file("lazy", &format!("{GOOD}\n{GOOD}\nnot json\n"));
    let mut s = DataSpec::new(&p, TaskKind::Addition);
    s.shots = 1;
    s.examples = Some(2);
    assert_eq!(load_pairs(&s).unwrap().len(), 2);
    // ... but it does when every example is used.
    s.examples = None;
    let e = load_pairs(&s).unwrap_err();
    assert_eq!(e.line(), Some(3));
}

#[test]
fn missing_file() {
    let p = common::temp_dir("nofile").join("absent.jsonl");
    let (e, msg) = load_err(&p, TaskKind::Addition, 1);
    assert!(matches!(e, DataError::Io { .. }));
    assert!(msg.starts_with(&format!("{}: ", p.display())), "{msg}");
}
