//! Sizing a shape's circuit: its cell counts, its layout (the smallest `k`)
//! and the report an operator sizes a deployment by (`statesync shape`).

use halo2_base::{
    gates::circuit::{builder::BaseCircuitBuilder, BaseCircuitParams},
    halo2_proofs::{
        halo2curves::bn256::Fr,
        plonk::{Circuit, ConstraintSystem},
    },
};
use serde::Serialize;

use super::{circuit_for, BatchCircuit, WitnessShapeError};
use crate::{
    config::Shape,
    eddsa::chip as eddsa_chip,
    engine,
    poseidon::{
        self,
        chip::{self, HashJob},
        Domain,
    },
};

/// Version of the batch circuit's constraints: bump it whenever a change
/// alters the constraint system or its layout.
pub const CIRCUIT_VERSION: u32 = 5;

/// SHA-256 (hex) of this crate's sources and of the Cargo.lock entries the
/// circuits are built from (every package reachable from this crate and from
/// snark-verifier-sdk), computed at build time (`build.rs`). Key caches are addressed by it
/// besides [`CIRCUIT_VERSION`], so no code change can leave a stale key in
/// use, whether or not the version was bumped.
pub const CIRCUIT_DIGEST: &str = env!("STATESYNC_CIRCUIT_DIGEST");

/// Rows kept free at the bottom of the circuit for blinding.
pub const MIN_ROWS: usize = 20;
/// Advice columns of halo2-base the layout aims for: fewer columns mean a
/// larger `k`.
pub const TARGET_ADVICE: usize = 16;

/// The sizes of a shape's circuit (independent of the witness).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellCounts {
    /// Advice cells of halo2-base's gate.
    pub advice: usize,
    /// Cells copied into lookup columns (range checks).
    pub lookup: usize,
    /// Rows of the Poseidon chip.
    pub poseidon_rows: usize,
    /// Advice columns of the Poseidon chip (the EdDSA chip's too).
    pub poseidon_columns: usize,
    /// Rows of the EdDSA chip (below the Poseidon chip's).
    pub signature_rows: usize,
}

impl CellCounts {
    /// Advice cells in all: halo2-base's, and the two chips' rows times their columns.
    pub fn total_advice(&self) -> usize {
        self.advice + (self.poseidon_rows + self.signature_rows) * self.poseidon_columns
    }

    /// Rows the two chips fill.
    pub fn chip_rows(&self) -> usize {
        self.poseidon_rows + self.signature_rows
    }
}

/// Counts the cells of `shape`'s circuit.
pub fn cell_counts(shape: &Shape) -> Result<CellCounts, WitnessShapeError> {
    shape.validate().map_err(|e| WitnessShapeError(e.to_string()))?;
    let b = BaseCircuitBuilder::new(false).use_k(16).use_lookup_bits(15).use_instance_columns(1);
    let mut c = BatchCircuit::new(b, &engine::padding_witness(shape))?;
    let stats = c.builder.statistics();
    let counts = CellCounts {
        advice: stats.gate.total_advice_per_phase[0],
        lookup: stats.total_lookup_advice_per_phase[0],
        poseidon_rows: c.poseidon_rows(),
        poseidon_columns: 2 * poseidon::WIDTH,
        signature_rows: c.signature_rows(),
    };
    c.builder.clear();
    Ok(counts)
}

/// The circuit configuration of a shape: the smallest `k` (lookup bits
/// `k - 1`) at which the two chips' rows fit and halo2-base's cells fit
/// in [`TARGET_ADVICE`] advice columns. Deterministic, so keys generated with
/// it can be cached per shape.
pub fn layout(shape: &Shape) -> Result<BaseCircuitParams, WitnessShapeError> {
    let counts = cell_counts(shape)?;
    let mut k = 10;
    while counts.chip_rows() + MIN_ROWS > 1 << k || counts.advice > TARGET_ADVICE * ((1usize << k) - MIN_ROWS) {
        k += 1;
    }
    let w = engine::padding_witness(shape);
    let b = BaseCircuitBuilder::new(false).use_k(k).use_lookup_bits(k - 1).use_instance_columns(1);
    let mut c = BatchCircuit::new(b, &w)?;
    let params = c.builder.calculate_params(Some(MIN_ROWS));
    c.builder.clear();
    Ok(params)
}

/// What an operator needs to size a deployment of a shape (`statesync shape`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShapeReport {
    /// The shape.
    pub shape: Shape,
    /// `log2` of the rows.
    pub k: usize,
    /// Rows (`2^k`).
    pub rows: usize,
    /// Rows halo2-base's columns fill.
    pub halo2_base_rows: usize,
    /// Rows the Poseidon chip fills.
    pub poseidon_rows: usize,
    /// Rows the EdDSA chip fills (on the Poseidon chip's columns, below its rows).
    pub signature_rows: usize,
    /// Advice columns of halo2-base's gate.
    pub halo2_base_advice_columns: usize,
    /// Advice columns of the Poseidon chip (shared with the EdDSA chip).
    pub poseidon_advice_columns: usize,
    /// Advice columns of the range-check lookup.
    pub lookup_advice_columns: usize,
    /// Fixed columns (before halo2 turns the selectors into fixed columns).
    pub fixed_columns: usize,
    /// Selectors.
    pub selectors: usize,
    /// Degree of the constraint system.
    pub degree: usize,
    /// Advice cells in all (halo2-base's, and the chip's rows times its columns).
    pub advice_cells: usize,
    /// Advice cells per transition slot.
    pub advice_cells_per_slot: usize,
    /// Advice cells per slot by part: halo2-base's, then the Poseidon chip's
    /// per hash domain, then the EdDSA chip's.
    pub slot_parts: std::collections::BTreeMap<String, usize>,
    /// Advice cells per oracle update's quote set (all three parts; not in
    /// the slots' figures).
    pub oracle_update_cells: usize,
    /// Cells copied into the lookup columns (range checks).
    pub lookup_cells: usize,
    /// Lookup cells per slot.
    pub lookup_cells_per_slot: usize,
}

/// The [`ShapeReport`] of `shape`.
pub fn report(shape: &Shape) -> Result<ShapeReport, WitnessShapeError> {
    let params = layout(shape)?;
    let k = params.k;
    let mut c = circuit_for(&params, &engine::padding_witness(shape), false)?;
    let stats = c.builder.statistics();
    let (advice, lookup) = (stats.gate.total_advice_per_phase[0], stats.total_lookup_advice_per_phase[0]);
    let width = 2 * poseidon::WIDTH;
    let slots = shape.capacity;
    let rows =
        |jobs: &[HashJob]| -> usize { jobs.iter().map(|j| chip::hash_rows(poseidon::params(), j.inputs.len())).sum() };
    let (set_jobs, set_sigs) = c.sets;
    let set_cells = c.parts.get("oracle quote sets").copied().unwrap_or(0)
        + (rows(&c.hashes[..set_jobs]) + set_sigs * eddsa_chip::ROWS) * width;
    let mut parts: std::collections::BTreeMap<String, usize> = c
        .parts
        .iter()
        .filter(|(name, _)| **name != "oracle quote sets")
        .map(|(name, cells)| (format!("halo2-base: {name}"), cells / slots))
        .collect();
    for (domains, name) in [
        (&[Domain::Leaf][..], "leaves"),
        (&[Domain::Order], "order leaves"),
        (&[Domain::Node], "tree nodes (accounts and orders)"),
        (&[Domain::Commit], "commitment"),
        (&[Domain::Authorize, Domain::Signature], "authorization"),
    ] {
        let jobs: Vec<HashJob> = c.hashes[set_jobs..].iter().filter(|j| domains.contains(&j.domain)).cloned().collect();
        parts.insert(format!("poseidon chip: {name}"), rows(&jobs) * width / slots);
    }
    let (poseidon_rows, signature_rows) = (c.poseidon_rows(), c.signature_rows());
    parts.insert("eddsa chip: signatures".into(), (signature_rows - set_sigs * eddsa_chip::ROWS) * width / slots);
    c.builder.clear();
    // per slot: between shapes without quote sets that differ in capacity
    let lookup_per_slot = {
        let mut none = shape.clone();
        none.oracle_updates = 0;
        let all = cell_counts(&none)?.lookup;
        none.capacity = 1;
        let one = cell_counts(&none)?.lookup;
        if slots > 1 {
            (all - one) / (slots - 1)
        } else {
            one
        }
    };
    let mut cs = ConstraintSystem::<Fr>::default();
    BatchCircuit::configure_with_params(&mut cs, params.clone());
    let base_columns = params.num_advice_per_phase[0];
    Ok(ShapeReport {
        shape: shape.clone(),
        k,
        rows: 1 << k,
        halo2_base_rows: advice.div_ceil(base_columns.max(1)),
        poseidon_rows,
        signature_rows,
        halo2_base_advice_columns: base_columns,
        poseidon_advice_columns: width,
        lookup_advice_columns: params.num_lookup_advice_per_phase[0],
        fixed_columns: cs.num_fixed_columns(),
        selectors: cs.num_selectors(),
        degree: cs.degree(),
        advice_cells: advice + (poseidon_rows + signature_rows) * width,
        advice_cells_per_slot: parts.values().sum(),
        slot_parts: parts,
        oracle_update_cells: set_cells / shape.oracle_updates.max(1),
        lookup_cells: lookup,
        lookup_cells_per_slot: lookup_per_slot,
    })
}
