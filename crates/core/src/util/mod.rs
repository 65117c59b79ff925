//! Small shared helpers: atomic file writes, time formats, a tiny local HTTP probe.

#[cfg(test)]
pub(crate) mod arb;
pub mod disk_full;
pub mod fs;
pub mod net;
pub mod probe;
pub mod sys;
pub mod time;
