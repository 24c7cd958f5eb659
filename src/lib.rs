//! headhunt: path patching for LLMs, exact and fast, with a terminal explorer.
//!
//! Layers, data flowing one way: `model` (configs, weights, tokenizer, hookable forward) →
//! `data` (tasks and prompt pairs) → `patching` (the paper's algorithm, literal and fast) →
//! `worker` (the inference thread) → `results` (files) → `tui` (the explorer). `cli` ties them
//! to subcommands.

pub mod cli;
pub mod data;
pub mod demo;
pub mod model;
pub mod patching;
pub mod plot;
pub mod results;
pub mod tui;
pub mod worker;
