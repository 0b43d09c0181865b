//! The hardware abstraction layer the prover is written against (DESIGN §4).
//!
//! A [`Hal`] offers the few coarse, data-parallel operations where a proof
//! spends its time: multi-scalar multiplications over the SRS (commitments),
//! the transforms between Lagrange, coefficient and extended-coset bases, and
//! batch inversion (the denominators of grand products and of assigned
//! fractions). Everything else — synthesis, expression evaluation, grand
//! products, the transcript — is host code shared by every Hal, so two Hals
//! give the same proof exactly when their operations agree, which
//! [`DualHal`] checks operation by operation.
//!
//! - [`CpuHal`]: rayon, halo2curves' MSM and halo2-axiom's FFT.
//! - [`CudaHal`]: the same calls on a `statesync_kernels::Device` (a GPU, or
//!   the CPU SIMT emulator), SRS bases resident per k, small inputs on the CPU.
//! - [`DualHal`]: runs two Hals and reports the first operation whose results
//!   differ.
//! - [`Cancellable`]: any Hal, stopped between operations by a
//!   [`CancelFlag`].

mod cancel;
mod cpu;
mod cuda;
mod dual;

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Deref;
use std::str::FromStr;
use std::sync::Arc;

use halo2_proofs::{
    halo2curves::bn256::{Bn256, Fr, G1Affine},
    poly::{
        commitment::{Params, ParamsProver},
        kzg::commitment::ParamsKZG,
        EvaluationDomain,
    },
};
use serde::{Deserialize, Serialize};
use statesync_kernels::{CudaDevice, Device, EmuDevice};

pub use cancel::{CancelFlag, Cancellable};
pub use cpu::CpuHal;
pub use cuda::{CudaHal, CudaHalConfig};
pub use dual::DualHal;

use crate::ProverError;

/// Which SRS bases a commitment uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bases {
    /// `[s^i]G`: commitments to polynomials in coefficient form.
    Monomial,
    /// The Lagrange basis of the 2^k domain: commitments to evaluations.
    Lagrange,
}

// The Hal's contract, checked by every back end.

/// The SRS points a commitment uses: borrowed from the params (monomial) or
/// the shared Lagrange cache.
pub(super) enum SrsBases<'a> {
    Borrowed(&'a [G1Affine]),
    Shared(Arc<Vec<G1Affine>>),
}

impl Deref for SrsBases<'_> {
    type Target = [G1Affine];

    fn deref(&self) -> &[G1Affine] {
        match self {
            SrsBases::Borrowed(g) => g,
            SrsBases::Shared(g) => g,
        }
    }
}

/// The SRS bases of `params` a commitment of `bases` uses.
pub(super) fn srs_bases(params: &ParamsKZG<Bn256>, bases: Bases) -> Result<SrsBases<'_>, ProverError> {
    Ok(match bases {
        Bases::Monomial => SrsBases::Borrowed(params.get_g()),
        Bases::Lagrange => SrsBases::Shared(crate::srs::lagrange_bases(params)?),
    })
}

/// Checks that a polynomial of `len` fits the 2^k bases of `params`.
pub(super) fn check_len(params: &ParamsKZG<Bn256>, len: usize) -> Result<(), ProverError> {
    if len > params.n() as usize {
        return Err(ProverError::Hal(format!("a commitment to {len} values with 2^{} SRS bases", params.k())));
    }
    Ok(())
}

/// Checks that every polynomial has the domain's 2^k values.
pub(super) fn check_domain<P: AsRef<[Fr]>>(domain: &EvaluationDomain<Fr>, polys: &[P]) -> Result<(), ProverError> {
    let n = 1usize << domain.k();
    match polys.iter().map(|p| p.as_ref().len()).find(|&len| len != n) {
        Some(len) => Err(ProverError::Hal(format!("{len} values for a domain of 2^{}", domain.k()))),
        None => Ok(()),
    }
}

/// Checks the quotient's parts: one per part of the extended domain, each
/// of 2^k values.
pub(super) fn check_parts(domain: &EvaluationDomain<Fr>, parts: &[Vec<Fr>]) -> Result<(), ProverError> {
    let expected = domain.extended_len() >> domain.k();
    if parts.len() != expected {
        return Err(ProverError::Hal(format!("{} quotient parts, the domain has {expected}", parts.len())));
    }
    check_domain(domain, parts)
}

/// The coarse operations of a prover back end. Every method is
/// deterministic: equal inputs give equal outputs on every Hal.
pub trait Hal: Send + Sync + fmt::Debug {
    /// Human-readable name (back end and device).
    fn name(&self) -> String;

    /// Which back end this is.
    fn backend(&self) -> Backend;

    /// Commitments (MSMs) of each of `polys` against the first `len` SRS
    /// `bases` of `params` (each poly at most 2^k long), in affine form.
    fn commit(&self, params: &ParamsKZG<Bn256>, bases: Bases, polys: &[&[Fr]]) -> Result<Vec<G1Affine>, ProverError>;

    /// In place, each 2^k evaluation vector to coefficients (inverse NTT),
    /// as `EvaluationDomain::lagrange_to_coeff`.
    fn lagrange_to_coeff(&self, domain: &EvaluationDomain<Fr>, polys: &mut [Vec<Fr>]) -> Result<(), ProverError>;

    /// Commitments of `polys` (evaluations, Lagrange bases) and, in place,
    /// their coefficient forms: `commit` then `lagrange_to_coeff`, which is
    /// what this default does. A device Hal overrides it to upload each
    /// polynomial once for both.
    fn commit_and_interpolate(
        &self,
        params: &ParamsKZG<Bn256>,
        domain: &EvaluationDomain<Fr>,
        polys: &mut [Vec<Fr>],
    ) -> Result<Vec<G1Affine>, ProverError> {
        let views: Vec<&[Fr]> = polys.iter().map(Vec::as_slice).collect();
        let commitments = self.commit(params, Bases::Lagrange, &views)?;
        self.lagrange_to_coeff(domain, polys)?;
        Ok(commitments)
    }

    /// Each coefficient vector (2^k long) evaluated on the coset
    /// `zeta * factor * H` (size 2^k): one part of the extended domain, as
    /// `EvaluationDomain::coeff_to_extended_part`.
    fn coeff_to_extended_part(
        &self,
        domain: &EvaluationDomain<Fr>,
        polys: &[&[Fr]],
        factor: Fr,
    ) -> Result<Vec<Vec<Fr>>, ProverError>;

    /// Each coefficient vector evaluated on every coset
    /// `zeta * factors[i] * H`, handed to `each(i, values)` in the order of
    /// `factors`: `coeff_to_extended_part` once per factor, which is what
    /// this default does. A device Hal overrides it to upload `polys` once
    /// for all the parts.
    fn coeff_to_extended_parts(
        &self,
        domain: &EvaluationDomain<Fr>,
        polys: &[&[Fr]],
        factors: &[Fr],
        each: &mut dyn FnMut(usize, Vec<Vec<Fr>>) -> Result<(), ProverError>,
    ) -> Result<(), ProverError> {
        for (i, factor) in factors.iter().enumerate() {
            each(i, self.coeff_to_extended_part(domain, polys, *factor)?)?;
        }
        Ok(())
    }

    /// The quotient: the numerator's parts (in the order of their factors
    /// `extended_omega^i`) divided by `X^n - 1` and brought to coefficient
    /// form, truncated to the quotient's degree, as halo2-axiom's
    /// `extended_from_lagrange_vec`, `divide_by_vanishing_poly` and
    /// `extended_to_coeff`.
    fn quotient_to_coeff(&self, domain: &EvaluationDomain<Fr>, parts: Vec<Vec<Fr>>) -> Result<Vec<Fr>, ProverError>;

    /// Inverts every non-zero element in place (zeros stay zero).
    fn batch_invert(&self, values: &mut [Fr]) -> Result<(), ProverError>;

    /// Device traffic per kind of operation since the Hal was made (empty
    /// for a Hal without a device). Two readings around a proof give what
    /// the proof moved: [`traffic_since`].
    fn traffic(&self) -> TrafficReport {
        TrafficReport::new()
    }
}

/// Device traffic of one kind of Hal operation, summed over its calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpTraffic {
    /// Operations.
    pub calls: u64,
    /// Kernel launches.
    pub launches: u64,
    /// Bytes copied to the device.
    pub host_to_device_bytes: u64,
    /// Bytes copied back to the host.
    pub device_to_host_bytes: u64,
}

impl OpTraffic {
    fn add(&mut self, o: &OpTraffic) {
        self.calls += o.calls;
        self.launches += o.launches;
        self.host_to_device_bytes += o.host_to_device_bytes;
        self.device_to_host_bytes += o.device_to_host_bytes;
    }

    /// The sum of a report's operations.
    pub fn total(report: &TrafficReport) -> OpTraffic {
        let mut t = OpTraffic::default();
        for o in report.values() {
            t.add(o);
        }
        t
    }
}

/// [`OpTraffic`] by operation (`commit`, `lagrange_to_coeff`, ...).
pub type TrafficReport = BTreeMap<String, OpTraffic>;

/// What happened between two readings of one Hal's [`Hal::traffic`].
pub fn traffic_since(now: &TrafficReport, earlier: &TrafficReport) -> TrafficReport {
    now.iter()
        .map(|(op, n)| {
            let e = earlier.get(op).copied().unwrap_or_default();
            let d = OpTraffic {
                calls: n.calls.saturating_sub(e.calls),
                launches: n.launches.saturating_sub(e.launches),
                host_to_device_bytes: n.host_to_device_bytes.saturating_sub(e.host_to_device_bytes),
                device_to_host_bytes: n.device_to_host_bytes.saturating_sub(e.device_to_host_bytes),
            };
            (op.clone(), d)
        })
        .filter(|(_, d)| d.calls > 0)
        .collect()
}

/// Adds `b`'s operations into `a` (the two sides of a [`DualHal`]).
fn merge_traffic(mut a: TrafficReport, b: TrafficReport) -> TrafficReport {
    for (op, t) in b {
        a.entry(op).or_default().add(&t);
    }
    a
}

/// The back ends `--backend` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// [`CpuHal`].
    Cpu,
    /// [`CudaHal`] on the first CUDA GPU.
    Cuda,
    /// [`CudaHal`] on the CPU SIMT emulator (slow; for testing the kernels).
    Emu,
}

impl FromStr for Backend {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(Backend::Cpu),
            "cuda" => Ok(Backend::Cuda),
            "emu" => Ok(Backend::Emu),
            other => Err(format!("unknown backend {other:?} (cpu, cuda or emu)")),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Cpu => "cpu",
            Backend::Cuda => "cuda",
            Backend::Emu => "emu",
        })
    }
}

/// Number of usable CUDA GPUs (0 without a driver).
pub fn gpu_count() -> usize {
    CudaDevice::count().unwrap_or(0)
}

/// The CUDA Hal on GPU `ordinal` (`Device` error when there is none).
pub fn cuda(ordinal: usize) -> Result<Arc<dyn Hal>, ProverError> {
    let config = CudaHalConfig::from_env()?;
    Ok(Arc::new(CudaHal::new(CudaDevice::new(ordinal).map_err(ProverError::Device)?, config)))
}

/// The Hal for `backend`; `None` picks CUDA on GPU 0 when one is usable and
/// the CPU otherwise (the reason is logged).
pub fn select(backend: Option<Backend>) -> Result<Arc<dyn Hal>, ProverError> {
    let config = CudaHalConfig::from_env()?;
    match backend {
        Some(Backend::Cpu) => Ok(Arc::new(CpuHal)),
        Some(Backend::Emu) => Ok(Arc::new(CudaHal::new(EmuDevice::default(), config))),
        Some(Backend::Cuda) => cuda(0),
        None => match CudaDevice::new(0) {
            Ok(dev) => {
                tracing::info!(device = %dev.name(), "proving on the GPU");
                Ok(Arc::new(CudaHal::new(dev, config)))
            }
            Err(e) => {
                tracing::info!(reason = %e, "no usable GPU: proving on the CPU");
                Ok(Arc::new(CpuHal))
            }
        },
    }
}
