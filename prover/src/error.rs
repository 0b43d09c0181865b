//! Errors of the prover crate.

/// What can go wrong while setting up, proving or verifying.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProverError {
    /// Reading or writing a cache or params file.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Ceremony parameters too small for a circuit.
    #[error("ceremony parameters support k <= {have}, the circuit needs k = {need}")]
    SrsTooSmall {
        /// Largest k of the file.
        have: u32,
        /// k needed.
        need: u32,
    },
    /// The witness does not fit its shape.
    #[error(transparent)]
    Witness(#[from] statesync_circuits::circuit::WitnessShapeError),
    /// The witness computes other public inputs than it claims.
    #[error("the batch witness is inconsistent: the circuit computes {0}")]
    Inconsistent(String),
    /// A halo2 call failed (key generation, synthesis, halo2-axiom's prover).
    #[error("halo2 {call}: {source:?}")]
    Halo2Call {
        /// The call.
        call: &'static str,
        /// halo2's error.
        #[source]
        source: halo2_proofs::plonk::Error,
    },
    /// statesync's prover found a key, circuit or parameters it cannot
    /// prove with (a contract violation, not a failed halo2 call).
    #[error("halo2: {0}")]
    Halo2(String),
    /// An epoch that cannot be built (wrong count, proofs that do not chain,
    /// another chain's proofs).
    #[error("epoch: {0}")]
    Epoch(String),
    /// Compiling or running the EVM verifier.
    #[error("evm: {0}")]
    Evm(String),
    /// A Hal back end was called against its contract (wrong sizes).
    #[error("prover backend: {0}")]
    Hal(String),
    /// The proof was stopped ([`crate::hal::CancelFlag`]).
    #[error("cancelled")]
    Cancelled,
    /// A device (kernel) error.
    #[error("device: {0}")]
    Device(#[from] statesync_kernels::KernelError),
    /// The witness does not satisfy the circuit (found while proving).
    #[error("unsatisfied circuit: {0}")]
    Unsatisfied(String),
    /// A malformed proof file.
    #[error("malformed proof file: {0}")]
    ProofFile(String),
    /// A proof file that is not JSON of the format.
    #[error("malformed proof file: {0}")]
    ProofFileJson(#[from] serde_json::Error),
    /// A proof file whose proof is not hex.
    #[error("malformed proof file: the proof is not hex: {0}")]
    ProofHex(#[from] hex::FromHexError),
}

impl ProverError {
    /// A failed halo2 `call`.
    pub fn halo2(call: &'static str) -> impl FnOnce(halo2_proofs::plonk::Error) -> Self {
        move |source| ProverError::Halo2Call { call, source }
    }

    /// An I/O error with context.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| ProverError::Io { context, source }
    }
}
