//! headhunt: path patching for LLMs, exact and fast, with a terminal explorer.
//!
//! Layers, data flowing one way: `model` (configs, weights, tokenizer, hookable forward) →
//! `error` (error text on one line) → `data` (tasks and prompt pairs) → `patching` (the paper's
//! algorithm, literal and fast; `demo`, the bundled model and dataset, sits beside it) and
//! `analysis` (circuit evaluation, ablation, function vectors) → `results` (files) → `worker` (the inference thread) → `tui` (the explorer). `cli` ties them
//! to subcommands and is the only module that knows clap or flag names; `tests/layering.rs`
//! checks that, and that the modules' imports have no cycle.

pub mod analysis;
pub mod cli;
pub mod data;
pub mod demo;
pub mod error;
pub mod model;
pub mod patching;
pub mod plot;
pub mod results;
pub mod tui;
pub mod worker;
