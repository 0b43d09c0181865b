//! The `statesync` binary end to end on a small shape: apply (valid and
//! rejected batches), prove, verify, and a tampered proof file.

use std::{path::Path, process::Command};

use statesync_circuits::examples;

fn statesync(data: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_statesync"))
        .args(args)
        .env("STATESYNC_DATA_DIR", data)
        // SRS and keys: the shared, content-addressed test cache
        .env("STATESYNC_CACHE_DIR", env!("CARGO_TARGET_TMPDIR"))
        .output()
        .expect("statesync runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn apply_prove_verify_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let chain = dir.join("chain.json");
    std::fs::write(&chain, serde_json::to_string_pretty(&examples::chain_with(11, 3)).unwrap()).unwrap();
    let invalid = dir.join("invalid.json");
    std::fs::write(&invalid, examples::BATCH_INVALID_JSON).unwrap();
    let valid = dir.join("valid.json");
    std::fs::write(&valid, examples::BATCH_VALID_JSON).unwrap();
    let malformed = dir.join("malformed.json");
    std::fs::write(
        &malformed,
        r#"{"version": 1, "chain_id": "perps-devnet-1", "seq": 0, "transitions": [{"type": "deposit"}]}"#,
    )
    .unwrap();
    let (c, s, d) = (chain.to_str().unwrap(), dir.join("state"), dir.join("data"));
    let state = s.to_str().unwrap();

    let (code, out, _) = statesync(&d, &["apply", "--chain", c, "--state-dir", state, invalid.to_str().unwrap()]);
    assert_eq!(code, 2);
    let err: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (err["index"].as_u64(), err["type"].as_str(), err["rule"].as_str()),
        (Some(1), Some("withdraw"), Some("initial_margin"))
    );

    let (code, out, _) = statesync(&d, &["apply", "--chain", c, "--state-dir", state, malformed.to_str().unwrap()]);
    assert_eq!(code, 2);
    let err: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(err["rule"], "malformed");
    assert!(err["message"].as_str().unwrap().contains("line 1"), "serde's location is reported: {err}");

    let (code, out, err) = statesync(&d, &["apply", "--chain", c, "--state-dir", state, valid.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let applied: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(applied["seq"], 0);

    let proof = dir.join("proof.json");
    let p = proof.to_str().unwrap();
    let (code, _, err) = statesync(&d, &["prove", "--chain", c, "--state-dir", state, "--seq", "0", "--out", p]);
    assert_eq!(code, 0, "{err}");
    let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&proof).unwrap()).unwrap();
    assert_eq!(file["public_inputs"]["new_root"], applied["new_root"], "the proof proves the root apply reported");
    assert_eq!(file["public_inputs"]["old_root"], applied["old_root"]);

    let (code, out, err) = statesync(&d, &["verify", "--chain", c, p]);
    assert_eq!(code, 0, "{out}{err}");

    // flip one byte in the middle of the proof
    let mut tampered = file.clone();
    let mut hex = tampered["proof"].as_str().unwrap().to_string();
    let mid = hex.len() / 2;
    let flipped = if &hex[mid..mid + 1] == "0" { "1" } else { "0" };
    hex.replace_range(mid..mid + 1, flipped);
    tampered["proof"] = hex.into();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, tampered.to_string()).unwrap();
    let (code, out, _) = statesync(&d, &["verify", "--chain", c, bad.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");

    // a tampered public input
    let mut lying = file.clone();
    lying["public_inputs"]["new_root"] = file["public_inputs"]["old_root"].clone();
    std::fs::write(&bad, lying.to_string()).unwrap();
    assert_eq!(statesync(&d, &["verify", "--chain", c, bad.to_str().unwrap()]).0, 1);

    // proving a batch that was never applied is invalid input
    assert_eq!(statesync(&d, &["prove", "--chain", c, "--state-dir", state, "--seq", "5", "--out", p]).0, 2);
}
