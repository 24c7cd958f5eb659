//! Tokenization with the fixture tokenizers (character level, `<bos>` = 2 added by the
//! post-processor) and the real Qwen2.5 BPE tokenizer (no BOS): BOS once, answer tokens under
//! both rules, multi-token answers, length mismatches.

mod common;

use std::path::{Path, PathBuf};

use headhunt::data::{
    load_and_tokenize, tokenize_pairs, AnswerTokenRule, DataError, DataSpec, PromptPair, TaskKind,
};
use headhunt::model::Tokenizer;

fn fixture_tok(name: &str) -> Tokenizer {
    Tokenizer::from_file(&common::fixture(name).join("tokenizer.json")).unwrap()
}

fn qwen() -> Tokenizer {
    let p = common::fixtures_dir().join("../models/qwen2.5-coder-0.5b-instruct/tokenizer.json");
    Tokenizer::from_file(&p).unwrap()
}

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data").join(rel)
}

fn pair(ni: &str, no: &str, ci: &str, co: &str) -> PromptPair {
    PromptPair {
        normal_input: ni.into(),
        normal_output: no.into(),
        contrast_input: ci.into(),
        contrast_output: co.into(),
    }
}

// Character-level fixture ids: '0'..'9' = 4..13, '+' = 14, '=' = 15, ' ' = 18, 'a' = 19,
// '\n' = 45, '<bos>' = 2.
const BOS: u32 = 2;
fn digit(d: u32) -> u32 {
    4 + d
}

#[test]
fn paper_prompts_with_every_fixture_tokenizer() {
    for name in common::PATCHING_FIXTURES {
        let tok = fixture_tok(name);
        assert_eq!(tok.bos, Some(BOS), "{name}");
        let mut spec = DataSpec::new(
            data("paper/addition/setting1/addition_nmax9_offset1.jsonl"),
            TaskKind::Addition,
        );
        spec.examples = Some(10);
        let t = load_and_tokenize(&spec, &tok).unwrap();
        assert_eq!(t.pairs.len(), 10);
        assert!(t.skipped.is_empty() && t.multi_token_answers.is_empty());
        let p = &t.pairs[0];
        assert_eq!(p.index, 0);
        // 4+3=7\n3+2=5\n6+0=6\n3+3=6\n1+0= : BOS + 6 per shot + 4 (the paper's 6n+5 layout).
        assert_eq!(p.len(), 29);
        let expected_start = [BOS, digit(4), 14, digit(3), 15, digit(7), 45];
        assert_eq!(&p.normal_ids[..7], &expected_start);
        assert_eq!(p.contrast_ids[5], digit(8));
        assert_eq!(&p.normal_ids[25..], &[digit(1), 14, digit(0), 15]);
        assert_eq!(p.normal_ids.iter().filter(|&&i| i == BOS).count(), 1);
        assert_eq!((p.normal_answer, p.contrast_answer), (digit(1), digit(2)));
        assert_eq!(p.first_difference(), 5);
        // Every example: 29 tokens, answers a+b and a+b+1.
        assert_eq!(
            t.length_counts().into_iter().collect::<Vec<_>>(),
            [(29, 10)]
        );
    }
}

#[test]
fn bos_is_added_once() {
    let tok = fixture_tok("tiny-gemma2");
    let pairs = [pair("<bos>1+1=", "2", "<bos>1+1=", "3")];
    let t = tokenize_pairs(&tok, &pairs, AnswerTokenRule::Last, false).unwrap();
    assert_eq!(t.pairs[0].normal_ids, [BOS, digit(1), 14, digit(1), 15]);
    // The Qwen tokenizer adds none.
    let q = qwen();
    assert_eq!(q.bos, None);
    let t = tokenize_pairs(
        &q,
        &[pair("1+1=", "2", "1+1=", "3")],
        AnswerTokenRule::Last,
        false,
    )
    .unwrap();
    assert_eq!(t.pairs[0].normal_ids, q.encode_plain("1+1=").unwrap());
    assert_eq!(t.pairs[0].len(), 4);
}

#[test]
fn answer_token_rules_with_the_fixture() {
    let tok = fixture_tok("tiny-llama");
    let pairs = [
        pair("9+9=", "18", "9+9=", "19"),
        pair("1+2=", "3", "1+2=", "4"),
    ];
    let last = tokenize_pairs(&tok, &pairs, AnswerTokenRule::Last, false).unwrap();
    let first = tokenize_pairs(&tok, &pairs, AnswerTokenRule::First, false).unwrap();
    // "18": last token '8', first token '1'; both answers span two tokens.
    assert_eq!(
        (last.pairs[0].normal_answer, last.pairs[0].contrast_answer),
        (digit(8), digit(9))
    );
    assert_eq!(
        (first.pairs[0].normal_answer, first.pairs[0].contrast_answer),
        (digit(1), digit(1))
    );
    assert_eq!(
        (last.pairs[1].normal_answer, last.pairs[1].contrast_answer),
        (digit(3), digit(4))
    );
    assert_eq!(
        (first.pairs[1].normal_answer, first.pairs[1].contrast_answer),
        (digit(3), digit(4))
    );
    assert_eq!(last.multi_token_answers, [0]);
    assert_eq!(first.multi_token_answers, [0]);
}

#[test]
fn cipher_answers_with_a_leading_space() {
    let tok = fixture_tok("tiny-gemma2");
    let mut spec = DataSpec::new(
        data("paper/cipher/normal/cipher_maxlen1_offset2.jsonl"),
        TaskKind::Cipher,
    );
    spec.examples = Some(3);
    let t = load_and_tokenize(&spec, &tok).unwrap();
    // " z" / " b" are two characters: ' ' then the letter. Last rule: the letter.
    let (z, b) = (19 + 25, 19 + 1);
    assert_eq!(
        (t.pairs[0].normal_answer, t.pairs[0].contrast_answer),
        (z, b)
    );
    assert_eq!(t.multi_token_answers, [0, 1, 2]);
    spec.answer_token = AnswerTokenRule::First;
    let t = load_and_tokenize(&spec, &tok).unwrap();
    assert_eq!(
        (t.pairs[0].normal_answer, t.pairs[0].contrast_answer),
        (18, 18)
    );
}

#[test]
fn multi_token_answers_with_qwen() {
    let q = qwen();
    let id = |s: &str| q.token_to_id(s).unwrap();
    let pairs = [
        pair("2+3=", "5", "2+3=", "6"),
        pair("5+7=", "12", "5+7=", "13"),
        pair("50+73=", "123", "50+73=", "124"),
        pair("q ->", " q", "q ->", " s"),
    ];
    let t = tokenize_pairs(&q, &pairs, AnswerTokenRule::Last, false).unwrap();
    // Qwen2 splits numbers into single digits: "12" and "123" span several tokens.
    assert_eq!(t.multi_token_answers, [1, 2]);
    assert_eq!(
        (t.pairs[0].normal_answer, t.pairs[0].contrast_answer),
        (id("5"), id("6"))
    );
    assert_eq!(
        (t.pairs[1].normal_answer, t.pairs[1].contrast_answer),
        (id("2"), id("3"))
    );
    assert_eq!(
        (t.pairs[2].normal_answer, t.pairs[2].contrast_answer),
        (id("3"), id("4"))
    );
    // " q" is one token ("Ġq").
    assert_eq!(
        (t.pairs[3].normal_answer, t.pairs[3].contrast_answer),
        (id("Ġq"), id("Ġs"))
    );
    let f = tokenize_pairs(&q, &pairs, AnswerTokenRule::First, false).unwrap();
    assert_eq!(f.multi_token_answers, [1, 2]);
    assert_eq!(
        (f.pairs[1].normal_answer, f.pairs[1].contrast_answer),
        (id("1"), id("1"))
    );
    assert_eq!(
        (f.pairs[3].normal_answer, f.pairs[3].contrast_answer),
        (id("Ġq"), id("Ġs"))
    );
}

#[test]
fn first_rule_needs_the_prompt_as_a_prefix() {
    let q = qwen();
    let pairs = [
        pair("1+1=", "2", "1+1=", "3"),
        pair("Hello wor", "ld", "Hello wor", "ld"),
    ];
    let e = tokenize_pairs(&q, &pairs, AnswerTokenRule::First, false).unwrap_err();
    assert!(matches!(e, DataError::AnswerNotPrefix { line: 2, .. }));
    let msg = e.to_string();
    assert!(
        msg.starts_with("line 2: field `normal_output`: answer token first: the prompt's 2 tokens are not a prefix"),
        "{msg}"
    );
    assert!(msg.ends_with("; use answer token last"), "{msg}");
    // The command line names the flag.
    let cli = cli(e);
    assert!(
        cli.starts_with("line 2: field `normal_output`: --answer-token first: the prompt's 2 tokens are not a prefix"),
        "{cli}"
    );
    assert!(cli.ends_with("; use --answer-token last"), "{cli}");
    // The last rule does not care.
    assert!(tokenize_pairs(&q, &pairs, AnswerTokenRule::Last, false).is_ok());
}

#[test]
fn empty_answers_are_errors() {
    let tok = fixture_tok("tiny-gemma2");
    let e = tokenize_pairs(
        &tok,
        &[pair("1=", "1", "1=", "")],
        AnswerTokenRule::Last,
        false,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 1: field `contrast_output`: the answer is empty"
    );
}

/// The message as the command line words it (with flag names).
fn cli(e: DataError) -> String {
    headhunt::error::one_line_error_worded(&e.into(), headhunt::cli::wording::flag_words)
}

fn write(tag: &str, pairs: &[PromptPair]) -> PathBuf {
    let p = common::temp_dir(tag).join("pairs.jsonl");
    let text: String = pairs
        .iter()
        .map(|p| serde_json::to_string(p).unwrap() + "\n")
        .collect();
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn mismatched_lengths_error_or_skip() {
    let tok = fixture_tok("tiny-mistral");
    let pairs = [
        pair("1+1=2\n1+2=", "3", "1+1=3\n1+2=", "4"),
        pair("9+1=10\n1+2=", "3", "9+1=11\n1+2=", "4"),
        pair("5+5=10\n1+1=", "2", "5+5=9\n1+1=", "1"),
        pair("2+2=4\n3+3=", "6", "2+2=5\n3+3=", "7"),
        pair("8+1=9\n2+2=", "4", "8+1=10\n2+2=", "5"),
        pair("1+1=", "2", "1+1=", "3"),
    ];
    let path = write("mismatch", &pairs);
    let mut spec = DataSpec::new(&path, TaskKind::Pairs);
    let e = load_and_tokenize(&spec, &tok).unwrap_err();
    assert!(matches!(&e, DataError::LengthMismatch { lines, .. } if lines == &[3, 5]));
    assert_eq!(
        e.to_string(),
        format!(
            "{}: normal and contrast prompts tokenize to different lengths in 2 example(s), \
             line(s) 3, 5; line 3: 12 vs 11 tokens, line 5: 11 vs 12 tokens; path patching needs \
             equal lengths (skip mismatched examples to go on without them)",
            path.display()
        )
    );
    assert!(
        cli(e.clone())
            .ends_with("path patching needs equal lengths (pass --skip-mismatched to skip them)"),
        "{}",
        cli(e.clone())
    );
    spec.skip_mismatched = true;
    let t = load_and_tokenize(&spec, &tok).unwrap();
    assert_eq!(t.skipped, [2, 4]);
    let kept: Vec<usize> = t.pairs.iter().map(|p| p.index).collect();
    assert_eq!(kept, [0, 1, 3, 5]);
    // Different examples may have different lengths.
    let lens: Vec<(usize, usize)> = t.length_counts().into_iter().collect();
    assert_eq!(lens, [(5, 1), (11, 2), (12, 1)]);

    // Skipping everything is an error.
    let all_bad = write("mismatch-all", &pairs[2..3]);
    let mut spec = DataSpec::new(&all_bad, TaskKind::Pairs);
    spec.skip_mismatched = true;
    let e = load_and_tokenize(&spec, &tok).unwrap_err();
    assert!(matches!(e, DataError::AllSkipped { skipped: 1, .. }), "{e}");
    assert!(e
        .to_string()
        .starts_with(&format!("{}: every example", all_bad.display())));
}

#[test]
fn papers_base_k_files_have_equal_lengths() {
    // The decimal reading of two d-digit base-k numbers whose base-k sum has d digits never
    // gains a digit, so the paper's base-k prompts (32 shots, as its task-generalization run)
    // tokenize to equal lengths character by character.
    let tok = fixture_tok("tiny-qwen2");
    for ndigits in [2, 3] {
        for base in 6..=9 {
            let mut spec = DataSpec::new(
                data(&format!(
                    "paper/addition_base/normal/addition_ndigits{ndigits}_base{base}.jsonl"
                )),
                TaskKind::Base,
            );
            spec.shots = 32;
            let t = load_and_tokenize(&spec, &tok).unwrap();
            assert_eq!(t.pairs.len(), 100);
            // Answers of 2 or 3 digits span as many character tokens.
            assert_eq!(t.multi_token_answers.len(), 100);
            // Without a carry in base k the two sums agree: then so do the answer tokens.
            let pairs = headhunt::data::load_pairs(&spec).unwrap();
            let same: Vec<usize> = (0..100)
                .filter(|&i| pairs[i].normal_output == pairs[i].contrast_output)
                .collect();
            assert!(!same.is_empty());
            assert!(same.iter().all(|i| t.same_answer().contains(i)));
        }
    }
}
