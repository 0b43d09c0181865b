#![no_main]
//! cargo-fuzz target: [`statesync_api::fuzz_checks::chain_config`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| statesync_api::fuzz_checks::chain_config(data));
