//! Position sets of circuit groups: which token positions of a prompt keep a group's heads
//! live. The paper keeps its function-induction and consolidation heads at every `=` and its
//! previous-token heads at each demonstration's answer (`ALGORITHMS.md` §4.1). The sets are
//! path patching's too, so they live in `data` (below both): [`crate::data::positions`].

pub use crate::data::positions::PositionSet;
