//! Generators for the paper's datasets, written in the paper's JSONL format.
//!
//! They draw the same random numbers in the same order as the paper's `data_prep/addition.py`,
//! `data_prep/addition_base.py` and `data_prep/cipher.py` (with [`PyRandom`], a bit-exact port
//! of CPython's `random`, seeded once per file), so for the paper's parameters and seed 42 the
//! output is byte-identical to the paper's files (`data/paper/`).
//!
//! Sampling (see `ALGORITHMS.md` §1):
//! - addition: `nmin = {9: 0, 99: 10, 999: 100}[nmax]`, sums c and c+offset must lie in
//!   [nmin, nmax]: `cmin = max(nmin, nmin - offset)`, `cmax = min(nmax, nmax - offset)`. A pair
//!   is `a = randint(0, nmax); b = randint(0, nmax)`, redrawn until `cmin ≤ a+b ≤ cmax`.
//!   - normal: the test pair, then each demonstration redrawn while it equals the test pair;
//!   - setting1: demonstrations redrawn while their sum equals the test sum;
//!   - setting2: the demonstrations first, then the test pair redrawn until its sum is among
//!     the demonstrations' sums and it is not itself a demonstration.
//! - base-k addition: `cmin = max(base^(d-1), 10^(d-1))`, `cmax = base^d - 1`; a pair is
//!   `randint(cmin, cmax)` twice, redrawn until the sum is ≤ cmax and a, b and a+b have d base-k
//!   digits. The test pair is drawn first, redrawn until its last-digit sum `c0` fits the setting
//!   (setting1: c0 < base; setting2: base ≤ c0 < 10; setting3: c0 ≥ 10), then the
//!   demonstrations, each redrawn while it equals the test pair.
//! - cipher: strings of `maxlen` letters drawn with `random.choices` from a–z, targets shifted
//!   by `offset`; the demonstrations first, then the test pair redrawn while it is a
//!   demonstration.
//!
//! Rejection sampling can never end for impossible parameters (the paper's code then loops
//! forever); here every example gives up after [`MAX_DRAWS`] candidate draws with an error.

use super::prompts::to_base;
use super::pyrandom::PyRandom;
use super::DataError;

/// Candidate draws allowed per example before the generator gives up.
pub const MAX_DRAWS: u64 = 5_000_000;

/// At most this many examples per file (the paper: 100). Every command runs each example
/// through the model, so a million is already more than any evaluation reads.
pub const MAX_EXAMPLES: usize = 1_000_000;
/// At most this many demonstrations per example (the paper: 32). A demonstration is at least
/// four tokens, so a prompt of more is longer than the context of the models headhunt runs
/// (400,000 tokens).
pub const MAX_DEMOS: usize = 100_000;
/// At most this many letters per cipher string (the paper: 1 and 4); each letter is about a
/// token, and a demonstration holds two strings.
pub const MAX_MAXLEN: usize = 10_000;
/// At most this many bytes in the generated file: it is built in memory before its atomic
/// write, so this bounds the memory too (the paper's largest file is 60 kB).
pub const MAX_BYTES: u64 = 1 << 30;

/// The paper's settings (which constraint ties the test pair to the demonstrations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setting {
    Normal,
    Setting1,
    Setting2,
    /// Base-k addition only.
    Setting3,
}

impl Setting {
    pub const ALL: [Setting; 4] = [
        Setting::Normal,
        Setting::Setting1,
        Setting::Setting2,
        Setting::Setting3,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Setting::Normal => "normal",
            Setting::Setting1 => "setting1",
            Setting::Setting2 => "setting2",
            Setting::Setting3 => "setting3",
        }
    }
}

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenTask {
    /// Off-by-k addition: `nmax` ∈ {9, 99, 999}; settings normal, setting1, setting2.
    Addition {
        setting: Setting,
        nmax: i64,
        offset: i64,
    },
    /// Base-k addition with `ndigits`-digit numbers, `base` ∈ 2..=10; settings normal and
    /// setting1..3.
    Base {
        setting: Setting,
        ndigits: u32,
        base: u32,
    },
    /// Caesar cipher on strings of `maxlen` lowercase letters, shifted by `offset`.
    Cipher { maxlen: usize, offset: i64 },
}

/// A generator run: the task, how many examples of how many demonstrations, and the seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenSpec {
    pub task: GenTask,
    /// Lines in the file (the paper: 100).
    pub examples: usize,
    /// Demonstrations per example (the paper: 32).
    pub demos: usize,
    /// `random.seed(seed)` before the first example (the paper: 42).
    pub seed: i64,
}

impl GenSpec {
    /// The paper's sizes (100 examples of 32 demonstrations) and seed (42).
    pub fn paper(task: GenTask) -> Self {
        GenSpec {
            task,
            examples: 100,
            demos: 32,
            seed: 42,
        }
    }

    /// Where the paper keeps this file, relative to its `data/` folder, e.g.
    /// `addition/setting1/addition_nmax9_offset1.jsonl`.
    pub fn paper_path(&self) -> String {
        match self.task {
            GenTask::Addition {
                setting,
                nmax,
                offset,
            } => format!(
                "addition/{}/addition_nmax{nmax}_offset{offset}.jsonl",
                setting.name()
            ),
            GenTask::Base {
                setting,
                ndigits,
                base,
            } => format!(
                "addition_base/{}/addition_ndigits{ndigits}_base{base}.jsonl",
                setting.name()
            ),
            GenTask::Cipher { maxlen, offset } => {
                format!("cipher/normal/cipher_maxlen{maxlen}_offset{offset}.jsonl")
            }
        }
    }
}

/// Every file of the paper's `data/` folder (225: 141 addition, 32 base-k, 52 cipher), with the
/// paper's sizes and seed.
pub fn paper_files() -> Vec<GenSpec> {
    let mut out = Vec::new();
    for setting in [Setting::Normal, Setting::Setting1, Setting::Setting2] {
        for nmax in [9, 99, 999] {
            for offset in -10..=10i64 {
                if nmax == 9 && offset.abs() > 2 {
                    continue;
                }
                out.push(GenSpec::paper(GenTask::Addition {
                    setting,
                    nmax,
                    offset,
                }));
            }
        }
    }
    for setting in [
        Setting::Normal,
        Setting::Setting1,
        Setting::Setting2,
        Setting::Setting3,
    ] {
        for ndigits in [2, 3] {
            for base in 6..=9 {
                out.push(GenSpec::paper(GenTask::Base {
                    setting,
                    ndigits,
                    base,
                }));
            }
        }
    }
    for maxlen in [1, 4] {
        for offset in -12..=13 {
            out.push(GenSpec::paper(GenTask::Cipher { maxlen, offset }));
        }
    }
    out
}

/// The random stream and a per-example budget of candidate draws.
struct Sampler {
    rng: PyRandom,
    draws: u64,
    what: String,
}

impl Sampler {
    fn spend(&mut self) -> Result<(), DataError> {
        self.draws += 1;
        if self.draws > MAX_DRAWS {
            return Err(DataError::Invalid(format!(
                "{}: no valid example after {MAX_DRAWS} random draws; these parameters leave \
                 (almost) nothing to sample",
                self.what
            )));
        }
        Ok(())
    }
}

/// `json.dumps` of a string (ASCII output, as Python's default `ensure_ascii=True`).
fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A value that `json.dumps` writes.
trait PyJson {
    fn write(&self, out: &mut String);
}

impl PyJson for i64 {
    fn write(&self, out: &mut String) {
        out.push_str(&self.to_string());
    }
}

impl PyJson for String {
    fn write(&self, out: &mut String) {
        json_str(out, self);
    }
}

fn write_pair<T: PyJson>(out: &mut String, p: &(T, T)) {
    out.push('[');
    p.0.write(out);
    out.push_str(", ");
    p.1.write(out);
    out.push(']');
}

/// One line as `json.dumps({"demonstration": ..., "inference": ...}) + "\n"`.
fn write_example<T: PyJson>(out: &mut String, demos: &[(T, T)], test: &(T, T)) {
    out.push_str("{\"demonstration\": [");
    for (i, d) in demos.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_pair(out, d);
    }
    out.push_str("], \"inference\": ");
    write_pair(out, test);
    out.push_str("}\n");
}

/// The error of parameters that cannot work together (worded with flags by the CLI).
fn gen_params(params: &[(&'static str, String)], why: &str) -> DataError {
    DataError::GenParams {
        params: params.to_vec(),
        why: why.to_string(),
    }
}

impl GenSpec {
    /// Checks the sizes before anything is drawn or allocated: at least one example, each
    /// size within its bound ([`MAX_EXAMPLES`], [`MAX_DEMOS`], [`MAX_MAXLEN`]) and the whole
    /// file within [`MAX_BYTES`] (an upper estimate of a line's length from the sizes).
    /// [`generate`] calls it first, so the CLI and any other caller get its error.
    pub fn validate(&self) -> Result<(), DataError> {
        let bound = |name: &'static str, v: usize, max: usize, why: &str| {
            if v > max {
                return Err(gen_params(
                    &[(name, v.to_string())],
                    &format!("at most {max} ({why})"),
                ));
            }
            Ok(())
        };
        if self.examples == 0 {
            return Err(gen_params(
                &[("examples", "0".into())],
                "generate at least one example",
            ));
        }
        let ex_why = "every command runs each example through the model; the paper uses 100";
        bound("examples", self.examples, MAX_EXAMPLES, ex_why)?;
        let demo_why = "a longer prompt exceeds any model's context; the paper uses 32";
        bound("demos", self.demos, MAX_DEMOS, demo_why)?;
        let pair = match self.task {
            // `[a, b], `: two numbers of at most 4 characters (-999 is not drawn, 999 is).
            GenTask::Addition { .. } => 16,
            // Operands below 10^12: 13 characters each.
            GenTask::Base { .. } => 34,
            GenTask::Cipher { maxlen, .. } => {
                bound("maxlen", maxlen, MAX_MAXLEN, "the paper uses 1 and 4")?;
                2 * maxlen as u64 + 8
            }
        };
        let line = (self.demos as u64 + 1) * pair + 40;
        let total = line.saturating_mul(self.examples as u64);
        if total > MAX_BYTES {
            return Err(gen_params(
                &[
                    ("examples", self.examples.to_string()),
                    ("demos", self.demos.to_string()),
                ],
                &format!(
                    "the file would be up to {} MB, more than the {} MB it may take (it is built \
                     in memory before it is written); use fewer examples or demonstrations",
                    total.div_ceil(1 << 20),
                    MAX_BYTES >> 20
                ),
            ));
        }
        Ok(())
    }
}

/// Generates the JSONL text (one example per line, each ending in `\n`), after
/// [`GenSpec::validate`].
pub fn generate(spec: &GenSpec) -> Result<String, DataError> {
    spec.validate()?;
    let mut s = Sampler {
        rng: PyRandom::new(spec.seed as i128),
        draws: 0,
        what: spec.paper_path(),
    };
    let mut out = String::new();
    match spec.task {
        GenTask::Addition {
            setting,
            nmax,
            offset,
        } => addition(&mut s, &mut out, spec, setting, nmax, offset)?,
        GenTask::Base {
            setting,
            ndigits,
            base,
        } => base_k(&mut s, &mut out, spec, setting, ndigits, base)?,
        GenTask::Cipher { maxlen, offset } => cipher(&mut s, &mut out, spec, maxlen, offset)?,
    }
    Ok(out)
}

fn addition(
    s: &mut Sampler,
    out: &mut String,
    spec: &GenSpec,
    setting: Setting,
    nmax: i64,
    offset: i64,
) -> Result<(), DataError> {
    let nmin: i64 = match nmax {
        9 => 0,
        99 => 10,
        999 => 100,
        _ => {
            return Err(gen_params(
                &[("nmax", nmax.to_string())],
                "the paper's addition uses 9, 99 or 999",
            ))
        }
    };
    if setting == Setting::Setting3 {
        return Err(gen_params(
            &[("setting", "setting3".into())],
            "only base-k addition has it (addition: normal, setting1, setting2)",
        ));
    }
    let cmin = nmin.max(nmin.saturating_sub(offset));
    let cmax = nmax.min(nmax.saturating_sub(offset));
    if cmin > cmax {
        return Err(gen_params(
            &[("offset", offset.to_string()), ("nmax", nmax.to_string())],
            &format!("no sum c has c and c{offset:+} both in [{nmin}, {nmax}]"),
        ));
    }
    let draw = |s: &mut Sampler| -> Result<(i64, i64), DataError> {
        loop {
            s.spend()?;
            let a = s.rng.randint(0, nmax);
            let b = s.rng.randint(0, nmax);
            if (cmin..=cmax).contains(&(a + b)) {
                return Ok((a, b));
            }
        }
    };
    for _ in 0..spec.examples {
        s.draws = 0;
        let mut demos: Vec<(i64, i64)> = Vec::with_capacity(spec.demos);
        let test;
        match setting {
            Setting::Normal | Setting::Setting1 => {
                let t = draw(s)?;
                while demos.len() < spec.demos {
                    let mut d = draw(s)?;
                    let clash = |d: (i64, i64)| match setting {
                        Setting::Normal => d == t,
                        _ => d.0 + d.1 == t.0 + t.1,
                    };
                    while clash(d) {
                        d = draw(s)?;
                    }
                    demos.push(d);
                }
                test = t;
            }
            _ => {
                while demos.len() < spec.demos {
                    demos.push(draw(s)?);
                }
                let mut t = draw(s)?;
                while !demos.iter().any(|d| d.0 + d.1 == t.0 + t.1) || demos.contains(&t) {
                    t = draw(s)?;
                }
                test = t;
            }
        }
        write_example(out, &demos, &test);
    }
    Ok(())
}

fn base_k(
    s: &mut Sampler,
    out: &mut String,
    spec: &GenSpec,
    setting: Setting,
    ndigits: u32,
    base: u32,
) -> Result<(), DataError> {
    if !(2..=10).contains(&base) {
        return Err(gen_params(
            &[("base", base.to_string())],
            "the base must be between 2 and 10 (the paper: 6 to 9)",
        ));
    }
    if !(1..=12).contains(&ndigits) {
        return Err(gen_params(
            &[("ndigits", ndigits.to_string())],
            "use 1 to 12 digits (the paper: 2 and 3)",
        ));
    }
    let b = base as i64;
    let cmin = b.pow(ndigits - 1).max(10i64.pow(ndigits - 1));
    let cmax = b.pow(ndigits) - 1;
    if 2 * cmin > cmax {
        return Err(gen_params(
            &[("ndigits", ndigits.to_string()), ("base", base.to_string())],
            &format!(
                "no two numbers of {ndigits} base-{base} digits (and at least {cmin}) have a \
                 sum of {ndigits} digits"
            ),
        ));
    }
    let nd = ndigits as usize;
    let digits = |n: i64| to_base(n as u64, base).len();
    let draw = |s: &mut Sampler| -> Result<(i64, i64), DataError> {
        loop {
            s.spend()?;
            let a = s.rng.randint(cmin, cmax);
            let c = s.rng.randint(cmin, cmax);
            let sum = a + c;
            if (cmin..=cmax).contains(&sum)
                && digits(a) == nd
                && digits(c) == nd
                && digits(sum) == nd
            {
                return Ok((a, c));
            }
        }
    };
    // Sum of the operands' last base-k digits.
    let c0 = |(a, c): (i64, i64)| a % b + c % b;
    let fits = |t: (i64, i64)| match setting {
        Setting::Normal => true,
        Setting::Setting1 => c0(t) < b,
        Setting::Setting2 => c0(t) < 10 && c0(t) >= b,
        Setting::Setting3 => c0(t) >= 10,
    };
    for _ in 0..spec.examples {
        s.draws = 0;
        let mut t = draw(s)?;
        while !fits(t) {
            t = draw(s)?;
        }
        let mut demos: Vec<(i64, i64)> = Vec::with_capacity(spec.demos);
        while demos.len() < spec.demos {
            let mut d = draw(s)?;
            while d == t {
                d = draw(s)?;
            }
            demos.push(d);
        }
        write_example(out, &demos, &t);
    }
    Ok(())
}

/// Shifts lowercase and uppercase letters by `offset` (mod 26).
pub fn caesar_shift(text: &str, offset: i64) -> String {
    text.chars()
        .map(|c| {
            let base = if c.is_ascii_lowercase() {
                b'a'
            } else if c.is_ascii_uppercase() {
                b'A'
            } else {
                return c;
            };
            // Reduced first: an offset near i64::MAX must not overflow.
            let k = (c as u8 - base) as i64 + offset.rem_euclid(26);
            (base + k.rem_euclid(26) as u8) as char
        })
        .collect()
}

fn cipher(
    s: &mut Sampler,
    out: &mut String,
    spec: &GenSpec,
    maxlen: usize,
    offset: i64,
) -> Result<(), DataError> {
    if maxlen == 0 {
        return Err(gen_params(
            &[("maxlen", "0".into())],
            "strings need at least one letter",
        ));
    }
    let letters: Vec<char> = ('a'..='z').collect();
    let draw = |s: &mut Sampler| -> Result<(String, String), DataError> {
        s.spend()?;
        let src: String = s.rng.choices(&letters, maxlen).into_iter().collect();
        let tar = caesar_shift(&src, offset);
        Ok((src, tar))
    };
    for _ in 0..spec.examples {
        s.draws = 0;
        let mut demos = Vec::with_capacity(spec.demos);
        for _ in 0..spec.demos {
            demos.push(draw(s)?);
        }
        let mut t = draw(s)?;
        while demos.contains(&t) {
            t = draw(s)?;
        }
        write_example(out, &demos, &t);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_json_format() {
        let mut out = String::new();
        write_example(&mut out, &[(1i64, 2i64), (3, -4)], &(5, 6));
        assert_eq!(
            out,
            "{\"demonstration\": [[1, 2], [3, -4]], \"inference\": [5, 6]}\n"
        );
        let mut out = String::new();
        write_example::<String>(&mut out, &[], &("a\"é".into(), "\n".into()));
        assert_eq!(
            out,
            "{\"demonstration\": [], \"inference\": [\"a\\\"\\u00e9\", \"\\n\"]}\n"
        );
    }

    #[test]
    fn shifts() {
        assert_eq!(caesar_shift("qahf", 2), "scjh");
        assert_eq!(caesar_shift("az", -1), "zy");
        assert_eq!(caesar_shift("Yz", 13), "Lm");
    }

    #[test]
    fn huge_offsets_shift_modulo_26() {
        assert_eq!(
            caesar_shift("a", i64::MAX),
            caesar_shift("a", i64::MAX % 26)
        );
        assert_eq!(
            caesar_shift("z", i64::MIN),
            caesar_shift("z", i64::MIN.rem_euclid(26))
        );
    }

    #[test]
    fn sizes_are_bounded_before_drawing() {
        let add = GenTask::Addition {
            setting: Setting::Normal,
            nmax: 9,
            offset: 1,
        };
        let spec = |examples, demos| GenSpec {
            examples,
            demos,
            ..GenSpec::paper(add)
        };
        let e = |s: GenSpec| generate(&s).unwrap_err().to_string();
        assert!(e(spec(10_000_000, 32)).starts_with("examples 10000000: at most 1000000 ("));
        assert!(
            e(spec(1, usize::MAX)).starts_with(&format!("demos {}: at most 100000", usize::MAX))
        );
        let big = e(spec(1_000_000, 100));
        assert!(
            big.starts_with("examples 1000000 demos 100: the file would be up to"),
            "{big}"
        );
        let cipher = GenSpec::paper(GenTask::Cipher {
            maxlen: 1 << 40,
            offset: 1,
        });
        assert!(e(cipher).starts_with("maxlen 1099511627776: at most 10000"));
        // Every paper file is inside the bounds.
        assert!(paper_files().iter().all(|s| s.validate().is_ok()));
    }

    #[test]
    fn the_paper_has_225_files() {
        assert_eq!(paper_files().len(), 225);
    }

    #[test]
    fn impossible_parameters_fail_instead_of_looping() {
        let g = |task| generate(&GenSpec::paper(task)).unwrap_err().to_string();
        let e = g(GenTask::Addition {
            setting: Setting::Normal,
            nmax: 9,
            offset: 10,
        });
        assert_eq!(e.split(':').next(), Some("offset 10 nmax 9"), "{e}");
        // Only 0+0 has sum 0..0: the test pair can never differ from the demonstrations.
        let e = g(GenTask::Addition {
            setting: Setting::Normal,
            nmax: 9,
            offset: 9,
        });
        assert!(e.contains("no valid example after"), "{e}");
        let e = g(GenTask::Base {
            setting: Setting::Setting2,
            ndigits: 2,
            base: 10,
        });
        assert!(e.contains("no valid example after"), "{e}");
        let e = g(GenTask::Addition {
            setting: Setting::Normal,
            nmax: 50,
            offset: 1,
        });
        assert!(e.starts_with("nmax 50: "), "{e}");
    }
}
