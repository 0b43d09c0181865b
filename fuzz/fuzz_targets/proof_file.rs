#![no_main]
//! cargo-fuzz target: [`statesync_api::fuzz_checks::proof_file`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| statesync_api::fuzz_checks::proof_file(data));
