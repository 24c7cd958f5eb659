//! The inference thread: jobs in, events out, cancellation; the numbers it reports are those
//! of a direct run.

mod common;

use common::*;
use headhunt::data::{DataSpec, TaskKind};
use headhunt::patching::{self, Algorithm, PatchEvent, PatchSpec, Receiver, Silent};
use headhunt::worker::{AttentionRequest, Event, Job, PromptChoice, RunKind, Worker};
use std::sync::mpsc;
use std::time::Duration;

fn next(rx: &mpsc::Receiver<Event>) -> Event {
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the worker answers")
}

fn load(worker: &Worker, rx: &mpsc::Receiver<Event>, model: &str, data: DataSpec) {
    worker.submit(Job::LoadModel(cpu_model_request(model)));
    worker.submit(Job::LoadData(data));
    let mut progress = 0;
    loop {
        match next(rx) {
            Event::Progress { done, total, .. } => {
                assert!(done <= total);
                progress += 1;
            }
            Event::ModelLoaded { info, .. } => assert!(info.n_layers > 0),
            Event::Evaluated {
                n,
                ld_normal,
                ld_contrast,
                ..
            } => {
                assert!(n > 0 && ld_normal.is_finite() && ld_contrast.is_finite());
                break;
            }
            Event::Error { message, .. } => panic!("{message}"),
            _ => {}
        }
    }
    assert!(progress > 0, "model loading reports its progress");
}

#[test]
fn patch_job_streams_rows_and_matches_a_direct_run() {
    let (tx, rx) = mpsc::channel();
    let worker = Worker::spawn(tx);
    let fx = fixture("tiny-gemma2");
    let spec = DataSpec::new(fx.join("addition.jsonl"), TaskKind::Addition);
    load(&worker, &rx, fx.to_str().unwrap(), spec.clone());
    let patch = PatchSpec {
        receiver: Receiver::resid_post(3),
        begin_layer: 0,
        batch_size: 4,
        algorithm: Algorithm::Fast,
        chunk_rows: 0,
        metric: Default::default(),
        senders: Default::default(),
    };
    let id = worker.submit(Job::Patch(patch.clone()));
    let mut rows = Vec::new();
    let record = loop {
        match next(&rx) {
            Event::Patch {
                id: i,
                event: PatchEvent::Row { layer, .. },
            } if i == id => rows.push(layer),
            Event::PatchDone { id: i, record } if i == id => break record,
            Event::Error { message, .. } => panic!("{message}"),
            _ => {}
        }
    };
    assert_eq!(rows, vec![3, 2, 1, 0], "rows arrive from the receiver down");
    assert!(record.complete);
    let lm = headhunt::model::load(
        fx.to_str().unwrap(),
        None,
        &candle_core::Device::Cpu,
        candle_core::DType::F32,
    )
    .unwrap();
    let pairs = headhunt::data::load_and_tokenize(&spec, &lm.tokenizer)
        .unwrap()
        .pairs;
    let direct = patching::run(&lm.model, &pairs, &patch, &mut Silent).unwrap();
    for l in 0..4 {
        for h in 0..4 {
            assert_eq!(record.patched(l, h).unwrap(), direct.matrix.patched[l][h]);
        }
    }
    // Attention: rows of probabilities over the visible keys.
    let id = worker.submit(Job::Attention(AttentionRequest {
        heads: vec![(2, 1), (0, 3)],
        run: RunKind::Contrast,
        prompts: PromptChoice::Mean(4),
    }));
    loop {
        match next(&rx) {
            Event::Attention {
                id: i,
                tokens,
                patterns,
                ..
            } if i == id => {
                assert_eq!(patterns.len(), 2);
                assert_eq!(patterns[0].len(), tokens.len());
                for row in &patterns[1] {
                    let s: f32 = row.iter().sum();
                    assert!((s - 1.0).abs() < 1e-4, "{s}");
                }
                break;
            }
            Event::Error { message, .. } => panic!("{message}"),
            _ => {}
        }
    }
    // A bad job is an error event, and the worker carries on.
    let id = worker.submit(Job::Attention(AttentionRequest {
        heads: vec![(9, 0)],
        run: RunKind::Normal,
        prompts: PromptChoice::One(0),
    }));
    loop {
        if let Event::Error { id: i, message } = next(&rx) {
            assert_eq!(i, id);
            assert!(message.contains("(9,0)"), "{message}");
            break;
        }
    }
}

#[test]
fn cancelling_keeps_the_finished_rows() {
    let (tx, rx) = mpsc::channel();
    let worker = Worker::spawn(tx);
    let fx = fixture("tiny-llama");
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/paper/addition/setting1/addition_nmax9_offset1.jsonl");
    load(
        &worker,
        &rx,
        fx.to_str().unwrap(),
        DataSpec::new(&data, TaskKind::Addition),
    );
    // The literal algorithm, one example per batch: seconds per sender layer.
    let id = worker.submit(Job::Patch(PatchSpec {
        receiver: Receiver::resid_post(3),
        begin_layer: 0,
        batch_size: 1,
        algorithm: Algorithm::Reference,
        chunk_rows: 0,
        metric: Default::default(),
        senders: Default::default(),
    }));
    let mut cancelled = false;
    let record = loop {
        match next(&rx) {
            Event::Patch {
                id: i,
                event: PatchEvent::Row { .. },
            } if i == id && !cancelled => {
                worker.cancel();
                cancelled = true;
            }
            Event::Cancelled { id: i } => assert_eq!(i, id),
            Event::PatchDone { id: i, record } if i == id => break record,
            Event::Error { message, .. } => panic!("{message}"),
            _ => {}
        }
    };
    assert!(!record.complete);
    assert!(
        !record.rows_computed.is_empty() && record.rows_computed.len() < 4,
        "{:?}",
        record.rows_computed
    );
}

#[test]
fn data_longer_than_the_model_positions_is_an_error_event() {
    // 32 three-digit demonstrations are ~400 characters: more than the demo model's 256
    // positions, which the explorer used to accept silently.
    let (tx, rx) = mpsc::channel();
    let worker = Worker::spawn(tx);
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/paper/addition/setting1/addition_nmax999_offset1.jsonl");
    let mut spec = DataSpec::new(file, TaskKind::Addition);
    spec.shots = 32;
    spec.offset = 1;
    spec.examples = Some(2);
    worker.submit(Job::LoadModel(cpu_model_request(
        &headhunt::demo::model_dir().display().to_string(),
    )));
    worker.submit(Job::LoadData(spec));
    loop {
        match next(&rx) {
            Event::Error { message, .. } => {
                assert!(
                    message.contains("addition_nmax999_offset1.jsonl:1")
                        && message.contains("at most 256 positions"),
                    "{message}"
                );
                break;
            }
            Event::Evaluated { .. } => panic!("a too-long prompt was evaluated"),
            _ => {}
        }
    }
}

/// The explorer's sweeps on a device list (`--device cpu,cpu`): a worker per copy, every row
/// streamed, the numbers of one device, the devices recorded; `cpu+cpu` places one model over
/// two devices, `cpu+cpu,cpu` adds a copy on a third.
#[test]
fn a_device_list_runs_the_sweep_on_every_copy_with_the_same_numbers() {
    for devices in ["cpu,cpu", "cpu+cpu", "cpu+cpu,cpu"] {
        sweep_on(devices);
    }
}

fn sweep_on(devices: &str) {
    let (tx, rx) = mpsc::channel();
    let worker = Worker::spawn(tx);
    let fx = fixture("tiny-gemma2");
    let spec = DataSpec::new(fx.join("addition.jsonl"), TaskKind::Addition);
    let mut request = cpu_model_request(fx.to_str().unwrap());
    request.device = devices.into();
    worker.submit(Job::LoadModel(request));
    worker.submit(Job::LoadData(spec.clone()));
    loop {
        match next(&rx) {
            Event::ModelLoaded { info, .. } => assert_eq!(info.device, devices),
            Event::Evaluated { .. } => break,
            Event::Error { message, .. } => panic!("{message}"),
            _ => {}
        }
    }
    let patch = PatchSpec {
        receiver: Receiver::parse_one("3.1.q").unwrap(),
        begin_layer: 0,
        batch_size: 3,
        algorithm: Algorithm::Fast,
        chunk_rows: 0,
        metric: Default::default(),
        senders: Default::default(),
    };
    let id = worker.submit(Job::Patch(patch.clone()));
    let mut rows = Vec::new();
    let record = loop {
        match next(&rx) {
            Event::Patch {
                id: i,
                event: PatchEvent::Row { layer, .. },
            } if i == id => rows.push(layer),
            Event::PatchDone { id: i, record } if i == id => break record,
            Event::Error { message, .. } => panic!("{message}"),
            _ => {}
        }
    };
    rows.sort_unstable();
    assert_eq!(
        rows,
        vec![0, 1, 2],
        "every sender row streams, from either worker"
    );
    assert_eq!(record.model.as_ref().unwrap().device, devices);
    let lm = headhunt::model::load(
        fx.to_str().unwrap(),
        None,
        &candle_core::Device::Cpu,
        candle_core::DType::F32,
    )
    .unwrap();
    let pairs = headhunt::data::load_and_tokenize(&spec, &lm.tokenizer)
        .unwrap()
        .pairs;
    let direct = patching::run(&lm.model, &pairs, &patch, &mut Silent).unwrap();
    for l in 0..3 {
        for h in 0..4 {
            assert_eq!(record.patched(l, h).unwrap(), direct.matrix.patched[l][h]);
        }
    }
}
