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
    /// halo2 refused (key generation or proving).
    #[error("halo2: {0}")]
    Halo2(String),
    /// An epoch that cannot be built (wrong count, proofs that do not chain,
    /// another chain's proofs).
    #[error("epoch: {0}")]
    Epoch(String),
    /// Compiling or running the EVM verifier.
    #[error("evm: {0}")]
    Evm(String),
    /// A Hal back end failed (device error, wrong sizes).
    #[error("prover backend: {0}")]
    Hal(String),
    /// The witness does not satisfy the circuit (found while proving).
    #[error("unsatisfied circuit: {0}")]
    Unsatisfied(String),
    /// A malformed proof file.
    #[error("malformed proof file: {0}")]
    ProofFile(String),
}

impl ProverError {
    /// A device (kernel) error as a backend error.
    pub fn device(e: statesync_kernels::KernelError) -> Self {
        ProverError::Hal(e.to_string())
    }

    /// An I/O error with context.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| ProverError::Io { context, source }
    }
}
