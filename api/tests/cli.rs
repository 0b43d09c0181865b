//! The `statesync` binary end to end on a small shape: apply (valid and
//! rejected batches), prove, verify, and a tampered proof file; account keys
//! and signed transitions and orders made with `statesync account` and
//! `statesync sign`, applied, refused by their rules, and proven.

use std::{path::Path, process::Command};

use statesync_circuits::{examples, transition::Batch};
use statesync_testkit::test_cache_dir;

fn statesync(data: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_statesync"))
        .args(args)
        .env("STATESYNC_DATA_DIR", data)
        // SRS and keys: the shared, content-addressed test cache
        .env("STATESYNC_CACHE_DIR", test_cache_dir!())
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
    let cfg = examples::chain_with(12, 3);
    std::fs::write(&chain, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
    // the example batches, signed for this shape's chain tag
    let signed = |json: &str| serde_json::to_string(&examples::signed_for(&Batch::from_json(json).unwrap(), &cfg));
    let invalid = dir.join("invalid.json");
    std::fs::write(&invalid, signed(examples::BATCH_INVALID_JSON).unwrap()).unwrap();
    let valid = dir.join("valid.json");
    std::fs::write(&valid, signed(examples::BATCH_VALID_JSON).unwrap()).unwrap();
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
        (err["type"].as_str(), err["index"].as_u64(), err["transition"].as_str(), err["rule"].as_str()),
        (Some("rejected"), Some(1), Some("withdraw"), Some("initial_margin"))
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

#[test]
fn accounts_and_signed_transitions_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let d = dir.join("data");
    let key_file = dir.join("alice.key");
    let kf = key_file.to_str().unwrap();
    let (code, out, err) = statesync(&d, &["account", "new", "--key-file", kf]);
    assert_eq!(code, 0, "{err}");
    let public: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let key = public["public_key"].as_str().unwrap().to_string();
    assert_eq!(statesync(&d, &["account", "new", "--key-file", kf]).0, 2, "an existing key file is never overwritten");
    let (code, out, _) = statesync(&d, &["account", "public", "--key-file", kf]);
    assert_eq!((code, out.trim()), (0, public.to_string().as_str()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    }

    // a chain whose account 1 holds the new key
    let mut cfg = examples::chain_with(2, 3);
    cfg.genesis.accounts[0].key = Some(key.parse().unwrap());
    let chain = dir.join("chain.json");
    std::fs::write(&chain, serde_json::to_string(&cfg).unwrap()).unwrap();
    let (c, state) = (chain.to_str().unwrap(), dir.join("state"));
    let sign = |nonce: &str| {
        let args =
            ["sign", "withdraw", "--chain", c, "--key-file", kf, "--account", "1", "--amount", "5", "--nonce", nonce];
        let (code, out, err) = statesync(&d, &args);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<serde_json::Value>(out.trim()).unwrap()
    };
    let apply = |seq: u64, t: &serde_json::Value| {
        let batch = dir.join(format!("batch-{seq}.json"));
        let body = serde_json::json!({"version": 1, "chain_id": cfg.chain_id, "seq": seq, "transitions": [t]});
        std::fs::write(&batch, body.to_string()).unwrap();
        statesync(&d, &["apply", "--chain", c, "--state-dir", state.to_str().unwrap(), batch.to_str().unwrap()])
    };
    let first = sign("0");
    assert_eq!((first["type"].as_str(), first["nonce"].as_u64()), (Some("withdraw"), Some(0)));
    let (code, _, err) = apply(0, &first);
    assert_eq!(code, 0, "{err}");
    // replayed, the same signed withdrawal is refused by its nonce
    let (code, out, _) = apply(1, &first);
    assert_eq!(code, 2);
    let e: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(e["rule"], "nonce", "{e}");
    let (code, _, err) = apply(1, &sign("1"));
    assert_eq!(code, 0, "{err}");
    // another key's signature is refused
    let mut forged = sign("2");
    let other = examples::secret(9).public();
    let other_file = dir.join("other.key");
    std::fs::write(&other_file, format!("{}\n", examples::secret(9))).unwrap();
    let args = [
        "sign",
        "withdraw",
        "--chain",
        c,
        "--key-file",
        other_file.to_str().unwrap(),
        "--account",
        "1",
        "--amount",
        "5",
        "--nonce",
        "2",
    ];
    let (code, out, _) = statesync(&d, &args);
    assert_eq!(code, 0);
    forged["signature"] = serde_json::from_str::<serde_json::Value>(out.trim()).unwrap()["signature"].clone();
    let (code, out, _) = apply(2, &forged);
    assert_eq!(code, 2);
    assert_eq!(serde_json::from_str::<serde_json::Value>(out.trim()).unwrap()["rule"], "bad_signature");
    // a key change: signed with the current key, to another's public key
    let args = [
        "sign",
        "set-key",
        "--chain",
        c,
        "--key-file",
        kf,
        "--account",
        "1",
        "--new-key",
        &other.to_string(),
        "--nonce",
        "2",
    ];
    let (code, out, err) = statesync(&d, &args);
    assert_eq!(code, 0, "{err}");
    let set: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let (code, _, err) = apply(2, &set);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        statesync(&d, &["sign", "withdraw", "--account", "1", "--amount", "1", "--nonce", "0"]).0,
        2,
        "sign needs a chain and a key"
    );

    // a trade: account 1 (now holding the other key) buys from account 2, each on its signed order
    let maker_file = dir.join("maker.key");
    std::fs::write(&maker_file, format!("{}\n", examples::secret(2))).unwrap();
    let order = |key: &Path, account: &str, size: &str, price: &str, id: &str| {
        let args = [
            "sign",
            "order",
            "--chain",
            c,
            "--key-file",
            key.to_str().unwrap(),
            "--kind",
            "trade",
            "--account",
            account,
            "--asset",
            "0",
            "--size",
            size,
            "--price",
            price,
            "--max-fee",
            "1",
            "--expiry",
            "10",
            "--id",
            id,
        ];
        let (code, out, err) = statesync(&d, &args);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<serde_json::Value>(out.trim()).unwrap()
    };
    let trade = |size: &str, price: &str, taker: &serde_json::Value, maker: &serde_json::Value| {
        serde_json::json!({"type": "trade", "market": 0, "taker": 1, "maker": 2, "size": size, "price": price,
            "taker_fee": "0.5", "taker_order": taker, "maker_order": maker})
    };
    let buy = order(&other_file, "1", "0.02", "64100", "7");
    assert_eq!((buy["size"].as_str(), buy["id"].as_u64()), (Some("0.02"), Some(7)));
    let sell = order(&maker_file, "2", "-0.05", "63900", "3");
    let (code, out, err) = apply(3, &trade("0.01", "64000", &buy, &sell));
    assert_eq!(code, 0, "{out}{err}");
    // filled by 0.01 of 0.02: 0.015 more is past its size; above its limit; altered after signing
    let rule = |seq: u64, t: serde_json::Value| {
        let (code, out, _) = apply(seq, &t);
        assert_eq!(code, 2, "{out}");
        serde_json::from_str::<serde_json::Value>(out.trim()).unwrap()["rule"].as_str().unwrap().to_string()
    };
    assert_eq!(rule(4, trade("0.015", "64000", &buy, &sell)), "order_filled");
    assert_eq!(rule(4, trade("0.01", "64200", &buy, &sell)), "order_limit");
    let mut altered = buy.clone();
    altered["price"] = "65000".into();
    assert_eq!(rule(4, trade("0.01", "64000", &altered, &sell)), "bad_signature");

    // an oracle update: quotes signed by the chain's oracles 0 and 2 (the quorum is 2)
    let quote = |oracle: u32, price: &str, timestamp: &str| {
        let key = dir.join(format!("oracle{oracle}.key"));
        std::fs::write(&key, format!("{}\n", examples::oracle_secret(oracle))).unwrap();
        let args = [
            "sign",
            "oracle",
            "--chain",
            c,
            "--key-file",
            key.to_str().unwrap(),
            "--kind",
            "oracle_price",
            "--oracle",
            &oracle.to_string(),
            "--asset",
            "0",
            "--timestamp",
            timestamp,
            "--price",
            price,
        ];
        statesync(&d, &args)
    };
    let signed = |oracle: u32, price: &str| {
        let (code, out, err) = quote(oracle, price, "1796000000");
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<serde_json::Value>(out.trim()).unwrap()
    };
    let update = |price: &str, quotes: Vec<serde_json::Value>| {
        serde_json::json!({"type": "oracle_price", "market": 0, "price": price, "timestamp": 1796000000u64,
            "quotes": quotes})
    };
    let (low, high) = (signed(0, "63000"), signed(2, "63500"));
    assert_eq!((low["oracle"].as_u64(), low["price"].as_str()), (Some(0), Some("63000")));
    assert_eq!(rule(4, update("63000", vec![low.clone()])), "oracle_quorum");
    assert_eq!(rule(4, update("63500", vec![low.clone(), high.clone()])), "oracle_median");
    let mut moved = high.clone();
    moved["price"] = "63400".into();
    assert_eq!(rule(4, update("63000", vec![low.clone(), moved])), "bad_signature");
    // the same update signed whole, JSON in and out, oracle by oracle
    let unsigned: Vec<serde_json::Value> = [(0, "63000"), (2, "63500")]
        .iter()
        .map(|(oracle, price)| serde_json::json!({"oracle": oracle, "price": price}))
        .collect();
    let mut whole = update("63000", unsigned);
    for oracle in ["0", "2"] {
        let file = dir.join("update.json");
        std::fs::write(&file, whole.to_string()).unwrap();
        let key = dir.join(format!("oracle{oracle}.key"));
        let args = ["sign", "transition", "--chain", c, "--key-file", key.to_str().unwrap(), "--oracle", oracle];
        let (code, out, err) = statesync(&d, &[&args[..], &[file.to_str().unwrap()]].concat());
        assert_eq!(code, 0, "{err}");
        whole = serde_json::from_str(out.trim()).unwrap();
    }
    assert_eq!(whole, update("63000", vec![low.clone(), high.clone()]), "signatures are deterministic");
    let (code, out, err) = apply(4, &whole);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(rule(5, update("63000", vec![low, high])), "oracle_stale");
    // a key that is not the named oracle's is refused before signing
    let (code, _, err) = quote(1, "63000", "1796000001");
    assert_eq!(code, 0, "{err}");
    let wrong = dir.join("oracle1.key");
    std::fs::rename(dir.join("oracle2.key"), &wrong).unwrap();
    let args = ["sign", "oracle", "--chain", c, "--key-file", wrong.to_str().unwrap()];
    let more = ["--kind", "oracle_price", "--oracle", "1", "--asset", "0", "--timestamp", "9", "--price", "1"];
    let (code, _, err) = statesync(&d, &[&args[..], &more[..]].concat());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not oracle 1's key"), "{err}");

    // the hand-signed trade and oracle update are proven and the proofs verify
    for seq in ["3", "4"] {
        let proof = dir.join(format!("batch{seq}.proof.json"));
        let p = proof.to_str().unwrap();
        let (code, _, err) =
            statesync(&d, &["prove", "--chain", c, "--state-dir", state.to_str().unwrap(), "--seq", seq, "--out", p]);
        assert_eq!(code, 0, "{err}");
        let (code, out, err) = statesync(&d, &["verify", "--chain", c, p]);
        assert_eq!(code, 0, "{out}{err}");
    }
}

/// `examples/batch-valid.bin` is `batch-valid.json` in bincode, exactly as
/// the README's table lays it out (the file was written from that table),
/// and `statesync apply` takes it as it takes the JSON.
#[test]
fn the_bincode_example_is_the_json_batch_byte_for_byte() {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/batch-valid.bin");
    let bytes = std::fs::read(&bin).unwrap();
    let json = examples::batch_valid();
    assert_eq!(Batch::from_bincode(&bytes).unwrap(), json, "decodes to the JSON batch");
    assert_eq!(json.to_bincode(), bytes, "and the JSON batch encodes to exactly these bytes");

    let dir = tempfile::tempdir().unwrap();
    let chain = dir.path().join("chain.json");
    std::fs::write(&chain, serde_json::to_string(&examples::chain()).unwrap()).unwrap();
    let applied: Vec<serde_json::Value> = ["bin", "json"]
        .iter()
        .map(|ext| {
            let state = dir.path().join(format!("state-{ext}"));
            let file = bin.with_extension(ext);
            let (code, out, err) = statesync(
                dir.path(),
                &[
                    "apply",
                    "--chain",
                    chain.to_str().unwrap(),
                    "--state-dir",
                    state.to_str().unwrap(),
                    file.to_str().unwrap(),
                ],
            );
            assert_eq!(code, 0, "{err}");
            serde_json::from_str(out.trim()).unwrap()
        })
        .collect();
    assert_eq!(applied[0], applied[1], "the same new root from either form");
}
