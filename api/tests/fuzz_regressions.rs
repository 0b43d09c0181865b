//! The fuzz targets' properties (`statesync_api::fuzz_checks`) on the inputs
//! the normal suite must keep passing: every input under
//! `fuzz/regressions/<target>/` (a crasher `scripts/fuzz` found, committed
//! with its fix) and the documented examples, which seed the corpora.

use std::path::Path;

use statesync_api::fuzz_checks::{self, HttpCheck};
use statesync_circuits::examples::{BATCH_INVALID_JSON, BATCH_VALID_JSON, CHAIN_JSON, INVALID_BY_RULE};

#[test]
fn every_regression_input_and_example_passes_its_check() {
    let http = HttpCheck::new();
    let http_check = |data: &[u8]| {
        http.check(data);
    };
    type Check<'a> = &'a dyn Fn(&[u8]);
    let targets: [(&str, Check); 5] = [
        ("batch_json", &fuzz_checks::batch_json),
        ("batch_bincode", &fuzz_checks::batch_bincode),
        ("chain_config", &fuzz_checks::chain_config),
        ("proof_file", &fuzz_checks::proof_file),
        ("http", &http_check),
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
    for (target, check) in targets {
        let Ok(dir) = std::fs::read_dir(root.join(target)) else { continue };
        for entry in dir {
            let path = entry.unwrap().path();
            eprintln!("replaying {}", path.display());
            check(&std::fs::read(&path).unwrap());
        }
    }
    // the examples: accepted, and the same after every round trip
    for json in [BATCH_VALID_JSON, BATCH_INVALID_JSON].into_iter().chain(INVALID_BY_RULE.iter().map(|e| e.2)) {
        fuzz_checks::batch_json(json.as_bytes());
    }
    let bin = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/batch-valid.bin")).unwrap();
    fuzz_checks::batch_bincode(&bin);
    fuzz_checks::chain_config(CHAIN_JSON.as_bytes());
    // a batch through the router: method POST, the tiny chain's batches route, JSON
    let batch = statesync_testkit::deposit_batch("tiny", 0, 1, 5);
    let mut request = vec![1, 3, 0];
    request.extend(format!("\u{1}\u{1}\u{1}{}", serde_json::to_string(&batch).unwrap()).bytes());
    assert_eq!(http.check(&request), Some(axum::http::StatusCode::ACCEPTED), "the harness reaches the service");
}
