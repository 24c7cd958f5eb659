//! Mean attention of every head of a model on the paper's single-digit addition prompts,
//! summarised by what each position holds: from the final `=` (where the answer is predicted),
//! from the demonstrations' `=`, from their answers c and from the `\n` after each answer.
//!
//!     cargo run --release --example demo_attention -- [MODEL_DIR] [DATA.jsonl] [SHOTS] [EXAMPLES]
//!
//! Defaults: the demo model, the paper's setting1 nmax-9 offset +1 file, 4 shots, 100
//! examples. Both runs are shown: contrast (off-by-one demonstrations) and normal. At the end,
//! the paper's head ablation (§7): groups of heads patched from the normal prompt into the
//! contrast prompt, and how often the answer is still a+b+1.

use anyhow::Result;
use candle_core::{DType, Device};
use headhunt::data::{load_and_tokenize, DataSpec, TaskKind};
use headhunt::model::{Capture, HookName, HookPoint, Hooks, Patch, RunOptions, Start};

/// What a key position holds, seen from a query position, in the layout BOS, then lines
/// `a + b = c \n` of 6 tokens, then the test line `a + b =`.
fn role(q: usize, k: usize, n_lines: usize) -> &'static str {
    if k == 0 {
        return "bos";
    }
    if k == q {
        return "self";
    }
    let (ql, kl, col) = ((q - 1) / 6, (k - 1) / 6, (k - 1) % 6);
    let same = ql == kl;
    let test = kl == n_lines;
    match (same, test, col) {
        (true, _, 0) => "own a",
        (true, _, 1) => "own +",
        (true, _, 2) => "own b",
        (true, _, 3) => "own =",
        (true, _, _) => "own c",
        (false, true, 0) => "test a",
        (false, true, 2) => "test b",
        (false, true, _) => "test +=",
        (false, false, 0) => "demo a",
        (false, false, 1) => "demo +",
        (false, false, 2) => "demo b",
        (false, false, 3) => "demo =",
        (false, false, 4) => "demo c",
        _ => "demo \\n",
    }
}

const ROLES: &[&str] = &[
    "bos", "self", "own a", "own +", "own b", "own =", "own c", "demo a", "demo +", "demo b",
    "demo =", "demo c", "demo \\n", "test a", "test +=", "test b",
];

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let model = args
        .first()
        .cloned()
        .unwrap_or_else(|| headhunt::demo::model_dir().display().to_string());
    let data = args
        .get(1)
        .map(Into::into)
        .unwrap_or_else(headhunt::demo::dataset);
    let shots: usize = args.get(2).map_or(Ok(4), |s| s.parse())?;
    let examples: usize = args.get(3).map_or(Ok(100), |s| s.parse())?;
    let lm = headhunt::model::load(&model, None, &Device::Cpu, DType::F32)?;
    let m = &lm.model;
    let mut spec = DataSpec::new(data, TaskKind::Addition);
    spec.shots = shots;
    spec.offset = 1;
    spec.examples = Some(examples);
    let tok = load_and_tokenize(&spec, &lm.tokenizer)?;
    let len = tok.pairs[0].len();
    assert!(
        tok.pairs.iter().all(|p| p.len() == len) && len == 6 * shots + 5,
        "expected single-digit prompts of {} tokens",
        6 * shots + 5
    );
    println!(
        "{model}: mean attention over {} prompts of {len} tokens ({shots} shots)",
        tok.pairs.len()
    );
    for (name, contrast) in [("contrast (off-by-one demos)", true), ("normal", false)] {
        let rows: Vec<Vec<u32>> = tok
            .pairs
            .iter()
            .map(|p| {
                if contrast {
                    p.contrast_ids.clone()
                } else {
                    p.normal_ids.clone()
                }
            })
            .collect();
        let tokens = m.tokens_tensor(&rows)?;
        let mut hooks = Hooks::capture(Capture::only(
            (0..m.n_layers()).map(|l| HookName::Layer(l, HookPoint::Pattern)),
        ));
        m.run(Start::Tokens(&tokens), RunOptions::default(), &mut hooks)?;
        let queries: [(&str, Vec<usize>); 4] = [
            ("from the final =", vec![len - 1]),
            (
                "from the demos' = (predicting c)",
                (0..shots).map(|i| 6 * i + 4).collect(),
            ),
            (
                "from the demos' answers c",
                (0..shots).map(|i| 6 * i + 5).collect(),
            ),
            (
                "from the demos' newlines (after c)",
                (0..shots).map(|i| 6 * i + 6).collect(),
            ),
        ];
        println!("\n=== {name} run ===");
        for (qname, qs) in &queries {
            println!("\n{qname}: mean attention mass by key role (rows: heads)");
            let used: Vec<&str> = ROLES
                .iter()
                .copied()
                .filter(|r| qs.iter().any(|&q| (0..=q).any(|k| role(q, k, shots) == *r)))
                .collect();
            print!("  head ");
            for r in &used {
                print!("{r:>8}");
            }
            println!("   top keys (pos:token weight)");
            for l in 0..m.n_layers() {
                // [B, H, T, T] → mean over examples: [H, T, T]
                let p = hooks
                    .cache
                    .require(l, HookPoint::Pattern)?
                    .to_dtype(DType::F32)?
                    .mean(0)?
                    .to_vec3::<f32>()?;
                for (h, ph) in p.iter().enumerate() {
                    let mut mass = vec![0f32; used.len()];
                    let mut row = vec![0f32; len];
                    for &q in qs {
                        for k in 0..=q {
                            let w = ph[q][k] / qs.len() as f32;
                            let r = role(q, k, shots);
                            if let Some(i) = used.iter().position(|u| *u == r) {
                                mass[i] += w;
                            }
                            row[k] += w;
                        }
                    }
                    print!("  {l}.{h}  ");
                    for v in &mass {
                        print!("{v:>8.2}");
                    }
                    let mut order: Vec<usize> = (0..len).collect();
                    order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
                    let texts = lm.tokenizer.token_texts(&rows[0]);
                    let top: Vec<String> = order
                        .iter()
                        .take(4)
                        .filter(|&&k| row[k] > 0.05)
                        .map(|&k| {
                            format!(
                                "{k}:{} {:.2}",
                                headhunt::model::tokenizer::printable(&texts[k]),
                                row[k]
                            )
                        })
                        .collect();
                    println!("   {}", top.join(", "));
                }
            }
        }
    }
    ablation(&lm, &tok)?;
    Ok(())
}

/// The paper's head ablation (§7): on the contrast prompts, some heads' outputs z (all
/// positions) are replaced by their values on the same example's normal prompt; how often does
/// the model still answer a+b+1, and how often a+b?
fn ablation(lm: &headhunt::model::LoadedModel, tok: &headhunt::data::Tokenized) -> Result<()> {
    let m = &lm.model;
    let normal: Vec<Vec<u32>> = tok.pairs.iter().map(|p| p.normal_ids.clone()).collect();
    let contrast: Vec<Vec<u32>> = tok.pairs.iter().map(|p| p.contrast_ids.clone()).collect();
    let mut cache = Hooks::capture(Capture::only(
        (0..m.n_layers()).map(|l| HookName::Layer(l, HookPoint::Z)),
    ));
    m.run(
        Start::Tokens(&m.tokens_tensor(&normal)?),
        RunOptions::default(),
        &mut cache,
    )?;
    let contrast_tokens = m.tokens_tensor(&contrast)?;
    let sets: Vec<(&str, Vec<(usize, usize)>)> = vec![
        ("none", vec![]),
        ("1.3", vec![(1, 3)]),
        ("1.2", vec![(1, 2)]),
        ("1.1, 1.2, 1.3", vec![(1, 1), (1, 2), (1, 3)]),
        ("0.0, 0.3", vec![(0, 0), (0, 3)]),
        ("2.0", vec![(2, 0)]),
        (
            "0.1, 0.2, 1.0, 2.1, 2.3",
            vec![(0, 1), (0, 2), (1, 0), (2, 1), (2, 3)],
        ),
        (
            "1.1, 1.2, 1.3, 0.0, 0.3, 2.0",
            vec![(1, 1), (1, 2), (1, 3), (0, 0), (0, 3), (2, 0)],
        ),
    ];
    println!(
        "\nhead ablation on the {} contrast prompts: z of the listed heads taken from the normal \
         prompt (all positions)",
        contrast.len()
    );
    println!(
        "  {:<30} {:>10} {:>10} {:>8}",
        "heads", "a+b+1 %", "a+b %", "other %"
    );
    for (name, heads) in sets {
        let mut hooks = Hooks::none();
        for l in 0..m.n_layers() {
            let hs: Vec<usize> = heads.iter().filter(|x| x.0 == l).map(|x| x.1).collect();
            if !hs.is_empty() {
                let z = cache.cache.require(l, HookPoint::Z)?.clone();
                hooks = hooks.with_patch(Patch::heads(HookName::Layer(l, HookPoint::Z), z, hs));
            }
        }
        // A full run: with last_position_only the last layer's z would hold one position.
        let out = m.run(
            Start::Tokens(&contrast_tokens),
            RunOptions::default(),
            &mut hooks,
        )?;
        let logits = out.logits.unwrap();
        let t = logits.dim(1)?;
        let pred = logits
            .narrow(1, t - 1, 1)?
            .squeeze(1)?
            .argmax(1)?
            .to_vec1::<u32>()?;
        let (mut c, mut n) = (0, 0);
        for (p, &id) in tok.pairs.iter().zip(&pred) {
            if id == p.contrast_answer {
                c += 1;
            } else if id == p.normal_answer {
                n += 1;
            }
        }
        let pct = |x: usize| 100.0 * x as f64 / pred.len() as f64;
        println!(
            "  {:<30} {:>10.0} {:>10.0} {:>8.0}",
            name,
            pct(c),
            pct(n),
            pct(pred.len() - c - n)
        );
    }
    Ok(())
}
