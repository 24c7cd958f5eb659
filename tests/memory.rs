//! Memory before work (`patching::memory`): the parameter count from a config alone, how the
//! estimate follows the settings, the refusal and the setting it suggests. The estimate
//! against real peaks is `tests/memory_peak.rs`.

mod common;

use common::*;
use headhunt::patching::memory::{self, check, estimate, DataShape, Fit, ModelShape, Placement};
use headhunt::patching::{Algorithm, Metric, PatchSpec, Receiver};
use std::path::Path;

fn spec(receiver: Receiver, batch_size: usize, chunk_rows: usize) -> PatchSpec {
    PatchSpec {
        receiver,
        begin_layer: 0,
        batch_size,
        algorithm: Algorithm::Fast,
        chunk_rows,
        metric: Metric::default(),
        senders: Default::default(),
    }
}

const CPU: Placement = Placement {
    devices: 1,
    split_layers: false,
    on_cpu: true,
};

fn load(model: &Path) -> headhunt::model::LoadedModel {
    headhunt::model::source::load(
        model.to_str().unwrap(),
        None,
        &candle_core::Device::Cpu,
        candle_core::DType::F32,
    )
    .unwrap()
}

#[test]
fn the_parameter_count_from_the_config_is_the_loaded_models() {
    let mut models: Vec<std::path::PathBuf> = ALL_FIXTURES.iter().map(|f| fixture(f)).collect();
    models.push(demo_model());
    for m in models {
        let lm = load(&m);
        let shape = ModelShape::of_config(&lm.model.cfg, 4, None);
        assert_eq!(
            shape.n_params,
            lm.model.n_params as u64,
            "{}: parameters counted from the config",
            m.display()
        );
        assert_eq!(shape, ModelShape::of(&lm.model), "{}", m.display());
    }
}

/// A Gemma-2-9B-shaped model in bf16 (42 layers, 16 heads, 8 kv heads, d_model 3584).
fn gemma_9b() -> ModelShape {
    ModelShape {
        n_layers: 42,
        n_heads: 16,
        n_kv_heads: 8,
        d_model: 3584,
        d_head: 256,
        d_mlp: 14336,
        vocab: 256000,
        n_params: 9_241_705_984,
        dtype_bytes: 2,
        source_bytes: None,
        source_bits: 16.0,
        global_params: 256000 * 3584 + 3584, // tied embeddings
    }
}

#[test]
fn the_estimate_follows_the_settings() {
    let shape = gemma_9b();
    let data = DataShape {
        n_prompts: 100,
        seq_len: 40,
        first_diff: 8,
    };
    let head = Receiver::parse_many(&["30.2.v".to_string()]).unwrap();
    let one = |s: &PatchSpec| estimate(&shape, s, data, CPU)[0];
    let streamed = one(&spec(head.clone(), 4, 0));
    let chunked = one(&spec(head.clone(), 4, 4096));
    // Every batch's caches while streaming layers; one batch's with chunks.
    assert_eq!(
        streamed.caches,
        25 * chunked.caches,
        "{streamed:?} {chunked:?}"
    );
    assert_eq!(streamed.weights, 2 * shape.n_params);
    // A larger batch: a larger working set, the same caches when every batch is kept.
    let big = one(&spec(head.clone(), 16, 0));
    assert!(big.working > streamed.working && big.caches == streamed.caches);
    // The literal algorithm keeps every layer's full z: more caches than the fast one.
    // (A head receiver's fast caches keep resid_pre and the attention output of every sender
    // layer as well, from the first differing position: they can exceed it.)
    let last = one(&spec(Receiver::resid_post(41), 4, 0));
    let literal = one(&PatchSpec {
        algorithm: Algorithm::Reference,
        ..spec(Receiver::resid_post(41), 4, 0)
    });
    assert!(literal.caches > 10 * last.caches, "{literal:?} {last:?}");
    // The last layer's resid_post keeps one position per prompt: far less than a head's.
    assert!(last.caches * 4 < streamed.caches, "{last:?} {streamed:?}");
    // The peak is loading or the sweep, whichever is larger, plus the runtime.
    let p = streamed;
    let sweep = p.weights + p.caches + p.working;
    assert_eq!(p.peak(), sweep.max(p.weights + p.loading) + p.runtime);
    // Layers split over 4 GPUs: each holds about a quarter of the weights; the caches stay on
    // the first device, where a placed model returns every result.
    let gpu = Placement {
        devices: 4,
        split_layers: true,
        on_cpu: false,
    };
    let split = estimate(&shape, &spec(head, 4, 0), data, gpu);
    assert_eq!(split.len(), 4);
    assert!(split[0].weights < streamed.weights / 2 && split[0].loading == 0);
    let quarter = streamed.weights / 4;
    for e in &split {
        assert!(
            e.weights.abs_diff(quarter) < quarter / 10,
            "{e:?} vs {quarter}"
        );
    }
    assert_eq!(split[0].caches, streamed.caches);
    assert!(split[1..].iter().all(|e| e.caches == 0));
    assert_eq!(
        split.iter().map(|e| e.weights).sum::<u64>(),
        streamed.weights,
        "every weight is on one device"
    );
}

#[test]
fn a_sweep_too_large_is_refused_with_a_setting_that_fits() {
    let shape = gemma_9b();
    let data = DataShape {
        n_prompts: 1000,
        seq_len: 60,
        first_diff: 0,
    };
    let head = Receiver::parse_many(&["30.2.v".to_string()]).unwrap();
    let s = spec(head, 8, 0);
    let need = estimate(&shape, &s, data, CPU)[0].peak();
    // Plenty: the estimates come back.
    let ok = check(&shape, &s, data, CPU, &[("cpu".into(), Some(need))]).unwrap();
    assert_eq!(ok[0].peak(), need);
    // Unknown free memory: nothing is refused.
    assert!(check(&shape, &s, data, CPU, &[("cpu".into(), None)]).is_ok());
    // Too little: refused, with the numbers and a setting whose estimate does fit.
    let free = need * 3 / 4;
    let e = check(&shape, &s, data, CPU, &[("cpu".into(), Some(free))]).unwrap_err();
    assert_eq!((e.available, e.estimate.peak()), (free, need));
    let fit = e.fit.expect("a setting that fits");
    assert!(e.fit_peak <= free && e.fit_peak > 0, "{e}");
    let fixed = match fit {
        Fit::BatchSize(b) => PatchSpec {
            batch_size: b,
            ..s.clone()
        },
        Fit::ChunkRows(c) => PatchSpec {
            chunk_rows: c,
            ..s.clone()
        },
        Fit::Devices(_) => panic!("CPU devices share one memory: more do not help"),
    };
    assert!(estimate(&shape, &fixed, data, CPU)[0].peak() <= free);
    let text = e.to_string();
    for needle in ["cpu:", "GiB at its peak", "available", "would need"] {
        assert!(text.contains(needle), "{text}");
    }
    assert_eq!(text.lines().count(), 1);
    // Less than the weights: nothing fits on one CPU; on GPUs, more devices do.
    let tiny = shape.weight_bytes() / 2;
    let e = check(&shape, &s, data, CPU, &[("cpu".into(), Some(tiny))]).unwrap_err();
    assert_eq!(e.fit, None, "{e}");
    let gpu = Placement {
        devices: 1,
        split_layers: false,
        on_cpu: false,
    };
    // A placed model keeps the caches on its first device: more devices help where the
    // weights are what does not fit (a few prompts), not the caches.
    let few = DataShape {
        n_prompts: 8,
        ..data
    };
    let e = check(&shape, &s, few, gpu, &[("cuda:0".into(), Some(tiny))]).unwrap_err();
    assert!(matches!(e.fit, Some(Fit::Devices(n)) if n >= 3), "{e}");
    let e = check(&shape, &s, data, gpu, &[("cuda:0".into(), Some(tiny))]).unwrap_err();
    assert_eq!(
        e.fit, None,
        "54 GiB of caches stay on the first device: {e}"
    );
}

#[test]
fn meminfo_is_read() {
    let text =
        "MemTotal:       24683136 kB\nMemFree:         1000 kB\nMemAvailable:   20000000 kB\n";
    assert_eq!(memory::meminfo_available(text), Some(20000000 * 1024));
    assert_eq!(memory::meminfo_available("MemTotal: 5 kB\n"), None);
    let here = memory::available(&candle_core::Device::Cpu).expect("/proc/meminfo");
    assert!(here > 1 << 20, "{here}");
}

#[test]
fn info_prints_the_estimate_for_patchs_defaults() {
    let out = std::process::Command::new(bin())
        .args(["info", "--model", fixture("tiny-llama").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("memory "))
        .unwrap_or_else(|| panic!("no memory line: {text}"));
    // The same number the API gives for patch's defaults.
    let lm = load(&fixture("tiny-llama"));
    let s = spec(Receiver::resid_post(3), 4, 0);
    let data = DataShape {
        n_prompts: 100,
        seq_len: 32,
        first_diff: 0,
    };
    let e = estimate(&ModelShape::of(&lm.model), &s, data, CPU)[0];
    let want = format!("~{} peak for patch's defaults", memory::gib(e.peak()));
    assert!(line.contains(&want), "{line:?} should hold {want:?}");
    assert!(
        line.ends_with(" free") && line.contains("GiB free"),
        "{line}"
    );
}

/// MLP senders keep the normal run's MLP output of every sender layer at the kept positions:
/// one d_model vector per layer, position and prompt more than heads only.
#[test]
fn mlp_senders_count_their_caches() {
    let shape = gemma_9b();
    let data = DataShape {
        n_prompts: 100,
        seq_len: 40,
        first_diff: 8,
    };
    let last = spec(Receiver::resid_post(41), 4, 0);
    let with_mlp = PatchSpec {
        senders: headhunt::patching::Senders::HeadsAndMlp,
        ..last.clone()
    };
    let heads = estimate(&shape, &last, data, CPU)[0].caches;
    let both = estimate(&shape, &with_mlp, data, CPU)[0].caches;
    // resid_post of the last layer keeps the last position only: 42 layers × 1 position.
    let extra = 100 * 42 * 3584 * 2;
    assert_eq!(both - heads, extra as u64, "{heads} {both}");
}
