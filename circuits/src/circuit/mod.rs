//! The batch circuit (halo2-base), DESIGN.md §3.
//!
//! One slot per transition of the shape's capacity; each slot is the same
//! fixed sequence of constraints whatever the transition, selected by one-hot
//! type flags, so a shape has exactly one proving key. The sub-steps of a
//! slot ([`slot`]), in order:
//!
//! 1. `load_fields`, `extend_commitment`, `groups`, `check_encoding`,
//!    `key_rules`, `indicators`, `funding_rate_bound`: the transition's
//!    flags and fields loaded and range-checked, the commitment chain
//!    extended (skipped for padding), unused fields zero;
//! 2. `deltas`: what it does to each account;
//! 3. `accounts`: account `a`'s old leaf opened against the current
//!    accounts root, funding settled (payments are constrained hints), its
//!    key and nonce, its order filled, the new leaf range-checked and the
//!    new root computed on the same path; then `b` likewise against the
//!    intermediate root (`b == a` for one-account transitions, both 0 and
//!    untouched for market transitions);
//! 4. `authorize`: each signer's signature ([`crate::eddsa`]);
//! 5. `market_table`: marks from the oracle update's quote set ([`oracle`]),
//!    Greeks, funding index, open interest, insurance fund, range-checked;
//! 6. `margin_rules`: the margin figures of `a` and `b` before and after
//!    ([`risk`], [`crate::margin`]) and the rule of the active type;
//! 7. `parameter_signs`.
//!
//! The market table is hashed once at the start and once at the end; the
//! public inputs are the old and new state roots, the commitment, the
//! transition and liquidation counts, the chain tag and the seq. The
//! gadgets (hashes, bounds, Merkle paths) are in [`gadgets`], the leaf and
//! table cells in [`cells`], sizing and the shape report in [`sizing`].

// Constraint code walks several parallel per-market/per-series vectors by index.
#![allow(clippy::needless_range_loop)]

mod cells;
mod gadgets;
mod oracle;
mod risk;
mod sizing;
mod slot;
#[cfg(test)]
mod tests;

pub use gadgets::fe_i256;
pub use sizing::{
    cell_counts, layout, report, CellCounts, ShapeReport, CIRCUIT_DIGEST, CIRCUIT_VERSION, MIN_ROWS, TARGET_ADVICE,
};

use halo2_base::{
    gates::{
        circuit::{builder::BaseCircuitBuilder, BaseCircuitParams, BaseConfig},
        GateInstructions,
    },
    halo2_proofs::{
        circuit::{Cell, Layouter, SimpleFloorPlanner},
        halo2curves::bn256::Fr,
        plonk::{Circuit, ConstraintSystem, Error as PlonkError},
    },
};

use crate::{
    eddsa::chip::{self as eddsa_chip, EddsaConfig, SigJob},
    poseidon::{
        self,
        chip::{self, HashJob, PoseidonConfig},
        Domain,
    },
    smt,
    transition::ORDER_BITS,
    witness::BatchWitness,
};
use cells::Table;
use gadgets::{Chips, V};
use slot::Slots;

/// Error for a witness that does not fit its shape (e.g. a corrupted job).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("batch witness does not match its shape: {0}")]
pub struct WitnessShapeError(pub String);

/// Checks that a witness has the sizes its shape requires.
pub fn check_witness(w: &BatchWitness) -> Result<(), WitnessShapeError> {
    let s = &w.shape;
    let err = |m: &str| Err(WitnessShapeError(m.to_string()));
    if s.validate().is_err() {
        return err("invalid shape");
    }
    if w.steps.len() != s.capacity {
        return err("step count differs from capacity");
    }
    let mt = &w.markets;
    if mt.markets.len() != s.markets || mt.series.len() != s.series || mt.scenarios.len() != s.scenarios {
        return err("market table size");
    }
    for st in &w.steps {
        for leaf in [&st.a_leaf, &st.b_leaf] {
            if leaf.perps.len() != s.markets || leaf.options.len() != s.series {
                return err("account slots");
            }
        }
        let path = smt::SIBLINGS * smt::levels(s.depth);
        if st.a_path.len() != path || st.b_path.len() != path {
            return err("Merkle path length");
        }
        if st.hints.funding_a.len() != s.markets || st.hints.funding_b.len() != s.markets {
            return err("funding hints");
        }
        if st.orders.iter().any(|o| o.path.len() != smt::SIBLINGS * smt::levels(ORDER_BITS)) {
            return err("orders path length");
        }
    }
    Ok(())
}

/// Lays out the batch circuit for `w` in `builder` (phase 0, lookups enabled),
/// sets its [`crate::witness::PUBLIC_LEN`] public inputs and returns the
/// hashes for the Poseidon chip.
type Parts = std::collections::BTreeMap<&'static str, usize>;

/// What [`build`] leaves for the custom chips.
struct Laid {
    hashes: Vec<HashJob>,
    sigs: Vec<SigJob>,
    parts: Parts,
    /// Hash jobs and signatures of the oracle quote sets (the first ones).
    sets: (usize, usize),
}

fn build(builder: &mut BaseCircuitBuilder<Fr>, w: &BatchWitness) -> Result<Laid, WitnessShapeError> {
    check_witness(w)?;
    let range = builder.range_chip();
    let ctx = builder.main(0);
    let chips = Chips { range, hashes: Default::default(), parts: Default::default(), sigs: Default::default() };
    let mut t = Table::load(ctx, &w.markets);
    let g = chips.gate();
    let und_ind: Vec<Vec<V>> = t
        .und
        .iter()
        .map(|u| {
            let ind = g.idx_to_indicator(ctx, *u, w.shape.markets);
            let cnt = g.sum(ctx, ind.iter().copied());
            chips.assert_one(ctx, cnt);
            ind
        })
        .collect();
    let tag = ctx.load_witness(w.public.chain_tag);
    let seq = ctx.load_witness(Fr::from(w.public.seq));
    let mut slots = Slots { chips, w, tag, seq, und_ind, sets: vec![], updates: Default::default() };
    slots.sets = slots.quote_sets(ctx, &t);
    let sets = (slots.chips.hashes.borrow().jobs.len(), slots.chips.sigs.borrow().len());
    let market_root = slots.chips.hash(ctx, Domain::Market, &t.fields());
    let mut acc_root = ctx.load_witness(w.accounts_root);
    let old_root = slots.chips.hash(ctx, Domain::State, &[acc_root, market_root]);
    let mut commit = slots.chips.hash(ctx, Domain::CommitStart, &[tag, seq]);
    let mut real = vec![];
    let mut liq = vec![];
    for s in &w.steps {
        let out = slots.step(ctx, s, acc_root, &t, commit);
        (acc_root, t, commit) = (out.root, out.table, out.commit);
        real.push(out.real);
        liq.push(out.liquidation);
    }
    let g = slots.chips.gate();
    // real transitions first, then padding, and at least one real one: a
    // batch proof always stands for a non-empty batch
    slots.chips.assert_one(ctx, real[0]);
    for pair in real.windows(2) {
        let late = g.mul_not(ctx, pair[0], pair[1]);
        slots.chips.assert_zero(ctx, late);
    }
    let n_real = g.sum(ctx, real);
    let n_liq = g.sum(ctx, liq);
    let market_root = slots.chips.hash(ctx, Domain::Market, &t.fields());
    let new_root = slots.chips.hash(ctx, Domain::State, &[acc_root, market_root]);
    builder.assigned_instances = vec![vec![old_root, new_root, commit, n_real, n_liq, tag, seq]];
    Ok(Laid {
        hashes: slots.chips.hashes.into_inner().jobs,
        sigs: slots.chips.sigs.into_inner(),
        parts: slots.chips.parts.into_inner(),
        sets,
    })
}

/// The Poseidon chip of the batch circuit (width [`poseidon::WIDTH`]).
pub type PoseidonChip = PoseidonConfig<{ poseidon::WIDTH }>;

/// The batch circuit of one witness: halo2-base's gates and range checks,
/// and the Poseidon chip's and the EdDSA chip's rows (on the same columns,
/// the signatures below the hashes) tied to them by copy constraints.
#[derive(Debug, Clone)]
pub struct BatchCircuit {
    /// The halo2-base part (virtual cells, public inputs).
    pub builder: BaseCircuitBuilder<Fr>,
    hashes: Vec<HashJob>,
    sigs: Vec<SigJob>,
    parts: Parts,
    sets: (usize, usize),
}

impl BatchCircuit {
    /// Lays out `w` in `builder` (any stage).
    pub fn new(mut builder: BaseCircuitBuilder<Fr>, w: &BatchWitness) -> Result<Self, WitnessShapeError> {
        let Laid { hashes, sigs, parts, sets } = build(&mut builder, w)?;
        Ok(BatchCircuit { builder, hashes, sigs, parts, sets })
    }

    /// The public inputs the circuit computes.
    pub fn instances(&self) -> Vec<Fr> {
        self.builder.assigned_instances[0].iter().map(|v| *v.value()).collect()
    }

    /// Rows of the Poseidon chip.
    pub fn poseidon_rows(&self) -> usize {
        self.hashes.iter().map(|j| chip::hash_rows(poseidon::params(), j.inputs.len())).sum()
    }

    /// Rows of the EdDSA chip.
    pub fn signature_rows(&self) -> usize {
        self.sigs.len() * eddsa_chip::ROWS
    }
}

impl Circuit<Fr> for BatchCircuit {
    type Config = (BaseConfig<Fr>, PoseidonChip, EddsaConfig);
    type FloorPlanner = SimpleFloorPlanner;
    type Params = BaseCircuitParams;

    fn params(&self) -> BaseCircuitParams {
        self.builder.config_params.clone()
    }

    fn without_witnesses(&self) -> Self {
        unreachable!("halo2-axiom's key generation and provers never ask for a batch circuit without witnesses")
    }

    fn configure_with_params(meta: &mut ConstraintSystem<Fr>, params: BaseCircuitParams) -> Self::Config {
        let base = BaseConfig::configure(meta, params);
        let hashes = PoseidonConfig::configure(meta, poseidon::params());
        let adv = hashes.advice_columns().try_into().expect("the Poseidon chip has the EdDSA chip's column count");
        let fixed = [hashes.fixed_columns()[0], hashes.fixed_columns()[1]];
        let sigs = EddsaConfig::configure(meta, adv, fixed);
        (base, hashes, sigs)
    }

    fn configure(_: &mut ConstraintSystem<Fr>) -> Self::Config {
        unreachable!("the batch circuit is configured with its parameters")
    }

    fn synthesize(
        &self,
        (base, chip, sig_chip): Self::Config,
        mut layouter: impl Layouter<Fr>,
    ) -> Result<(), PlonkError> {
        self.builder.synthesize(base, layouter.namespace(|| "halo2-base"))?;
        let witness_only = self.builder.witness_gen_only();
        let copies = self.builder.core().copy_manager.lock().map_err(|_| PlonkError::Synthesis)?;
        let cell_of = |v: &V| -> Option<Cell> {
            if witness_only {
                None
            } else {
                v.cell.and_then(|c| copies.assigned_advices.get(&c).copied())
            }
        };
        layouter.assign_region(
            || "poseidon and eddsa",
            |mut region| {
                let end = chip.assign(&mut region, poseidon::params(), &self.hashes, &cell_of);
                sig_chip.assign(&mut region, end, &self.sigs, &cell_of);
                Ok(())
            },
        )
    }
}

/// A batch circuit laid out for `w` with `params` (keygen/mock mode).
pub fn circuit_for(
    params: &BaseCircuitParams,
    w: &BatchWitness,
    witness_only: bool,
) -> Result<BatchCircuit, WitnessShapeError> {
    BatchCircuit::new(BaseCircuitBuilder::new(witness_only).use_params(params.clone()), w)
}
