#![no_main]
//! cargo-fuzz target: [`statesync_api::fuzz_checks::batch_bincode`].

libfuzzer_sys::fuzz_target!(|data: &[u8]| statesync_api::fuzz_checks::batch_bincode(data));
