//! The documented examples under `examples/`, embedded: the default chain
//! (the service's and the demo's embedded default) and two batches.

use sha2::{Digest, Sha256};

use crate::{config::ChainConfig, eddsa::SecretKey, transition::Batch};

/// `examples/chain.json`.
pub const CHAIN_JSON: &str = include_str!("../../examples/chain.json");
/// `examples/batch-valid.json`: every transition type, applies on genesis.
pub const BATCH_VALID_JSON: &str = include_str!("../../examples/batch-valid.json");
/// `examples/batch-invalid.json`: rejected at index 1 (withdraw, initial_margin).
pub const BATCH_INVALID_JSON: &str = include_str!("../../examples/batch-invalid.json");
/// `examples/invalid/RULE.json`: batches each refused by one authorization
/// or oracle rule, with the index of the refused transition. All apply to the
/// genesis but `expired`, which follows `batch-valid.json` (seq 1).
pub const INVALID_BY_RULE: [(&str, usize, &str); 8] = [
    ("bad_signature", 0, include_str!("../../examples/invalid/bad_signature.json")),
    ("order_limit", 0, include_str!("../../examples/invalid/order_limit.json")),
    ("order_filled", 1, include_str!("../../examples/invalid/order_filled.json")),
    ("nonce", 1, include_str!("../../examples/invalid/nonce.json")),
    ("expired", 0, include_str!("../../examples/invalid/expired.json")),
    ("oracle_quorum", 0, include_str!("../../examples/invalid/oracle_quorum.json")),
    ("oracle_median", 0, include_str!("../../examples/invalid/oracle_median.json")),
    ("oracle_stale", 1, include_str!("../../examples/invalid/oracle_stale.json")),
];

/// The example chain.
pub fn chain() -> ChainConfig {
    ChainConfig::from_json(CHAIN_JSON).expect("the embedded example chain is valid")
}

/// The example chain with another capacity and depth (and no more oracle
/// updates than the capacity).
pub fn chain_with(capacity: usize, depth: usize) -> ChainConfig {
    let mut c = chain();
    c.shape.capacity = capacity;
    c.shape.depth = depth;
    c.shape.oracle_updates = c.shape.oracle_updates.min(capacity);
    c
}

/// The smallest useful chain: the example's first market, no option series,
/// its first scenario, its genesis and oracles, but no room for oracle
/// updates (marks never change), with `capacity` and `depth`. The epoch
/// tests of the prover and of the service aggregate proofs of
/// `tiny_chain("epoch-chain", 1, 3)`, so they share one epoch key.
pub fn tiny_chain(chain_id: &str, capacity: usize, depth: usize) -> ChainConfig {
    let mut c = chain_with(capacity, depth);
    c.chain_id = chain_id.into();
    c.shape.markets = 1;
    c.shape.series = 0;
    c.shape.scenarios = 1;
    c.shape.oracle_updates = 0;
    c.markets.truncate(1);
    c.series.clear();
    c.scenarios.truncate(1);
    c
}

/// The valid example batch.
pub fn batch_valid() -> Batch {
    Batch::from_json(BATCH_VALID_JSON).expect("the embedded example batch is valid JSON")
}

/// The secret key of example account `id`: the 32 bytes
/// SHA-256("statesync example account" ‖ `id` as 8 bytes little-endian).
/// Published, so for examples and tests only: `examples/chain.json` gives
/// accounts 1–5 these keys, and the example batches are signed with them.
pub fn secret(id: u64) -> SecretKey {
    example_key(b"statesync example account", id)
}

/// The secret key of example oracle `i`: SHA-256("statesync example
/// oracle" ‖ `i` as 8 bytes little-endian). Published, like [`secret`]:
/// `examples/chain.json` lists oracles 0–2 with these keys, and the example
/// batches' quotes are signed with them.
pub fn oracle_secret(i: u32) -> SecretKey {
    example_key(b"statesync example oracle", u64::from(i))
}

fn example_key(label: &[u8], id: u64) -> SecretKey {
    let mut h = Sha256::new();
    h.update(label);
    h.update(id.to_le_bytes());
    SecretKey::from_bytes(h.finalize().into())
}

/// `batch` for the chain `cfg`: its chain id, and every signature signed
/// again with the example key of its account ([`secret`]) or oracle
/// ([`oracle_secret`]) for `cfg`'s tag (a chain of another shape has
/// another tag).
pub fn signed_for(batch: &Batch, cfg: &ChainConfig) -> Batch {
    let tag = cfg.tag();
    let transitions = batch
        .transitions
        .iter()
        .map(|t| t.clone().signed_by(|id| Some(secret(id)), tag).quotes_signed_by(|i| Some(oracle_secret(i)), tag))
        .collect();
    Batch { chain_id: cfg.chain_id.clone(), transitions, ..batch.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{engine::apply_batch, transition::Kind};

    #[test]
    fn valid_example_applies_with_every_type() {
        let cfg = chain();
        let st = cfg.genesis_state();
        let b = batch_valid();
        let mut kinds: Vec<Kind> = b.transitions.iter().map(|t| t.kind()).collect();
        kinds.sort();
        kinds.dedup();
        assert_eq!(kinds.len(), 10, "every transition type appears");
        let out = apply_batch(&st, &cfg.chain_id, &b).expect("valid example applies");
        assert_eq!(out.witness.public.liquidations, 1);
        assert_eq!(out.witness.public.old_root, st.root());
        assert_eq!(out.witness.public.new_root, out.state.root());
        assert_ne!(st.root(), out.state.root());
    }

    #[test]
    fn example_keys_and_signatures_are_the_published_ones() {
        let cfg = chain();
        for a in &cfg.genesis.accounts {
            assert_eq!(a.key, Some(secret(a.id).public()), "account {}", a.id);
        }
        for (i, key) in cfg.oracles.keys.iter().enumerate() {
            assert_eq!(*key, oracle_secret(i as u32).public(), "oracle {i}");
        }
        // signatures are deterministic: signing the examples again changes nothing
        for json in [BATCH_VALID_JSON, BATCH_INVALID_JSON].into_iter().chain(INVALID_BY_RULE.iter().map(|e| e.2)) {
            let b = Batch::from_json(json).unwrap();
            if json == INVALID_BY_RULE[0].2 {
                continue; // signed by the wrong key on purpose
            }
            assert_eq!(signed_for(&b, &cfg), b);
        }
    }

    #[test]
    fn each_invalid_example_is_refused_by_its_rule() {
        let cfg = chain();
        let genesis = cfg.genesis_state();
        let after_valid = apply_batch(&genesis, &cfg.chain_id, &batch_valid()).unwrap().state;
        for (rule, index, json) in INVALID_BY_RULE {
            let b = Batch::from_json(json).unwrap();
            let st = if rule == "expired" { &after_valid } else { &genesis };
            let e = apply_batch(st, &cfg.chain_id, &b).unwrap_err();
            assert_eq!((e.index, e.rule.as_str()), (Some(index), rule), "{}", e.message);
        }
    }

    #[test]
    fn the_tiny_chain_is_valid() {
        let c = tiny_chain("t", 1, 3);
        c.validate().unwrap();
        assert_eq!((c.markets.len(), c.series.len(), c.scenarios.len(), c.shape.capacity), (1, 0, 1, 1));
    }

    #[test]
    fn invalid_example_is_rejected_and_names_the_rule() {
        let cfg = chain();
        let st = cfg.genesis_state();
        let b = Batch::from_json(BATCH_INVALID_JSON).unwrap();
        let e = apply_batch(&st, &cfg.chain_id, &b).unwrap_err();
        assert_eq!((e.index, e.kind.as_str(), e.rule.as_str()), (Some(1), "withdraw", "initial_margin"));
    }
}
