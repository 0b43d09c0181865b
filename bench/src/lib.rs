//! statesync-bench: the benchmark CLI (DESIGN.md §7). Nothing is implemented
//! yet: the benchmark issue fills this crate.
