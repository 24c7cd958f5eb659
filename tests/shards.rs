//! Past one process: `patch --shard K/N` parts merged by `headhunt merge`, and `--device
//! cpu,cpu` (a worker per device), each against the unsharded one-device run: every number of
//! the result file and its per-example files. And the parts that must not merge.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::{DType, Device};
use headhunt::data::{load_and_tokenize, DataSpec, TaskKind, TokenizedPair};
use headhunt::model;
use headhunt::patching::{self, Algorithm, Metric, Observer, PatchEvent, PatchSpec, Receiver};

fn load_model(dir: &Path) -> model::LoadedModel {
    model::load(dir.to_str().unwrap(), None, &Device::Cpu, DType::F32).unwrap()
}

fn load_pairs(lm: &model::LoadedModel, data: &Path) -> Vec<TokenizedPair> {
    let spec = DataSpec::new(data.to_path_buf(), TaskKind::Addition);
    load_and_tokenize(&spec, &lm.tokenizer).unwrap().pairs
}

/// `headhunt ARGS` with `envs`: (exit code, stderr).
fn headhunt(args: &[&str], envs: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(bin())
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// `patch` on a fixture with its addition data, quiet, to `out`.
fn patch(fx: &str, out: &Path, extra: &[&str]) {
    patch_fixture(fx, out, extra);
}

/// The result file as JSON without what differs between any two runs (time, timing, the
/// devices' names).
fn numbers(path: &Path) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let m = v.as_object_mut().unwrap();
    m.remove("created");
    m.remove("timing");
    m["model"].as_object_mut().unwrap().remove("device");
    v
}

/// The two results hold the same numbers, in the JSON and the per-example `.npy` files, bit
/// for bit.
fn assert_same(a: &Path, b: &Path) {
    assert_eq!(numbers(a), numbers(b), "{} vs {}", a.display(), b.display());
    let pa = headhunt::results::per_example_paths(a);
    let pb = headhunt::results::per_example_paths(b);
    for (x, y) in pa.iter().zip(&pb) {
        assert_eq!(
            std::fs::read(x).unwrap(),
            std::fs::read(y).unwrap(),
            "{}",
            y.display()
        );
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Shards 0..n of one sweep into `dir`, then their merge into `dir/merged.json`.
fn shard_and_merge(fx: &str, dir: &Path, n: usize, extra: &[&str]) -> PathBuf {
    let parts = dir.join("parts");
    for k in 0..n {
        let shard = format!("{k}/{n}");
        let mut args = extra.to_vec();
        args.extend(["--shard", &shard]);
        patch(fx, &parts.join(format!("shard-{k}.json")), &args);
    }
    let merged = dir.join("merged.json");
    let (code, err) = headhunt(
        &["merge", path_str(&parts), "--out", path_str(&merged)],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    merged
}

#[test]
fn merged_shards_equal_the_unsharded_run_fast_and_literal() {
    let cases: [(&str, &[&str]); 4] = [
        ("tiny-llama", &["--receiver", "resid_post:3"]),
        ("tiny-pythia", &["--receiver", "2.1.q,2.0.v"]),
        (
            "tiny-qwen2",
            &["--receiver", "2.1.k", "--algorithm", "reference"],
        ),
        ("tiny-gemma2", &["--metric", "kl", "--chunk-rows", "64"]),
    ];
    for (i, (fx, extra)) in cases.iter().enumerate() {
        let dir = temp_dir(&format!("shards{i}"));
        let whole = dir.join("whole.json");
        patch(fx, &whole, extra);
        let merged = shard_and_merge(fx, &dir, 3, extra);
        assert_same(&whole, &merged);
        let rec = headhunt::results::RunRecord::load(&merged).unwrap();
        assert!(rec.complete && rec.shard.is_none(), "{fx}");
    }
}

#[test]
fn two_cpu_workers_equal_one_device() {
    for (i, extra) in [
        &["--receiver", "resid_post:2"][..],
        &["--receiver", "2.0.q", "--algorithm", "reference"][..],
        &["--chunk-rows", "64"][..],
    ]
    .iter()
    .enumerate()
    {
        let dir = temp_dir(&format!("devices{i}"));
        let (one, two) = (dir.join("one.json"), dir.join("two.json"));
        patch("tiny-mistral", &one, extra);
        let mut args = extra.to_vec();
        args.extend(["--device", "cpu,cpu"]);
        patch("tiny-mistral", &two, &args);
        assert_same(&one, &two);
        let rec = headhunt::results::RunRecord::load(&two).unwrap();
        assert_eq!(
            rec.model.unwrap().device,
            "cpu,cpu",
            "the result records the devices"
        );
    }
}

#[test]
fn a_shard_of_a_slurm_array_task_is_the_same_shard() {
    let dir = temp_dir("slurmenv");
    let (given, slurm) = (dir.join("given.json"), dir.join("slurm.json"));
    patch("tiny-llama", &given, &["--shard", "1/3"]);
    let fx = fixture("tiny-llama");
    let data = fx.join("addition.jsonl");
    let args = [
        "patch",
        "--model",
        path_str(&fx),
        "--data",
        path_str(&data),
        "--quiet",
        "--shard",
        "slurm",
        "--out",
        path_str(&slurm),
    ];
    // An array submitted as --array=1-3: task 2 is the second shard (index 1).
    let env = [
        ("SLURM_ARRAY_TASK_ID", "2"),
        ("SLURM_ARRAY_TASK_COUNT", "3"),
        ("SLURM_ARRAY_TASK_MIN", "1"),
        ("SLURM_ARRAY_TASK_MAX", "3"),
    ];
    let (code, err) = headhunt(&args, &env);
    assert_eq!(code, 0, "{err}");
    assert_same(&given, &slurm);
    let (code, err) = headhunt(&args, &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("--shard") && err.contains("SLURM_ARRAY_TASK_ID is not set"),
        "{err}"
    );
}

/// A one-line error that names what is wrong.
fn refused(args: &[&str], needle: &str) {
    let (code, err) = headhunt(args, &[]);
    assert_eq!(code, 2, "{args:?}: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains(needle), "{err:?} should say {needle:?}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn parts_that_do_not_belong_together_are_refused() {
    let dir = temp_dir("badmerge");
    let part = |name: &str, extra: &[&str]| {
        let p = dir.join(name);
        patch("tiny-llama", &p, extra);
        p
    };
    let s0 = part("s0.json", &["--shard", "0/3"]);
    let s2 = part("s2.json", &["--shard", "2/3"]);
    let of4 = part("of4.json", &["--shard", "1/4"]);
    let kl = part("kl.json", &["--shard", "1/3", "--metric", "kl"]);
    let whole = part("whole.json", &[]);
    let out = dir.join("m.json");
    let o = path_str(&out);
    let (a, b) = (path_str(&s0), path_str(&s2));
    refused(&["merge", a, b, "--out", o], "missing shard(s) 1 of 3");
    refused(&["merge", a, a, "--out", o], "shard 0 given twice");
    refused(
        &["merge", a, path_str(&of4), "--out", o],
        "shard 1 of 4, but",
    );
    refused(
        &["merge", a, path_str(&kl), "--out", o],
        "from another sweep",
    );
    refused(&["merge", path_str(&whole), "--out", o], "not a shard part");
    refused(
        &["merge", a, b, "--out", a, "--force"],
        "is one of the parts",
    );
    refused(
        &["patch", "--model", "x", "--data", "y", "--shard", "3/3"],
        "--shard 3/3",
    );
    assert!(!out.exists(), "nothing is written by a refused merge");
    // What is there, marked partial, when asked for.
    let (code, err) = headhunt(&["merge", a, b, "--out", o, "--partial"], &[]);
    assert_eq!(code, 0, "{err}");
    let rec = headhunt::results::RunRecord::load(&out).unwrap();
    assert!(!rec.complete);
    assert!(!rec.rows_computed.contains(&1) && rec.rows_computed.contains(&0));
}

#[test]
fn a_part_with_other_weights_of_the_same_shape_is_refused() {
    // Same fingerprint (shape, data, options), other baselines: another checkpoint.
    let dir = temp_dir("otherweights");
    let (s0, s1) = (dir.join("s0.json"), dir.join("s1.json"));
    patch("tiny-llama", &s0, &["--shard", "0/2"]);
    patch("tiny-llama", &s1, &["--shard", "1/2"]);
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&s1).unwrap()).unwrap();
    let x = v["normal_logit_diff"].as_f64().unwrap();
    v["normal_logit_diff"] = serde_json::json!(x + 0.5);
    std::fs::write(&s1, v.to_string()).unwrap();
    let out = dir.join("m.json");
    refused(
        &[
            "merge",
            path_str(&s0),
            path_str(&s1),
            "--out",
            path_str(&out),
        ],
        "baselines differ",
    );
}

/// Cancels after `after` rows.
struct CancelAfter {
    after: usize,
    rows: Vec<usize>,
}

impl Observer for CancelAfter {
    fn event(&mut self, e: &PatchEvent) {
        if let PatchEvent::Row { layer, .. } = e {
            self.rows.push(*layer);
        }
    }
    fn cancelled(&self) -> bool {
        self.rows.len() >= self.after
    }
}

#[test]
fn a_cancel_stops_every_worker_and_keeps_their_rows() {
    let dir = fixture("tiny-gemma2");
    let lm = load_model(&dir);
    let copy = load_model(&dir);
    let pairs = load_pairs(&lm, &dir.join("addition.jsonl"));
    let spec = PatchSpec {
        receiver: Receiver::parse_one("resid_post:3").unwrap(),
        begin_layer: 0,
        batch_size: 2,
        algorithm: Algorithm::Reference,
        chunk_rows: 0,
        metric: Metric::LogitDiff,
        senders: Default::default(),
    };
    let layers = spec.sender_layers();
    let whole = patching::run(&lm.model, &pairs, &spec, &mut patching::Silent)
        .unwrap()
        .matrix;
    let mut obs = CancelAfter {
        after: 1,
        rows: Vec::new(),
    };
    let models = [&lm.model, &copy.model];
    let out = patching::run_devices(&models, &pairs, &spec, &layers, &mut obs).unwrap();
    assert!(!out.complete, "cancelled");
    let done: Vec<usize> = (0..4).filter(|&l| out.matrix.computed[l]).collect();
    assert!(!done.is_empty() && done.len() < 4, "{done:?}");
    for l in done {
        assert_eq!(out.matrix.patched[l], whole.patched[l], "row {l}");
    }
}

#[test]
fn a_drill_down_level_runs_as_one_command_or_as_array_tasks() {
    let dir = temp_dir("each");
    let (all, tasks) = (dir.join("all"), dir.join("tasks"));
    let each = ["--each", "--receiver", "2.1,1.0.v"];
    patch("tiny-qwen2", &all, &each);
    for k in 0..2 {
        let shard = format!("{k}/2");
        let mut args = each.to_vec();
        args.extend(["--shard", &shard]);
        patch("tiny-qwen2", &tasks, &args);
    }
    for r in ["2.1.q", "2.1.k", "2.1.v", "1.0.v"] {
        let alone = dir.join(format!("alone-{r}.json"));
        patch("tiny-qwen2", &alone, &["--receiver", r]);
        let file = format!("{r}.json");
        assert_same(&alone, &all.join(&file));
        assert_same(&alone, &tasks.join(&file));
    }
    let fx = fixture("tiny-qwen2");
    let data = fx.join("addition.jsonl");
    let base = [
        "patch",
        "--model",
        path_str(&fx),
        "--data",
        path_str(&data),
        "--each",
    ];
    let with = |extra: &[&'static str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let file = all.join("2.1.q.json");
    for (extra, needle) in [
        (
            with(&["--receiver", "resid_post:2", "--out", "x"]),
            "--each runs head receivers",
        ),
        (
            with(&["--receiver", "2.1.q,2.1.q", "--out", "x"]),
            "given twice",
        ),
        (with(&["--receiver", "2.1.q"]), "give --out DIR"),
    ] {
        let args: Vec<&str> = extra.iter().map(String::as_str).collect();
        refused(&args, needle);
    }
    let mut args = base.to_vec();
    args.extend(["--receiver", "2.1.q", "--out", path_str(&file)]);
    refused(&args, "into a folder");
}

#[test]
fn merged_scan_shards_equal_the_unsharded_scan() {
    for (i, kind) in ["heads", "resid"].iter().enumerate() {
        let dir = temp_dir(&format!("scanshards{i}"));
        let fx = fixture("tiny-llama");
        let data = fx.join("addition.jsonl");
        let scan = |out: &Path, extra: &[&str]| {
            let mut args = vec![
                "scan",
                "--model",
                path_str(&fx),
                "--data",
                path_str(&data),
                "--kind",
                kind,
                "--quiet",
                "--out",
                path_str(out),
            ];
            args.extend_from_slice(extra);
            let (code, err) = headhunt(&args, &[]);
            assert_eq!(code, 0, "scan {kind} {extra:?}: {err}");
        };
        let whole = dir.join("whole.json");
        scan(&whole, &[]);
        for k in 0..3 {
            let shard = format!("{k}/3");
            scan(&dir.join(format!("parts/s{k}.json")), &["--shard", &shard]);
        }
        let merged = dir.join("merged.json");
        let parts = dir.join("parts");
        let (code, err) = headhunt(
            &["merge", path_str(&parts), "--out", path_str(&merged)],
            &[],
        );
        assert_eq!(code, 0, "{err}");
        assert_same(&whole, &merged);
        // A scan part and a path-patching part do not merge.
        let run = dir.join("run.json");
        patch("tiny-llama", &run, &["--shard", "0/3"]);
        let s0 = parts.join("s0.json");
        refused(
            &[
                "merge",
                path_str(&s0),
                path_str(&run),
                "--out",
                path_str(&dir.join("x.json")),
            ],
            "a scan part among path-patching parts",
        );
    }
}

/// `--place layers`: one model, its layers split over the devices (pipeline placement). Over two
/// CPU devices the same code runs as over two GPUs — every layer op takes its inputs to the
/// layer's device and brings results home — and the numbers equal one device's, bit for bit.
#[test]
fn layers_placed_over_two_cpu_devices_equal_one_device() {
    let cases: [(&str, &[&str]); 4] = [
        ("tiny-llama", &["--receiver", "resid_post:3"]),
        (
            "tiny-mistral",
            &["--receiver", "2.0.q", "--algorithm", "reference"],
        ),
        ("tiny-pythia", &["--senders", "heads,mlp", "--metric", "kl"]),
        (
            "tiny-gemma2",
            &["--receiver", "3.1.v", "--chunk-rows", "64"],
        ),
    ];
    for (i, (fx, extra)) in cases.iter().enumerate() {
        let dir = temp_dir(&format!("placed{i}"));
        let (one, placed) = (dir.join("one.json"), dir.join("placed.json"));
        patch(fx, &one, extra);
        let mut args = extra.to_vec();
        args.extend(["--device", "cpu,cpu", "--place", "layers"]);
        patch(fx, &placed, &args);
        assert_same(&one, &placed);
        let rec = headhunt::results::RunRecord::load(&placed).unwrap();
        assert_eq!(
            rec.model.unwrap().device,
            "cpu+cpu",
            "{fx}: one model on two devices"
        );
    }
}

/// A command that runs one model (here `scan`) takes a device list with `--place layers`.
#[test]
fn a_scan_on_a_placed_model_equals_one_device() {
    let fx = fixture("tiny-llama");
    let data = fx.join("addition.jsonl");
    let dir = temp_dir("placedscan");
    let (one, placed) = (dir.join("one.json"), dir.join("placed.json"));
    for (out, devices) in [
        (&one, &["--device", "cpu"][..]),
        (&placed, &["--device", "cpu,cpu", "--place", "layers"][..]),
    ] {
        let mut args = vec!["scan", "--kind", "heads", "--model", path_str(&fx)];
        args.extend(["--data", path_str(&data), "--quiet", "--out", path_str(out)]);
        args.extend(devices);
        let (code, err) = headhunt(&args, &[]);
        assert_eq!(code, 0, "{err}");
    }
    assert_same(&one, &placed);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&placed).unwrap()).unwrap();
    assert_eq!(v["model"]["device"], "cpu+cpu");
}

/// `--place layers:2` over four devices: two copies (workers), each over two devices.
#[test]
fn groups_of_placed_devices_are_workers() {
    let dir = temp_dir("placedgroups");
    let (one, groups) = (dir.join("one.json"), dir.join("groups.json"));
    patch("tiny-llama", &one, &[]);
    patch(
        "tiny-llama",
        &groups,
        &["--device", "cpu,cpu,cpu,cpu", "--place", "layers:2"],
    );
    assert_same(&one, &groups);
    let rec = headhunt::results::RunRecord::load(&groups).unwrap();
    assert_eq!(rec.model.unwrap().device, "cpu+cpu,cpu+cpu");
}

/// `cpu+cpu,cpu+cpu` says what `--place layers:2` does (and what results record); `+` with
/// `--place` is refused.
#[test]
fn plus_groups_are_placed_copies() {
    let dir = temp_dir("plusgroups");
    let (one, plus) = (dir.join("one.json"), dir.join("plus.json"));
    patch("tiny-qwen2", &one, &[]);
    patch("tiny-qwen2", &plus, &["--device", "cpu+cpu,cpu+cpu"]);
    assert_same(&one, &plus);
    let rec = headhunt::results::RunRecord::load(&plus).unwrap();
    assert_eq!(rec.model.unwrap().device, "cpu+cpu,cpu+cpu");
    let fx = fixture("tiny-qwen2");
    let args = [
        "info",
        "--model",
        path_str(&fx),
        "--device",
        "cpu+cpu",
        "--place",
        "layers",
    ];
    let (code, err) = headhunt(&args, &[]);
    assert_one_line_error(code, &err, &["`+` already places", "--place layers"]);
    let (code, err) = headhunt(&["info", "--model", path_str(&fx), "--device", "cpu+"], &[]);
    assert_one_line_error(code, &err, &["an empty device"]);
}

/// The engine itself: a model placed over three devices keeps its layers where the map says,
/// and its forward pass, hooks included, equals the one-device model's.
#[test]
fn a_placed_model_runs_like_one_on_a_single_device() {
    use headhunt::model::{Capture, HookName, HookPoint, Hooks, RunOptions, Start};
    let dir = fixture("tiny-llama");
    let opts = model::source::LoadOptions::default();
    let load = |devices: &[Device]| {
        model::source::load_with_progress(
            dir.to_str().unwrap(),
            &opts,
            devices,
            DType::F32,
            &mut |_, _| {},
        )
        .unwrap()
    };
    let one = load(&[Device::Cpu]);
    let placed = load(&[Device::Cpu, Device::Cpu, Device::Cpu]);
    let map = placed.model.device_map();
    assert_eq!(map.devices().len(), 3);
    let ranges = map.ranges();
    assert_eq!(ranges.len(), 3, "{ranges:?}");
    assert_eq!(
        (ranges[0].1, ranges[2].2),
        (0, 3),
        "every layer placed: {ranges:?}"
    );
    assert!(!one.model.device_map().is_split());
    let ids = one.tokenizer.encode("1+1=3\n2+2=5\n3+3=").unwrap();
    let run = |lm: &model::LoadedModel| {
        let tokens = lm.model.tokens_tensor(std::slice::from_ref(&ids)).unwrap();
        let hook = HookName::Layer(2, HookPoint::Z);
        let mut hooks = Hooks::capture(Capture::only([hook]));
        let out = lm
            .model
            .run(Start::Tokens(&tokens), RunOptions::default(), &mut hooks)
            .unwrap();
        let z = hooks.cache.get(hook).unwrap().clone();
        (flat(&out.logits.unwrap()), flat(&z))
    };
    assert_eq!(run(&one), run(&placed));
}

#[test]
fn a_placement_that_cannot_be_made_is_one_clear_error() {
    let fx = fixture("tiny-mistral");
    let model = path_str(&fx);
    for (args, needles) in [
        (
            vec![
                "info", "--model", model, "--device", "cpu,cpu", "--place", "layers:3",
            ],
            vec!["--place layers:3", "do not divide the 2 devices"],
        ),
        (
            vec![
                "info", "--model", model, "--device", "cpu,cpu", "--place", "rows",
            ],
            vec!["--place", "copies, layers or layers:N"],
        ),
        (
            vec![
                "info",
                "--model",
                model,
                "--device",
                "cpu,cpu,cpu,cpu",
                "--place",
                "layers",
            ],
            vec!["3 layers over 4 devices"],
        ),
        (
            vec!["info", "--model", model, "--device", "cpu,cpu"],
            vec!["--device cpu,cpu", "--place layers"],
        ),
    ] {
        let (code, err) = headhunt(&args, &[]);
        assert_one_line_error(code, &err, &needles);
    }
}

/// `info` on a placed model says which layers each device holds and each device's share of
/// the memory.
#[test]
fn info_prints_the_placement() {
    let fx = fixture("tiny-llama");
    let out = Command::new(bin())
        .args([
            "info",
            "--model",
            path_str(&fx),
            "--device",
            "cpu,cpu",
            "--place",
            "layers",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("placement"))
        .unwrap_or_else(|| panic!("no placement line: {text}"));
    assert!(
        line.contains("layers 0-")
            && line.contains("-3 on cpu")
            && line.contains("with the embeddings"),
        "{line}"
    );
}
