//! statesync-prover: KZG parameters (SRS), per-shape keys, and batch proofs
//! (SHPLONK over BN254) with halo2-axiom.
//!
//! Two transcripts: Blake2b for standalone proofs (what `statesync verify`
//! and a plain verifier check) and snark-verifier's Poseidon transcript for
//! proofs that will be aggregated into epoch proofs; Keccak (the EVM
//! transcript) for top-level epoch proofs that a contract verifies.

mod cache;
pub mod epoch;
pub mod error;
pub mod evm;
pub mod hal;
pub mod keys;
pub mod plonk;
pub mod proof;
pub mod srs;

pub use error::ProverError;
