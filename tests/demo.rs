//! The shipped demo model (`assets/demo-model`): it loads like any model, answers held-out
//! prompts of every k right, its answers follow the demonstrations, and the training model
//! computes exactly what the engine computes.

mod common;

use candle_core::{DType, Device, Tensor};
use headhunt::demo::net::{Net, NetConfig};
use headhunt::demo::task::{self, EvalPrompt};
use headhunt::demo::train::{answer_id, engine_argmax, paper_file, paper_prompts, save_model_dir};
use headhunt::model::{self, LoadedModel};

fn demo() -> LoadedModel {
    let dir = headhunt::demo::model_dir();
    model::load(dir.to_str().unwrap(), None, &Device::Cpu, DType::F32)
        .unwrap_or_else(|e| panic!("loading the demo model from {}: {e}", dir.display()))
}

/// The model's answers (argmax over the whole vocabulary, as text) to `prompts`.
fn answers(lm: &LoadedModel, prompts: &[&str]) -> Vec<String> {
    prompts
        .iter()
        .map(|p| {
            let ids = lm.tokenizer.encode(p).unwrap();
            let id = engine_argmax(&lm.model, &[ids]).unwrap()[0];
            lm.tokenizer.token_text(id)
        })
        .collect()
}

fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

const PROMPTS: &[&str] = &[
    "4+3=8\n3+2=6\n6+0=7\n3+3=7\n1+0=",
    "1+1=1\n5+2=7\n0+0=0\n2+",
    "7+0=5\n2+2=2\n3+5=6\n1+8=7\n4+4=6\n0+9=7\n6+1=",
    "",
];

/// Logits of the training model and of the engine (loaded from `dir`) agree within 1e-4, and
/// the directory's tokenizer.json encodes like the training code.
fn check_same_logits(net: &Net, dir: &std::path::Path) {
    let lm = model::load(dir.to_str().unwrap(), None, &Device::Cpu, DType::F32).unwrap();
    for p in PROMPTS {
        let ids = lm.tokenizer.encode(p).unwrap();
        assert_eq!(
            ids,
            task::encode(p),
            "tokenizer.json encodes {p:?} differently"
        );
        let tokens = lm.model.tokens_tensor(&[ids]).unwrap();
        let engine = lm.model.forward(&tokens).unwrap();
        let train = net.forward(&tokens).unwrap();
        let d = max_abs(&engine, &train);
        assert!(d < 1e-4, "{p:?}: logits differ by {d}");
    }
}

#[test]
fn training_model_matches_engine_on_random_weights() {
    use rand::SeedableRng;
    let cfg = NetConfig {
        n_layers: 2,
        n_heads: 4,
        d_model: 32,
        d_mlp: 48,
        vocab_size: task::VOCAB_SIZE,
        rope_theta: 10000.0,
        norm_eps: 1e-6,
        max_positions: 128,
    };
    let vars = candle_nn::VarMap::new();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let net = Net::new(&cfg, &vars, &mut rng, &Device::Cpu).unwrap();
    let dir = common::temp_dir("demo-net");
    save_model_dir(&vars, &cfg, &dir).unwrap();
    check_same_logits(&net, &dir);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn training_model_matches_engine_on_the_shipped_weights() {
    let dir = headhunt::demo::model_dir();
    let lm = demo();
    let cfg = NetConfig::from_model_config(&lm.model.cfg).expect("a plain Llama config");
    let (_, net) = Net::load(&cfg, &dir.join("model.safetensors"), &Device::Cpu).unwrap();
    check_same_logits(&net, &dir);
}

#[test]
fn shipped_files_are_what_training_writes() {
    let dir = headhunt::demo::model_dir();
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
    };
    assert_eq!(read("tokenizer.json"), task::tokenizer_json());
    let lm = demo();
    let cfg = NetConfig::from_model_config(&lm.model.cfg).unwrap();
    assert_eq!(read("config.json"), cfg.hf_config());
    assert_eq!(lm.model.cfg.vocab_size, task::VOCAB_SIZE);
    assert_eq!(lm.tokenizer.bos, Some(task::BOS));
    // Small enough for git.
    let bytes = std::fs::metadata(dir.join("model.safetensors"))
        .unwrap()
        .len();
    assert!(bytes < 4_000_000, "model.safetensors is {bytes} bytes");
    assert!(headhunt::demo::dataset().is_file());
}

/// Held-out prompts: the paper's own setting1 files (never seen in training), 4 shots, for
/// every k the model was trained on.
#[test]
fn answers_held_out_prompts_of_every_k() {
    let lm = demo();
    for k in -2..=2i64 {
        let file = paper_file(&headhunt::demo::paper_dir(), k);
        let (contrast, _) = paper_prompts(&file, k, 4).unwrap();
        let ids: Vec<Vec<u32>> = contrast
            .iter()
            .map(|p| lm.tokenizer.encode(&p.input).unwrap())
            .collect();
        let pred = engine_argmax(&lm.model, &ids).unwrap();
        let right: Vec<bool> = contrast
            .iter()
            .zip(&pred)
            .map(|(p, &id)| answer_id(&p.answer) == id)
            .collect();
        // A handful must be exactly right, and nearly all of the 100.
        assert!(
            right[..8].iter().all(|&r| r),
            "k={k}: wrong on some of the first 8 prompts: {:?}",
            contrast[..8]
                .iter()
                .zip(&pred)
                .map(|(p, id)| (p.input.replace('\n', " "), p.answer.clone(), *id))
                .collect::<Vec<_>>()
        );
        let acc = right.iter().filter(|&&r| r).count() as f64 / right.len() as f64;
        assert!(acc >= 0.95, "k={k}: accuracy {acc} on {}", file.display());
    }
}

/// The same query gets a+b after ordinary demonstrations and a+b+k after off-by-k ones.
#[test]
fn answers_follow_the_demonstrations() {
    let lm = demo();
    // Sums 3..=7: every k in -2..=2 keeps every answer a single digit.
    let demos = [(1, 2), (4, 3), (0, 5), (3, 1)];
    let query = (2, 5);
    let mut got = Vec::new();
    for k in -2..=2i64 {
        let mut text = task::lines_text(&demos, k);
        text.push_str(&format!("\n{}+{}=", query.0, query.1));
        got.push(answers(&lm, &[&text])[0].clone());
    }
    assert_eq!(got, ["5", "6", "7", "8", "9"], "answers for k = -2..=2");

    // The default dataset: normal (k=0 demos) and contrast (k=1 demos) prompts share the query.
    let (contrast, normal) = paper_prompts(&headhunt::demo::dataset(), 1, 4).unwrap();
    let pred = |ps: &[EvalPrompt]| -> Vec<u32> {
        let ids: Vec<Vec<u32>> = ps
            .iter()
            .map(|p| lm.tokenizer.encode(&p.input).unwrap())
            .collect();
        engine_argmax(&lm.model, &ids).unwrap()
    };
    let (pn, pc) = (pred(&normal[..20]), pred(&contrast[..20]));
    for i in 0..20 {
        assert_eq!(pn[i], answer_id(&normal[i].answer), "normal prompt {i}");
        assert_eq!(pc[i], answer_id(&contrast[i].answer), "contrast prompt {i}");
        assert_ne!(pn[i], pc[i]);
    }
}

#[test]
fn info_command_reads_the_demo_model() {
    let out = std::process::Command::new(common::bin())
        .args(["info", "--model"])
        .arg(headhunt::demo::model_dir())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("llama") && text.contains("layers"), "{text}");
}
