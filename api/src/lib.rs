//! statesync-api: the HTTP service (`statesync serve`), its durable store and
//! workers (in process, or `statesync worker` processes), a Rust client, and
//! the `statesync` command line.

pub mod cli;
pub mod client;
pub mod config;
pub mod demo;
pub mod devices;
pub mod fuzz_checks;
pub mod http;
pub mod openapi;
pub mod serve;
pub mod service;
pub mod signing;
pub mod statedir;
pub mod store;
pub mod vkverify;
pub mod worker;
