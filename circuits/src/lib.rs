//! statesync-circuits: the protocol state model, the fixed-point format, the
//! Poseidon sparse Merkle tree, EdDSA over Baby Jubjub, the native transition
//! engine, the batch witness and the halo2-base batch circuit.
//!
//! The native engine and the circuit share their arithmetic: every rule the
//! engine checks is a constraint of the circuit, over the same integers.

pub mod babyjub;
pub mod circuit;
pub mod config;
pub mod eddsa;
pub mod engine;
pub mod error;
pub mod examples;
pub mod fixed;
pub mod margin;
pub mod poseidon;
#[cfg(feature = "openapi")]
mod schema;
pub mod smt;
pub mod state;
#[cfg(any(test, feature = "testutil"))]
pub mod testutil;
pub mod transition;
pub mod witness;

pub use halo2_base::halo2_proofs::halo2curves::bn256::Fr;

/// Whether this CPU can run this build: on x86-64 the field arithmetic is
/// halo2curves' assembly (`circuits/Cargo.toml`), which uses BMI2 and ADX
/// instructions and would die of an illegal instruction without them. The
/// binaries call this first and exit with the message instead.
pub fn check_cpu() -> Result<(), String> {
    #[cfg(target_arch = "x86_64")]
    if !(std::is_x86_feature_detected!("bmi2") && std::is_x86_feature_detected!("adx")) {
        return Err("this CPU lacks BMI2 or ADX, which statesync's x86-64 field arithmetic needs (every x86-64 \
                    server CPU since 2014 has them)"
            .into());
    }
    Ok(())
}
