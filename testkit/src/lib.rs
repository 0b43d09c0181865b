//! statesync-testkit: the helpers the workspace's tests share, each written
//! once: the tiny chain and the example chains ([`examples`]), transition
//! and batch builders ([`transitions`], [`deposit_batch`],
//! [`deposit_witnesses`]), a [`Prover`] over the shared test cache
//! ([`test_prover!`]), and the macros that instantiate a generic test body
//! on every backend ([`on_every_device!`], [`on_every_hal!`]).
//!
//! A dev-dependency only. The crates' own unit tests that cannot depend on
//! it (the circuits crate's: this crate depends on it) use the same
//! builders from `statesync_circuits::testutil` directly.

use std::{path::Path, sync::Arc};

use statesync_circuits::{
    config::ChainConfig,
    engine::{apply_transitions, Mode},
    fixed::Fixed,
    transition::{Batch, Transition, BATCH_VERSION},
    witness::BatchWitness,
};
use statesync_kernels::{CudaDevice, EmuDevice, Order};
use statesync_prover::{
    hal::{CudaHal, CudaHalConfig, Hal},
    Prover,
};

pub use statesync_circuits::{examples, testutil as transitions};
#[doc(hidden)]
pub use statesync_kernels as kernels;
#[doc(hidden)]
pub use statesync_prover as prover;

/// A batch of one deposit of `amount` (whole units) into `account`.
pub fn deposit_batch(chain_id: &str, seq: u64, account: u64, amount: i64) -> Batch {
    Batch {
        version: BATCH_VERSION,
        chain_id: chain_id.into(),
        seq,
        transitions: vec![Transition::deposit(account, Fixed::from_int(amount))],
    }
}

/// The witnesses of consecutive one-deposit batches from `cfg`'s genesis:
/// `amounts[i]` (whole units) into `account` in batch `i`.
pub fn deposit_witnesses(cfg: &ChainConfig, account: u64, amounts: &[i64]) -> Vec<BatchWitness> {
    let mut state = cfg.genesis_state();
    amounts
        .iter()
        .map(|amount| {
            let t = Transition::deposit(account, Fixed::from_int(*amount));
            let out = apply_transitions(&state, &[t], Mode::Enforce).expect("a deposit into a genesis account applies");
            state = out.state;
            out.witness
        })
        .collect()
}

/// A [`Prover`] on `hal` over the cache in `dir` (the development SRS and
/// content-addressed keys). Tests call [`test_prover!`], which passes the
/// shared test cache.
pub fn prover_in(dir: &Path, hal: impl Hal + 'static) -> Prover {
    Prover::in_cache_dir(None, dir, Arc::new(hal))
}

/// The PostgreSQL the tests use: `STATESYNC_TEST_POSTGRES`, else the local
/// server (`scripts/test` starts it when it is down).
pub fn postgres_url() -> String {
    std::env::var("STATESYNC_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The shared test cache of the calling test binary
/// (`CARGO_TARGET_TMPDIR`): the development SRS is deterministic and keys
/// are content-addressed, so every test binary, and every run, shares them.
#[macro_export]
macro_rules! test_cache_dir {
    () => {
        ::std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
    };
}

/// A [`Prover`] on the given Hal over the shared test cache
/// ([`test_cache_dir!`]).
#[macro_export]
macro_rules! test_prover {
    ($hal:expr) => {
        $crate::prover_in($crate::test_cache_dir!(), $hal)
    };
}

/// The emulated GPU Hal of the tests: every operation on the device,
/// whatever its size, threads in a shuffled order, small MSM chunks.
pub fn emu_hal() -> CudaHal<EmuDevice> {
    CudaHal::new(EmuDevice::new(Order::Shuffle(3)), CudaHalConfig { cpu_below: 0, msm_chunk: 1 << 8 })
}

/// The GPU Hal of the tests: everything on GPU 0, as on the emulator.
/// Panics without a GPU (its tests are ignored unless asked for).
pub fn cuda_hal() -> CudaHal<CudaDevice> {
    CudaHal::new(CudaDevice::new(0).expect("a CUDA GPU"), CudaHalConfig { cpu_below: 0, msm_chunk: 1 << 24 })
}

/// Runs each named body of `statesync_kernels::conformance` on the emulator
/// in every thread order (results must not change) and on a GPU when asked
/// for (`--ignored` on a host with one).
///
/// The GPU instances are ignored because no machine this project is built
/// or tested on has a GPU (DESIGN.md §5): without one `CudaDevice::new` can
/// only fail, so running them there would prove nothing. They are compiled
/// in every build (so they cannot drift from the emulator instances) and
/// run on a GPU host with `--ignored`, where a missing GPU fails them
/// instead of passing.
#[macro_export]
macro_rules! on_every_device {
    ($($body:ident),* $(,)?) => {
        mod emu {
            use $crate::kernels::{conformance, EmuDevice, Order};
            $(
                #[test]
                fn $body() {
                    for order in [Order::Forward, Order::Reverse, Order::Shuffle(0x5eed)] {
                        if let Err(e) = conformance::$body(&EmuDevice::new(order)) {
                            panic!("{order:?}: {e}");
                        }
                    }
                }
            )*
        }
        mod cuda {
            $(
                #[test]
                #[ignore = "needs a CUDA GPU: cargo test --features statesync-kernels/cuda -- --ignored"]
                fn $body() {
                    let dev = $crate::kernels::CudaDevice::new(0).expect("a CUDA GPU");
                    if let Err(e) = $crate::kernels::conformance::$body(&dev) {
                        panic!("{e}");
                    }
                }
            )*
        }
    };
}

/// Runs each named body (a `fn body<H: Hal>(make: impl Fn() -> H)` of the
/// calling module) on `CpuHal`, on `CudaHal<EmuDevice>` ([`emu_hal`]) and,
/// ignored unless asked for (`--ignored` on a host with a GPU, as in
/// [`on_every_device!`]), on `CudaHal<CudaDevice>` ([`cuda_hal`]).
#[macro_export]
macro_rules! on_every_hal {
    ($($body:ident),* $(,)?) => {
        mod cpu {
            $(
                #[test]
                fn $body() {
                    super::$body(|| $crate::prover::hal::CpuHal);
                }
            )*
        }
        mod emu {
            $(
                #[test]
                fn $body() {
                    super::$body($crate::emu_hal);
                }
            )*
        }
        mod cuda {
            $(
                #[test]
                #[ignore = "needs a CUDA GPU: cargo test --features statesync-kernels/cuda -- --ignored"]
                fn $body() {
                    super::$body($crate::cuda_hal);
                }
            )*
        }
    };
}
