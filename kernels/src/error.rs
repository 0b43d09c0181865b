//! Errors of the kernels crate.

/// What can go wrong on a device or with the inputs handed to it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    /// No usable CUDA GPU (no driver library, no device, or context creation failed).
    #[error("no CUDA GPU: {0}")]
    NoGpu(String),
    /// The NVRTC library could not be loaded.
    #[error("NVRTC is not available: {0}")]
    NoNvrtc(String),
    /// A CUDA driver call failed.
    #[error("CUDA driver error: {0}")]
    Driver(String),
    /// NVRTC rejected a module.
    #[error("NVRTC failed to compile module {module}: {log}")]
    Compile { module: &'static str, log: String },
    /// The CPU emulator refused or failed a launch.
    #[error("emulator: {0}")]
    Emulator(String),
    /// Arguments the caller passed cannot be used (lengths, sizes).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A device result is not a point of BN254 G1.
    #[error("the device returned coordinates that are not on BN254 G1")]
    NotOnCurve,
}
