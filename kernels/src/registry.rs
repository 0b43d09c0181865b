//! The kernel modules: one per `cuda/<name>.cu`, each embedded as flattened
//! source (for NVRTC) and, when built with feature `cuda` and nvcc, as PTX
//! and SASS (cubins) for sm_80 and sm_90. Kernels are named by [`Kernel`] constants next to
//! the host code that launches them.

/// A compiled unit of kernels.
#[derive(Debug)]
pub struct Module {
    /// Name, also the source file's stem.
    pub name: &'static str,
    /// Self-contained CUDA C++ source (local includes inlined).
    pub source: &'static str,
    /// Entry points, in source order.
    pub kernels: &'static [&'static str],
    ptx: [Option<&'static str>; 2],
    sass: [Option<&'static [u8]>; 2],
}

/// Architectures with PTX and SASS built by nvcc under feature `cuda`.
pub const PTX_ARCHS: [&str; 2] = ["sm_80", "sm_90"];

impl Module {
    /// PTX embedded for `arch` (one of [`PTX_ARCHS`]), if it was built.
    pub fn ptx(&self, arch: &str) -> Option<&'static str> {
        PTX_ARCHS.iter().position(|a| *a == arch).and_then(|i| self.ptx[i])
    }

    /// SASS (an ELF cubin) embedded for `arch` (one of [`PTX_ARCHS`]), if
    /// it was built. It runs on devices of that major version whose minor
    /// version is at least the architecture's.
    pub fn sass(&self, arch: &str) -> Option<&'static [u8]> {
        PTX_ARCHS.iter().position(|a| *a == arch).and_then(|i| self.sass[i])
    }
}

macro_rules! module {
    ($name:literal, [$($k:literal),* $(,)?]) => {
        Module {
            name: $name,
            source: include_str!(concat!(env!("OUT_DIR"), "/", $name, ".cu")),
            kernels: &[$($k),*],
            #[cfg(ss_ptx)]
            ptx: [
                Some(include_str!(concat!(env!("OUT_DIR"), "/", $name, ".sm_80.ptx"))),
                Some(include_str!(concat!(env!("OUT_DIR"), "/", $name, ".sm_90.ptx"))),
            ],
            #[cfg(not(ss_ptx))]
            ptx: [None, None],
            #[cfg(ss_ptx)]
            sass: [
                Some(include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".sm_80.cubin")) as &[u8]),
                Some(include_bytes!(concat!(env!("OUT_DIR"), "/", $name, ".sm_90.cubin")) as &[u8]),
            ],
            #[cfg(not(ss_ptx))]
            sass: [None, None],
        }
    };
}

/// Pippenger MSM.
pub static MSM: Module = module!(
    "msm",
    [
        "msm_digits",
        "scan_u32",
        "msm_scatter",
        "msm_chunks",
        "msm_accumulate",
        "msm_merge",
        "msm_gather",
        "msm_reduce",
        "msm_combine",
    ]
);
/// Radix-2 NTT.
pub static NTT: Module = module!("ntt", ["ntt_twiddles", "ntt_bit_reverse", "ntt_block", "ntt_stage"]);
/// Element-wise polynomial kernels.
pub static POLY: Module =
    module!("poly", ["poly_add", "poly_sub", "poly_mul", "poly_scale", "poly_distribute_powers", "poly_batch_invert"]);
/// Single field and curve operations, for tests and the resource report.
pub static SELFTEST: Module =
    module!("selftest", ["fr_mul", "fr_ops", "fq_ops", "g1_ops", "shift_racy", "shift_synced"]);

/// Every module.
pub static MODULES: [&Module; 4] = [&MSM, &NTT, &POLY, &SELFTEST];

/// One entry point of a module.
#[derive(Debug, Clone, Copy)]
pub struct Kernel {
    /// The module holding it.
    pub module: &'static Module,
    /// Its `extern "C"` name.
    pub name: &'static str,
}

impl Kernel {
    /// The kernel `name` of `module`.
    pub const fn new(module: &'static Module, name: &'static str) -> Self {
        Kernel { module, name }
    }
}
