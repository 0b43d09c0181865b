//! statesync-kernels: BN254 MSM, NTT and element-wise CUDA kernels, their
//! three builds (nvcc PTX, NVRTC, CPU SIMT emulator) and the [`Device`]
//! launch layer (DESIGN.md §5).
//!
//! Everything above the launch call — buffers, transfers, launch shapes and
//! order, the host side of every algorithm ([`msm`], [`ntt`], [`poly`]) — is
//! one generic code path over [`Device`], run on [`EmuDevice`] by every test
//! run and on [`CudaDevice`] where a GPU exists; so are the checks against
//! halo2curves and halo2-axiom ([`conformance`]).
//!
//! FFI ownership and stream rules: device memory belongs to the [`Buffer`]
//! that allocated it and is freed when it drops. [`Device::launch`] is
//! `unsafe` (a kernel trusts its arguments); the typed wrappers of [`msm`],
//! [`ntt`] and [`poly`] check lengths and are the safe API. `CudaDevice`
//! issues every copy and launch on one stream, so operations run in the order
//! they are called; reads back to the host synchronize that stream.
//! `EmuDevice` runs each launch to completion before returning, and all
//! emulator launches, reads and writes of the process are serialized.

pub mod conformance;
mod cuda;
mod device;
mod emu;
mod error;
pub mod msm;
pub mod ntt;
pub mod poly;
pub mod registry;
pub mod repr;

pub use cuda::{nvrtc_available, nvrtc_compile, CudaDevice, ModuleLoad, NvrtcOutput};
pub use device::{Arg, Buffer, Counters, Device, Launch, Traffic};
pub use emu::{EmuDevice, Order};
pub use error::KernelError;

/// Result of this crate's operations.
pub type Result<T> = std::result::Result<T, KernelError>;
