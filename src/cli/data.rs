//! `headhunt data gen` and `headhunt data show`, and [`DataArgs`], the dataset flags that every
//! command reading a dataset shares (flatten it into a command's arguments and call
//! [`DataArgs::spec`], or convert it into the core [`DataFile`]).

use std::path::{Path, PathBuf};

use super::output::{Output, Planned, Report};
use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};

use crate::data::generate::{generate, GenSpec, GenTask, Setting};
use crate::data::{
    load_pairs, tokenize_pairs, AnswerTokenRule, DataError, DataFile, DataOptions, DataSpec,
    PromptPair, TaskChoice, TaskKind, Tokenized,
};
use crate::model::tokenizer::printable;
use crate::model::Tokenizer;

/// `headhunt data ...`
#[derive(Args, Debug)]
pub struct DataCommand {
    #[command(subcommand)]
    pub command: DataSubcommand,
}

#[derive(Subcommand, Debug)]
pub enum DataSubcommand {
    /// Generate a dataset in the paper's JSONL format (for the paper's parameters and seed 42,
    /// byte-identical to the paper's files in data/paper/).
    Gen(GenArgs),
    /// Show a dataset's first prompt pairs, and with a tokenizer their tokens and answer tokens.
    Show(ShowArgs),
}

/// The dataset flags shared by every command that reads a dataset: the file and how to read it.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// The dataset: the paper's JSONL (e.g. data/paper/addition/setting1/addition_nmax9_offset1.jsonl)
    /// or prompt pairs (normal_input, normal_output, contrast_input, contrast_output per line).
    #[arg(long)]
    pub data: PathBuf,
    #[command(flatten)]
    pub options: DataOptionArgs,
}

/// How to read a dataset file (everything but the file, so that commands whose file is
/// optional, like the explorer, share the same flags): the flags of [`DataOptions`].
#[derive(Args, Debug, Clone)]
pub struct DataOptionArgs {
    /// How to read the file.
    #[arg(long, value_enum, default_value_t = TaskChoice::Auto)]
    pub task: TaskChoice,
    /// Demonstrations per prompt (the first N of each example; not used by pairs).
    #[arg(long, default_value_t = 4)]
    pub shots: usize,
    /// addition: the k of off-by-k (default 1). cipher: checked against the file's shift (the
    /// contrast comes from the file). base, pairs: not used.
    #[arg(long, allow_hyphen_values = true)]
    pub offset: Option<i64>,
    /// base-k addition: the base (default: from a file name ending in `_base<B>.jsonl`).
    #[arg(long)]
    pub base: Option<u32>,
    /// Use the first N examples (default: all; in the explorer 12, or all when fewer).
    #[arg(long)]
    pub examples: Option<usize>,
    /// Which answer token the metric reads: last (the last token of the tokenized answer, BOS
    /// included: the paper) or first (the answer's first token as a continuation of the prompt).
    #[arg(long, value_enum, default_value_t = AnswerTokenRule::Last)]
    pub answer_token: AnswerTokenRule,
    /// Skip examples whose normal and contrast prompts tokenize to different lengths (default:
    /// such examples are an error).
    #[arg(long)]
    pub skip_mismatched: bool,
}

impl From<DataOptionArgs> for DataOptions {
    fn from(a: DataOptionArgs) -> Self {
        DataOptions {
            task: a.task,
            shots: a.shots,
            offset: a.offset,
            base: a.base,
            examples: a.examples,
            answer_token: a.answer_token,
            skip_mismatched: a.skip_mismatched,
        }
    }
}

impl From<DataArgs> for DataFile {
    fn from(a: DataArgs) -> Self {
        DataFile {
            data: a.data,
            options: a.options.into(),
        }
    }
}

impl DataArgs {
    /// The concrete spec (see [`DataOptions::spec`]).
    pub fn spec(&self) -> Result<DataSpec, DataError> {
        DataFile::from(self.clone()).spec()
    }
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// A model (directory with tokenizer.json, a tokenizer.json file, a .gguf file or a hub
    /// id) whose tokenizer shows token boundaries, lengths and answer token ids.
    #[arg(long, short = 'm')]
    pub model: Option<String>,
    /// tokenizer.json to use (instead of the model's own; --model may then be left out).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// How many pairs to print (default: 3, or all of --examples N when given).
    #[arg(long)]
    pub print: Option<usize>,
}

/// The `data gen --task` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GenKind {
    Addition,
    Base,
    Cipher,
}

#[derive(Args, Debug)]
pub struct GenArgs {
    /// Which of the paper's generators.
    #[arg(long, value_enum)]
    pub task: GenKind,
    /// normal, setting1, setting2 (addition and base), setting3 (base); cipher: normal only.
    #[arg(long, value_enum, default_value_t = Setting::Normal)]
    pub setting: Setting,
    /// addition: the largest sum, 9, 99 or 999 (default 9).
    #[arg(long)]
    pub nmax: Option<i64>,
    /// addition and cipher: the k of off-by-k / the Caesar shift (default 1).
    #[arg(long, allow_hyphen_values = true)]
    pub offset: Option<i64>,
    /// base: digits of the operands and the sum (default 2).
    #[arg(long)]
    pub ndigits: Option<u32>,
    /// base: the base, 2 to 10 (the paper: 6 to 9).
    #[arg(long)]
    pub base: Option<u32>,
    /// cipher: letters per string (default 1; the paper: 1 and 4).
    #[arg(long)]
    pub maxlen: Option<usize>,
    /// Examples (lines) to write.
    #[arg(long, default_value_t = 100)]
    pub examples: usize,
    /// Demonstrations per example.
    #[arg(long, default_value_t = 32)]
    pub demos: usize,
    /// Seed of Python's `random.seed` (the paper: 42).
    #[arg(long, default_value_t = 42, allow_hyphen_values = true)]
    pub seed: i64,
    /// Output file (default: standard output). Written atomically.
    #[arg(long, short = 'o')]
    pub out: Option<PathBuf>,
    /// Overwrite --out if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Runs `headhunt data ...`.
pub fn run(cmd: DataCommand) -> Result<Report> {
    match cmd.command {
        DataSubcommand::Gen(a) => gen(a),
        DataSubcommand::Show(a) => show(a),
    }
}

impl GenArgs {
    /// The generator run these flags ask for; flags of another task are an error.
    pub fn gen_spec(&self) -> Result<GenSpec, DataError> {
        let task_name = match self.task {
            GenKind::Addition => "addition",
            GenKind::Base => "base",
            GenKind::Cipher => "cipher",
        };
        let not_for = |flag: &str, given: bool, tasks: &str| {
            if given {
                Err(DataError::Invalid(format!(
                    "{flag} applies to --task {tasks}, not {task_name}"
                )))
            } else {
                Ok(())
            }
        };
        let task = match self.task {
            GenKind::Addition => {
                not_for("--ndigits", self.ndigits.is_some(), "base")?;
                not_for("--base", self.base.is_some(), "base")?;
                not_for("--maxlen", self.maxlen.is_some(), "cipher")?;
                GenTask::Addition {
                    setting: self.setting,
                    nmax: self.nmax.unwrap_or(9),
                    offset: self.offset.unwrap_or(1),
                }
            }
            GenKind::Base => {
                not_for("--nmax", self.nmax.is_some(), "addition")?;
                not_for("--offset", self.offset.is_some(), "addition and cipher")?;
                not_for("--maxlen", self.maxlen.is_some(), "cipher")?;
                let base = self.base.ok_or_else(|| {
                    DataError::Invalid("--task base needs --base B (the paper: 6 to 9)".into())
                })?;
                GenTask::Base {
                    setting: self.setting,
                    ndigits: self.ndigits.unwrap_or(2),
                    base,
                }
            }
            GenKind::Cipher => {
                not_for("--nmax", self.nmax.is_some(), "addition")?;
                not_for("--ndigits", self.ndigits.is_some(), "base")?;
                not_for("--base", self.base.is_some(), "base")?;
                if self.setting != Setting::Normal {
                    return Err(DataError::Invalid(format!(
                        "--setting {}: the cipher has only the normal setting",
                        self.setting.name()
                    )));
                }
                GenTask::Cipher {
                    maxlen: self.maxlen.unwrap_or(1),
                    offset: self.offset.unwrap_or(1),
                }
            }
        };
        Ok(GenSpec {
            task,
            examples: self.examples,
            demos: self.demos,
            seed: self.seed,
        })
    }
}

/// Generates; `--out` is checked before and the file saved before anything is printed.
fn gen(a: GenArgs) -> Result<Report> {
    let planned = Planned::optional("--out", a.out.as_deref(), a.force)?;
    let spec = a.gen_spec()?;
    let text = generate(&spec)?;
    let mut r = Report::new();
    match planned {
        None => r.push(&text),
        Some(planned) => {
            out!(
                r,
                "wrote {} examples of {} demonstrations (seed {})",
                spec.examples,
                spec.demos,
                spec.seed
            );
            r.save(Output::new(planned, text.into_bytes()));
        }
    }
    Ok(r)
}

/// The tokenizer `data show` uses: `--tokenizer`, else `--model`'s (a directory's
/// tokenizer.json, a tokenizer .json file itself, or the tokenizer of a fully loaded model).
fn show_tokenizer(a: &ShowArgs) -> Result<Option<(Tokenizer, String)>> {
    if let Some(t) = &a.tokenizer {
        return Ok(Some((Tokenizer::from_file(t)?, t.display().to_string())));
    }
    let Some(m) = &a.model else {
        return Ok(None);
    };
    let p = Path::new(m);
    if p.is_dir() {
        let t = p.join("tokenizer.json");
        if !t.is_file() {
            anyhow::bail!(
                "{m}: tokenizer.json not found in the model directory (pass --tokenizer FILE)"
            );
        }
        return Ok(Some((Tokenizer::from_file(&t)?, t.display().to_string())));
    }
    if p.is_file() && m.ends_with(".json") {
        return Ok(Some((Tokenizer::from_file(p)?, m.clone())));
    }
    let lm = crate::model::load(m, None, &candle_core::Device::Cpu, candle_core::DType::F32)?;
    Ok(Some((lm.tokenizer, lm.origin.label())))
}

/// `[<bos>][1][+]...`
fn boundaries(tok: &Tokenizer, ids: &[u32]) -> String {
    ids.iter()
        .map(|&i| format!("[{}]", printable(&tok.token_text(i))))
        .collect()
}

/// Prompt text on one line: newlines as ↵.
fn one_line(s: &str) -> String {
    s.replace('\n', "↵")
}

/// `4, 7, 9` (1-based lines of 0-based indices), at most 20 then `... (N in all)`.
fn line_list(indices: &[usize]) -> String {
    let mut s: Vec<String> = indices
        .iter()
        .take(20)
        .map(|i| (i + 1).to_string())
        .collect();
    if indices.len() > 20 {
        s.push(format!("... ({} in all)", indices.len()));
    }
    s.join(", ")
}

fn task_label(spec: &DataSpec) -> String {
    match spec.task {
        TaskKind::Addition => "addition (off-by-k)".into(),
        TaskKind::Base => match spec.resolved_base() {
            Ok(b) => format!("base-k addition (base {b})"),
            Err(_) => "base-k addition".into(),
        },
        TaskKind::Cipher => "Caesar cipher".into(),
        TaskKind::Pairs => "prompt pairs".into(),
    }
}

/// What `--offset` does for this task, for the header.
fn offset_line(spec: &DataSpec, given: Option<i64>) -> String {
    match spec.task {
        TaskKind::Addition => format!(
            "{:+} (contrast lines and answer: a+b{:+})",
            spec.offset, spec.offset
        ),
        TaskKind::Cipher => format!(
            "{:+}, the file's Caesar shift (the contrast comes from the file's targets; --offset \
             is only checked against it)",
            spec.offset
        ),
        TaskKind::Base => format!(
            "not used{} (normal reads the base-{} digits as decimal and adds in base 10; \
             contrast adds in base {})",
            given
                .map(|o| format!(", --offset {o} ignored"))
                .unwrap_or_default(),
            spec.base.unwrap_or(0),
            spec.base.unwrap_or(0)
        ),
        TaskKind::Pairs => format!(
            "not used{} (prompts and answers come from the file)",
            given
                .map(|o| format!(", --offset {o} ignored"))
                .unwrap_or_default()
        ),
    }
}

fn rule_line(rule: AnswerTokenRule) -> &'static str {
    match rule {
        AnswerTokenRule::Last => {
            "last token of the tokenized answer string, BOS included (the paper's choice)"
        }
        AnswerTokenRule::First => "first token of the answer as a continuation of the prompt",
    }
}

/// The answer's tokens as shown: `encode(answer)` (last rule) or the continuation tokens after
/// the prompt (first rule).
fn answer_tokens(
    tok: &Tokenizer,
    prompt: &str,
    answer: &str,
    rule: AnswerTokenRule,
) -> Result<Vec<u32>, crate::model::ModelError> {
    match rule {
        AnswerTokenRule::Last => tok.encode(answer),
        AnswerTokenRule::First => {
            let p = tok.encode(prompt)?;
            let full = tok.encode(&format!("{prompt}{answer}"))?;
            Ok(if full.starts_with(&p) {
                full[p.len()..].to_vec()
            } else {
                full
            })
        }
    }
}

fn print_example(
    r: &mut Report,
    i: usize,
    p: &PromptPair,
    tok: Option<&Tokenizer>,
    tokenized: Option<&Tokenized>,
    rule: AnswerTokenRule,
) -> Result<()> {
    out!(r);
    out!(r, "example at line {} (index {i})", i + 1);
    out!(
        r,
        "  normal    {}   answer {:?}",
        one_line(&p.normal_input),
        p.normal_output
    );
    out!(
        r,
        "  contrast  {}   answer {:?}",
        one_line(&p.contrast_input),
        p.contrast_output
    );
    let Some(tok) = tok else {
        return Ok(());
    };
    let n = tok.encode(&p.normal_input)?;
    let c = tok.encode(&p.contrast_input)?;
    out!(
        r,
        "  normal    {:>3} tokens {}",
        n.len(),
        boundaries(tok, &n)
    );
    out!(
        r,
        "  contrast  {:>3} tokens {}",
        c.len(),
        boundaries(tok, &c)
    );
    let kept = tokenized.and_then(|t| t.pairs.iter().find(|tp| tp.index == i));
    match kept {
        Some(tp) => {
            let na = answer_tokens(tok, &p.normal_input, &p.normal_output, rule)?;
            let ca = answer_tokens(tok, &p.contrast_input, &p.contrast_output, rule)?;
            let which = match rule {
                AnswerTokenRule::Last => "last of",
                AnswerTokenRule::First => "first of",
            };
            out!(r,
                "  answers   normal {:?} → token id {} [{}] ({which} {}); contrast {:?} → token id \
                 {} [{}] ({which} {})",
                p.normal_output,
                tp.normal_answer,
                printable(&tok.token_text(tp.normal_answer)),
                boundaries(tok, &na),
                p.contrast_output,
                tp.contrast_answer,
                printable(&tok.token_text(tp.contrast_answer)),
                boundaries(tok, &ca),
            );
            if tp.first_difference() < tp.len() {
                out!(
                    r,
                    "  prompts first differ at token {}",
                    tp.first_difference()
                );
            } else {
                out!(r, "  prompts are identical (only the answers differ)");
            }
        }
        None if n.len() != c.len() => {
            out!(
                r,
                "  lengths differ ({} vs {} tokens): skipped with --skip-mismatched, an error \
                 otherwise",
                n.len(),
                c.len()
            );
        }
        None => {}
    }
    Ok(())
}

fn show(a: ShowArgs) -> Result<Report> {
    let mut r = Report::new();
    let spec = a.data.spec()?;
    let pairs = load_pairs(&spec)?;
    let tok = show_tokenizer(&a)?;
    let total = crate::data::count_examples(&spec.file)?;
    let detected = if a.data.options.task == TaskChoice::Auto {
        ", detected"
    } else {
        ""
    };
    let uses_shots = !matches!(spec.task, TaskKind::Pairs);
    out!(r, "file       {}", spec.file.display());
    out!(r, "task       {}{detected}", task_label(&spec));
    out!(r, "examples   {} of {}", pairs.len(), total);
    if uses_shots {
        out!(r, "shots      {}", spec.shots);
    } else {
        out!(r, "shots      not used (the prompts are in the file)");
    }
    out!(
        r,
        "offset     {}",
        offset_line(&spec, a.data.options.offset)
    );
    out!(r, "answer     {}", rule_line(spec.answer_token));

    // Tokenize keeping mismatched examples out, so that everything can be shown; the error
    // (without --skip-mismatched) comes at the end.
    let mut tokenized: Option<Tokenized> = None;
    let mut mismatch_error: Option<DataError> = None;
    if let Some((t, label)) = &tok {
        let bos = match t.bos {
            Some(b) => format!("adds BOS {} (id {b})", printable(&t.token_text(b))),
            None => "adds no BOS".into(),
        };
        out!(r, "tokenizer  {label} ({bos})");
        match tokenize_pairs(t, &pairs, spec.answer_token, true) {
            Ok(tk) => {
                if !tk.skipped.is_empty() && !spec.skip_mismatched {
                    mismatch_error = tokenize_pairs(t, &pairs, spec.answer_token, false)
                        .err()
                        .map(|e| e.with_file(&spec.file));
                }
                tokenized = Some(tk);
            }
            Err(e @ DataError::AllSkipped { .. }) => {
                mismatch_error = if spec.skip_mismatched {
                    Some(e.with_file(&spec.file))
                } else {
                    tokenize_pairs(t, &pairs, spec.answer_token, false)
                        .err()
                        .map(|e| e.with_file(&spec.file))
                };
            }
            Err(e) => return Err(e.with_file(&spec.file).into()),
        }
    }

    let n_print = a
        .print
        .unwrap_or(if a.data.options.examples.is_some() {
            pairs.len()
        } else {
            3
        })
        .min(pairs.len());
    for (i, p) in pairs.iter().enumerate().take(n_print) {
        print_example(
            &mut r,
            i,
            p,
            tok.as_ref().map(|t| &t.0),
            tokenized.as_ref(),
            spec.answer_token,
        )?;
    }
    out!(r);

    let mut summary = format!("summary: {} example(s)", pairs.len());
    if uses_shots {
        summary += &format!(", {} shots", spec.shots);
    }
    match spec.task {
        TaskKind::Addition => summary += &format!(", offset {:+}", spec.offset),
        TaskKind::Cipher => summary += &format!(", shift {:+} (from the file)", spec.offset),
        TaskKind::Base => summary += &format!(", base {}", spec.base.unwrap_or(0)),
        TaskKind::Pairs => {}
    }
    match (&tok, &tokenized) {
        (Some(_), Some(tk)) => {
            let lengths: Vec<String> = tk
                .length_counts()
                .iter()
                .map(|(len, n)| format!("{len} ({n})"))
                .collect();
            summary += &format!(
                ", prompt lengths in tokens (examples): {}",
                lengths.join(", ")
            );
            summary += &format!(
                ", {} kept, {} skipped, {} multi-token answer(s)",
                tk.pairs.len(),
                tk.skipped.len(),
                tk.multi_token_answers.len()
            );
        }
        (Some(_), None) => summary += ", no example kept",
        (None, _) => {
            let (lo, hi) = pairs
                .iter()
                .flat_map(|p| {
                    [
                        p.normal_input.chars().count(),
                        p.contrast_input.chars().count(),
                    ]
                })
                .fold((usize::MAX, 0), |(lo, hi), n| (lo.min(n), hi.max(n)));
            summary += &format!(
                ", prompt lengths {lo}..{hi} characters (pass --model or --tokenizer for tokens)"
            );
        }
    }
    out!(r, "{summary}");
    if let Some(tk) = &tokenized {
        if !tk.multi_token_answers.is_empty() {
            let which = match spec.answer_token {
                AnswerTokenRule::Last => "last",
                AnswerTokenRule::First => "first",
            };
            out!(
                r,
                "warning: {} example(s) have an answer that spans several tokens (line(s) {}); \
                 the metric reads only its {which} token",
                tk.multi_token_answers.len(),
                line_list(&tk.multi_token_answers)
            );
        }
        let same = tk.same_answer();
        if !same.is_empty() {
            out!(
                r,
                "warning: {} example(s) have the same normal and contrast answer token (line(s) \
                 {}); their logit difference is 0 whatever the model does",
                same.len(),
                line_list(&same)
            );
        }
        if !tk.skipped.is_empty() && spec.skip_mismatched {
            out!(
                r,
                "warning: skipped {} example(s) whose normal and contrast prompts tokenize to \
                 different lengths (line(s) {})",
                tk.skipped.len(),
                line_list(&tk.skipped)
            );
        }
    }
    r.error = mismatch_error.map(Into::into);
    Ok(r)
}
