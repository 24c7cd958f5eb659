//! The memory estimate (`patching::memory`) against the real peak resident set of
//! `headhunt patch` runs: the fixtures, the demo model, and a real GGUF model where one is
//! cached. The estimate must be an upper bound, and at most [`FACTOR`] times the peak.
//!
//! The peaks are measured before this process loads any model: a child's `ru_maxrss` starts
//! from its parent's high-water mark when it is spawned (the exec replaces a copy of the
//! parent's memory, and Linux records that copy's peak), so a large test process would hide a
//! small child's peak. That is also why this is a test binary of its own, with one test.

mod common;

use common::*;
use headhunt::patching::memory::{estimate, DataShape, Estimate, ModelShape, Placement};
use headhunt::patching::{Algorithm, Metric, PatchSpec, Receiver};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The estimate may be at most this many times the measured peak (and never below it).
const FACTOR: f64 = 2.0;

/// One measured run: model, data, examples, receiver, batch size, chunk rows.
struct Run {
    model: PathBuf,
    data: PathBuf,
    examples: usize,
    receiver: &'static str,
    batch: usize,
    chunk: usize,
}

impl Run {
    fn spec(&self) -> PatchSpec {
        PatchSpec {
            receiver: Receiver::parse_many(&[self.receiver.to_string()]).unwrap(),
            begin_layer: 0,
            batch_size: self.batch,
            algorithm: Algorithm::Fast,
            chunk_rows: self.chunk,
            metric: Metric::default(),
            senders: Default::default(),
        }
    }

    /// `headhunt patch` of this run; its peak resident set (the child's VmHWM, as wait4
    /// reports it for that child alone).
    fn measure(&self) -> u64 {
        let dir = temp_dir("memory");
        let (b, c, n) = (
            self.batch.to_string(),
            self.chunk.to_string(),
            self.examples.to_string(),
        );
        // Reaped by wait4 below (which also reads the child's own peak), not by Child::wait.
        #[allow(clippy::zombie_processes)]
        let child = Command::new(bin())
            .arg("patch")
            .args(["--model", self.model.to_str().unwrap()])
            .args(["--data", self.data.to_str().unwrap()])
            .args(["--examples", &n, "--receiver", self.receiver])
            .args(["--batch-size", &b, "--chunk-rows", &c, "--quiet", "--out"])
            .arg(dir.join("run.json"))
            .env("RAYON_NUM_THREADS", "2")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id() as libc::pid_t;
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value; wait4 fills it for our own child, which
        // `child` never waits for (dropping a Child does not wait).
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        assert_eq!(got, pid, "wait4");
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "headhunt patch on {} failed (status {status})",
            self.model.display()
        );
        let _ = std::fs::remove_dir_all(dir);
        usage.ru_maxrss as u64 * 1024
    }

    /// The estimate, from the loaded model and the tokenized data (as `headhunt patch` would
    /// compute it), with the weight files' real size.
    fn estimate(&self) -> Estimate {
        let lm = headhunt::model::source::load(
            self.model.to_str().unwrap(),
            None,
            &candle_core::Device::Cpu,
            candle_core::DType::F32,
        )
        .unwrap();
        let mut spec =
            headhunt::data::DataSpec::new(&self.data, headhunt::data::TaskKind::Addition);
        spec.examples = Some(self.examples);
        let tok = headhunt::data::load_and_tokenize(&spec, &lm.tokenizer).unwrap();
        let mut shape = ModelShape::of(&lm.model);
        shape.source_bytes = Some(source_bytes(&self.model));
        let cpu = Placement {
            devices: 1,
            split_layers: false,
            on_cpu: true,
        };
        estimate(&shape, &self.spec(), DataShape::of(&tok.pairs), cpu)[0]
    }
}

/// The bytes of a model's weight files (what loading maps).
fn source_bytes(model: &Path) -> u64 {
    if model.is_file() {
        return std::fs::metadata(model).unwrap().len();
    }
    std::fs::read_dir(model)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "safetensors"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

fn run(model: PathBuf, data: PathBuf, examples: usize, receiver: &'static str) -> Run {
    Run {
        model,
        data,
        examples,
        receiver,
        batch: 4,
        chunk: 0,
    }
}

#[test]
fn the_estimate_bounds_the_measured_peak() {
    let llama = fixture("tiny-llama");
    let data = llama.join("addition.jsonl");
    let mut runs = vec![
        run(llama.clone(), data.clone(), 8, "resid_post:3"),
        Run {
            batch: 2,
            ..run(llama.clone(), data.clone(), 8, "3.1.q")
        },
        Run {
            chunk: 64,
            ..run(llama, data, 8, "2.0.k")
        },
        run(demo_model(), demo_data(), 100, "resid_post:2"),
        run(demo_model(), demo_data(), 100, "2.1.v"),
    ];
    let gguf = std::env::var_os("HOME")
        .map(|h| Path::new(&h).join(".cache/headhunt-models/SmolLM2-135M-Instruct.Q4_1.gguf"));
    match gguf {
        // Its peak is the sweep's (weights, every batch's caches, a working set), above
        // loading's (weights and the mapped file).
        Some(g) if g.is_file() => runs.push(run(g, demo_data(), 8, "20.3.v")),
        _ => eprintln!(
            "no cached SmolLM2-135M-Instruct.Q4_1.gguf: the estimate is checked on the fixtures only"
        ),
    }
    // Every peak first, while this process is small (see the module's comment).
    let peaks: Vec<u64> = runs.iter().map(Run::measure).collect();
    for (r, real) in runs.iter().zip(peaks) {
        let est = r.estimate();
        let ratio = est.peak() as f64 / real as f64;
        eprintln!(
            "{} {} batch {} chunk rows {}: measured {:.1} MiB, estimated {:.1} MiB ({ratio:.2}x) {est:?}",
            r.model.file_name().unwrap().to_string_lossy(),
            r.receiver,
            r.batch,
            r.chunk,
            real as f64 / 1048576.0,
            est.peak() as f64 / 1048576.0,
        );
        assert!(
            est.peak() >= real && ratio <= FACTOR,
            "{} {}: estimate {} vs measured peak {} ({ratio:.2}x; expected 1..{FACTOR})",
            r.model.display(),
            r.receiver,
            est.peak(),
            real
        );
    }
}
