//! statesync-prover: proofs of batches and epochs (SHPLONK over BN254) on
//! statesync's own prover ([`plonk`]) over a hardware abstraction layer
//! ([`hal`]), and the [`Prover`] that owns the SRS, the parameters, the key
//! cache and the Hal.
//!
//! Three transcripts ([`snark::TranscriptKind`]): Blake2b for standalone
//! proofs (what `statesync verify` and a plain verifier check),
//! snark-verifier's Poseidon transcript for proofs that will be aggregated
//! into epoch proofs (and top-level epochs, which the wrapper aggregates),
//! and Keccak (the EVM transcript) for the proofs a contract verifies: the
//! wrapper's, or a top-level epoch's where no wrapper is used.
//!
//! Modules, each over the ones before it: `cache` (files and locks),
//! [`srs`], [`hal`] and [`plonk`] (the prover's engine), [`snark`] (prove
//! and verify any circuit), [`batch`] and [`epoch`] (the circuits' keys
//! and proofs: batch, epoch, wrapper), [`keys`] (the key cache), [`prover`], and [`evm`].

pub mod batch;
mod cache;
pub mod epoch;
pub mod error;
pub mod evm;
pub mod hal;
pub mod keys;
pub mod plonk;
pub mod prover;
pub mod snark;
pub mod srs;
pub mod vkfile;

pub use error::ProverError;
pub use prover::Prover;
