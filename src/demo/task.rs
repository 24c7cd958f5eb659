//! The demo model's task and vocabulary: few-shot off-by-k addition of single digits, as in the
//! paper's nmax-9 files, and the character tokenizer that reads it.
//!
//! A training sequence is `<bos>` and some number of lines `a+b=c` joined by `\n`, all with the same k
//! (c = a+b+k). Every prefix that ends at a line's `=` is a prompt of the paper's form with as
//! many shots as lines before it, so one sequence trains every shot count up to `lines - 1` at
//! once: the loss reads the answer digit after each `=` from the second line on (the first
//! line's k cannot be known). Each step draws its sequence length from a few choices, with
//! fewer sequences for longer ones (about the same number of tokens per step).
//!
//! Operands are drawn like the paper's generator (`data_prep/addition.py`, nmax 9): a, b
//! uniform in 0..=9, rejected until a+b and a+b+k both lie in 0..=9.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashSet;

/// Token ids of the demo vocabulary: `<pad> <eos> <bos> <unk>`, the digits, `+ = \n`.
pub const PAD: u32 = 0;
pub const EOS: u32 = 1;
pub const BOS: u32 = 2;
pub const UNK: u32 = 3;
pub const DIGIT0: u32 = 4;
pub const PLUS: u32 = 14;
pub const EQUALS: u32 = 15;
pub const NEWLINE: u32 = 16;
pub const VOCAB_SIZE: usize = 17;

/// Every token's text, by id.
pub const VOCAB: [&str; VOCAB_SIZE] = [
    "<pad>", "<eos>", "<bos>", "<unk>", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "+", "=",
    "\n",
];

/// Tokens of one line `a+b=c` (5 tokens; a line is 6 with its `\n`).
pub const LINE_TOKENS: usize = 6;

/// The token id of a character of the task (`None` for anything else).
pub fn char_id(c: char) -> Option<u32> {
    match c {
        '0'..='9' => Some(DIGIT0 + (c as u32 - '0' as u32)),
        '+' => Some(PLUS),
        '=' => Some(EQUALS),
        '\n' => Some(NEWLINE),
        _ => None,
    }
}

/// Token ids of `text` with `<bos>` in front, as the shipped tokenizer.json encodes it
/// (characters outside the vocabulary become `<unk>`).
pub fn encode(text: &str) -> Vec<u32> {
    std::iter::once(BOS)
        .chain(text.chars().map(|c| char_id(c).unwrap_or(UNK)))
        .collect()
}

/// The tokenizer.json of the demo model: a WordLevel vocabulary of single characters, a Split
/// pre-tokenizer that isolates every character, and a post-processor that adds `<bos>`.
pub fn tokenizer_json() -> serde_json::Value {
    let specials: Vec<serde_json::Value> = VOCAB[..4]
        .iter()
        .enumerate()
        .map(|(id, t)| {
            serde_json::json!({
                "id": id, "content": t, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": true
            })
        })
        .collect();
    let mut vocab = serde_json::Map::new();
    for (id, t) in VOCAB.iter().enumerate() {
        vocab.insert(t.to_string(), serde_json::Value::from(id));
    }
    let bos = |seq: &str| {
        serde_json::json!([
            {"SpecialToken": {"id": "<bos>", "type_id": 0}},
            {"Sequence": {"id": seq, "type_id": 0}}
        ])
    };
    let pair = {
        let mut p = bos("A").as_array().unwrap().clone();
        p.extend(bos("B").as_array().unwrap().iter().cloned());
        serde_json::Value::Array(p)
    };
    serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": specials,
        "normalizer": null,
        "pre_tokenizer": {
            "type": "Split", "pattern": {"String": ""}, "behavior": "Isolated", "invert": false
        },
        "post_processor": {
            "type": "TemplateProcessing",
            "single": bos("A"),
            "pair": pair,
            "special_tokens": {"<bos>": {"id": "<bos>", "ids": [BOS], "tokens": ["<bos>"]}}
        },
        "decoder": {"type": "Fuse"},
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}
    })
}

/// The sums a+b allowed for offset k: a+b and a+b+k both in 0..=9 (the paper's cmin/cmax).
pub fn sum_range(k: i64) -> (i64, i64) {
    (0.max(-k), 9.min(9 - k))
}

/// One operand pair for offset k, drawn like the paper's generator.
pub fn sample_pair(rng: &mut impl Rng, k: i64) -> (i64, i64) {
    let (lo, hi) = sum_range(k);
    loop {
        let a = rng.random_range(0..=9i64);
        let b = rng.random_range(0..=9i64);
        if (lo..=hi).contains(&(a + b)) {
            return (a, b);
        }
    }
}

/// `a+b=c` lines with c = a+b+k, joined by `\n` (no trailing newline).
pub fn lines_text(pairs: &[(i64, i64)], k: i64) -> String {
    pairs
        .iter()
        .map(|&(a, b)| format!("{a}+{b}={}", a + b + k))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The position of line `i`'s `=` in a sequence that starts with `<bos>`.
pub fn equals_position(i: usize) -> usize {
    LINE_TOKENS * i + 4
}

/// A batch of training sequences, all of the same length.
pub struct Batch {
    /// [rows, len] token ids: `<bos>` and `lines` lines, without the last answer digit.
    pub tokens: Vec<Vec<u32>>,
    /// Flat indices `row * len + position` of the `=` whose next digit is a loss target.
    pub loss_index: Vec<u32>,
    /// The target digit token of each loss position.
    pub targets: Vec<u32>,
    /// The k of each row.
    pub ks: Vec<i64>,
}

/// Draws training sequences. Seeded: the same seed gives the same sequences.
pub struct Sampler {
    rng: ChaCha8Rng,
    pub offsets: Vec<i64>,
    /// Prompts that must never appear in training (the held-out evaluation prompts, each with
    /// its answer appended): a sequence with one of them as a prefix is drawn again.
    held_out: HashSet<String>,
    pub rejected: usize,
}

impl Sampler {
    pub fn new(seed: u64, offsets: Vec<i64>, held_out: HashSet<String>) -> Self {
        assert!(!offsets.is_empty());
        Sampler {
            rng: ChaCha8Rng::seed_from_u64(seed),
            offsets,
            held_out,
            rejected: 0,
        }
    }

    /// One of `choices`, uniformly (from the sampler's own random stream).
    pub fn choose(&mut self, choices: &[usize]) -> usize {
        choices[self.rng.random_range(0..choices.len())]
    }

    /// One sequence of `lines` lines: operand pairs and k, never with a held-out prompt as a
    /// prefix.
    pub fn sequence(&mut self, lines: usize) -> (Vec<(i64, i64)>, i64) {
        loop {
            let k = self.offsets[self.rng.random_range(0..self.offsets.len())];
            let pairs: Vec<(i64, i64)> =
                (0..lines).map(|_| sample_pair(&mut self.rng, k)).collect();
            if self.held_out.is_empty() || !self.hits_held_out(&pairs, k) {
                return (pairs, k);
            }
            self.rejected += 1;
        }
    }

    fn hits_held_out(&self, pairs: &[(i64, i64)], k: i64) -> bool {
        let mut text = String::new();
        for (n, &(a, b)) in pairs.iter().enumerate() {
            if n > 0 {
                text.push('\n');
            }
            text.push_str(&format!("{a}+{b}={}", a + b + k));
            if n >= 1 && self.held_out.contains(&text) {
                return true;
            }
        }
        false
    }

    /// `rows` sequences of `lines` lines (at least 2).
    pub fn batch(&mut self, rows: usize, lines: usize) -> Batch {
        assert!(lines >= 2);
        let len = LINE_TOKENS * lines - 1;
        let mut b = Batch {
            tokens: Vec::with_capacity(rows),
            loss_index: Vec::new(),
            targets: Vec::new(),
            ks: Vec::with_capacity(rows),
        };
        for r in 0..rows {
            let (pairs, k) = self.sequence(lines);
            let ids = encode(&lines_text(&pairs, k));
            debug_assert_eq!(ids.len(), len + 1);
            for i in 1..lines {
                let p = equals_position(i);
                b.loss_index.push((r * len + p) as u32);
                b.targets.push(ids[p + 1]);
            }
            b.tokens.push(ids[..len].to_vec());
            b.ks.push(k);
        }
        b
    }
}

/// A held-out prompt: the text up to the final `=`, its answer, and its k.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalPrompt {
    pub input: String,
    pub answer: String,
    pub k: i64,
    pub shots: usize,
}

impl EvalPrompt {
    /// The prompt with its answer: what must not occur in training.
    pub fn full_text(&self) -> String {
        format!("{}{}", self.input, self.answer)
    }
}

/// Generated held-out prompts: for each k and shot count, `n` prompts of the paper's "normal"
/// setting (demonstrations drawn independently of the test pair), from their own seed.
pub fn generated_eval(seed: u64, offsets: &[i64], shots: &[usize], n: usize) -> Vec<EvalPrompt> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    for &k in offsets {
        for &s in shots {
            for _ in 0..n {
                let pairs: Vec<(i64, i64)> = (0..=s).map(|_| sample_pair(&mut rng, k)).collect();
                let (ta, tb) = pairs[s];
                let mut input = lines_text(&pairs[..s], k);
                if s > 0 {
                    input.push('\n');
                }
                input.push_str(&format!("{ta}+{tb}="));
                out.push(EvalPrompt {
                    input,
                    answer: (ta + tb + k).to_string(),
                    k,
                    shots: s,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_stay_in_range() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for k in -2..=2 {
            for _ in 0..200 {
                let (a, b) = sample_pair(&mut rng, k);
                assert!((0..=9).contains(&(a + b)) && (0..=9).contains(&(a + b + k)));
            }
        }
    }

    #[test]
    fn batches_are_seeded_and_targets_are_answers() {
        let mut s1 = Sampler::new(7, vec![-1, 0, 1], HashSet::new());
        let mut s2 = Sampler::new(7, vec![-1, 0, 1], HashSet::new());
        let (b1, b2) = (s1.batch(3, 4), s2.batch(3, 4));
        assert_eq!(b1.tokens, b2.tokens);
        assert_eq!(b1.tokens[0].len(), 23);
        assert_eq!(b1.loss_index.len(), 9);
        for (j, &ix) in b1.loss_index.iter().enumerate() {
            let (r, p) = (ix as usize / 23, ix as usize % 23);
            assert_eq!(b1.tokens[r][p], EQUALS);
            let a = b1.tokens[r][p - 3] - DIGIT0;
            let b = b1.tokens[r][p - 1] - DIGIT0;
            let c = b1.targets[j] as i64 - DIGIT0 as i64;
            assert_eq!(c, a as i64 + b as i64 + b1.ks[r]);
        }
    }

    #[test]
    fn held_out_prefixes_are_never_drawn() {
        let mut free = Sampler::new(3, vec![0], HashSet::new());
        let (pairs, k) = free.sequence(3);
        let banned: HashSet<String> = [lines_text(&pairs[..2], k)].into_iter().collect();
        let mut s = Sampler::new(3, vec![0], banned.clone());
        let (p2, _) = s.sequence(3);
        assert_eq!(s.rejected, 1);
        assert!(!banned.contains(&lines_text(&p2[..2], 0)));
    }
}
