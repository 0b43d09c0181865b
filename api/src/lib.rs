//! statesync-api: the `statesync` command line (and, later, the HTTP service).

pub mod cli;
pub mod demo;
pub mod statedir;
