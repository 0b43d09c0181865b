//! statesync-bench: benchmarks that compare each figure with its baseline in
//! the same run and report ratios (DESIGN.md §7).

pub mod aggregate;
pub mod compare;
pub mod envinfo;
pub mod gpucheck;
pub mod kernels;
pub mod plot;
pub mod progress;
pub mod service;
pub mod stats;
