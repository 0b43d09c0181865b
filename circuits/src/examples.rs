//! The documented examples under `examples/`, embedded: the default chain
//! (the service's and the demo's embedded default) and two batches.

use crate::{config::ChainConfig, transition::Batch};

/// `examples/chain.json`.
pub const CHAIN_JSON: &str = include_str!("../../examples/chain.json");
/// `examples/batch-valid.json`: every transition type, applies on genesis.
pub const BATCH_VALID_JSON: &str = include_str!("../../examples/batch-valid.json");
/// `examples/batch-invalid.json`: rejected at index 1 (withdraw, initial_margin).
pub const BATCH_INVALID_JSON: &str = include_str!("../../examples/batch-invalid.json");

/// The example chain.
pub fn chain() -> ChainConfig {
    ChainConfig::from_json(CHAIN_JSON).expect("the embedded example chain is valid")
}

/// The example chain with another capacity and depth.
pub fn chain_with(capacity: usize, depth: usize) -> ChainConfig {
    let mut c = chain();
    c.shape.capacity = capacity;
    c.shape.depth = depth;
    c
}

/// The smallest useful chain: the example's first market, no option series,
/// its first scenario, its genesis, with `capacity` and `depth`. The epoch
/// tests of the prover and of the service aggregate proofs of
/// `tiny_chain("epoch-chain", 1, 3)`, so they share one epoch key.
pub fn tiny_chain(chain_id: &str, capacity: usize, depth: usize) -> ChainConfig {
    let mut c = chain_with(capacity, depth);
    c.chain_id = chain_id.into();
    c.shape.markets = 1;
    c.shape.series = 0;
    c.shape.scenarios = 1;
    c.markets.truncate(1);
    c.series.clear();
    c.scenarios.truncate(1);
    c
}

/// The valid example batch.
pub fn batch_valid() -> Batch {
    Batch::from_json(BATCH_VALID_JSON).expect("the embedded example batch is valid JSON")
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
        assert_eq!(kinds.len(), 9, "every transition type appears");
        let out = apply_batch(&st, &cfg.chain_id, &b).expect("valid example applies");
        assert_eq!(out.witness.public.liquidations, 1);
        assert_eq!(out.witness.public.old_root, st.root());
        assert_eq!(out.witness.public.new_root, out.state.root());
        assert_ne!(st.root(), out.state.root());
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
