#![no_main]
//! cargo-fuzz target: requests through the whole router
//! ([`statesync_api::fuzz_checks::HttpCheck`]).

use std::sync::OnceLock;

use statesync_api::fuzz_checks::HttpCheck;

static CHECK: OnceLock<HttpCheck> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    CHECK.get_or_init(HttpCheck::new).check(data);
});
