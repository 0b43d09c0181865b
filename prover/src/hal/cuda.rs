//! The CUDA back end: the Hal's operations as `statesync_kernels` launches on
//! a [`Device`] — a GPU ([`statesync_kernels::CudaDevice`]) or the CPU SIMT
//! emulator ([`statesync_kernels::EmuDevice`]).
//!
//! SRS bases are uploaded once per parameter set and basis and stay resident;
//! NTT twiddles once per size. MSMs are split into chunks that fit the
//! device's free memory (and the kernels' u32 positions); inputs shorter than
//! [`CudaHalConfig::cpu_below`] run on the CPU, where a launch would cost more
//! than it saves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use halo2_proofs::{
    halo2curves::{
        bn256::{Bn256, Fr, G1Affine, G1},
        ff::WithSmallOrderMulGroup,
        group::Curve,
        serde::SerdeObject,
    },
    poly::{
        commitment::{Params, ParamsProver},
        kzg::commitment::ParamsKZG,
        EvaluationDomain,
    },
};
use statesync_kernels::{
    msm::{self, default_window_bits},
    ntt::{Direction, NttPlan},
    poly,
    repr::{self, AffineRepr, FieldRepr},
    Buffer, Device,
};

use super::{check_domain, check_len, check_parts, srs_bases, Backend, Bases, CpuHal, Hal, TrafficReport};
use crate::ProverError;

/// Bytes of device memory one MSM point needs beyond its resident base, at
/// the 16-bit windows of large MSMs: scalar (32), digits and sorted
/// positions for 17 windows (136), partial bucket sums (17 per 32 points
/// of 96 bytes, and a 32nd of that per merge round: about 55), and headroom
/// for the bucket arrays.
const MSM_BYTES_PER_POINT: usize = 320;
/// Largest batch of polynomials uploaded for one transform launch, in bytes.
const NTT_BATCH_BYTES: usize = 256 << 20;

/// Tuning of a [`CudaHal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CudaHalConfig {
    /// Inputs with fewer elements than this run on the CPU (0: everything on
    /// the device).
    pub cpu_below: usize,
    /// Most points per MSM launch; the device's free memory may lower it.
    pub msm_chunk: usize,
}

impl Default for CudaHalConfig {
    fn default() -> Self {
        CudaHalConfig { cpu_below: 1 << 12, msm_chunk: 1 << 24 }
    }
}

/// The environment variable that sets [`CudaHalConfig::cpu_below`].
pub const CPU_BELOW_VAR: &str = "STATESYNC_CUDA_CPU_BELOW";

impl CudaHalConfig {
    /// The defaults, with the CPU threshold from `STATESYNC_CUDA_CPU_BELOW`
    /// (elements) when it is set.
    pub fn from_env() -> Result<Self, ProverError> {
        Self::default().with_cpu_below(std::env::var(CPU_BELOW_VAR).ok().as_deref())
    }

    fn with_cpu_below(mut self, value: Option<&str>) -> Result<Self, ProverError> {
        if let Some(v) = value {
            self.cpu_below = v.trim().parse().map_err(|_| {
                ProverError::Hal(format!("{CPU_BELOW_VAR}={v:?}: not a number of elements (0: everything on the GPU)"))
            })?;
        }
        Ok(self)
    }
}

/// Resident SRS chunks of one parameter set and basis.
type ResidentBases<D> = Arc<Vec<Buffer<D, AffineRepr>>>;
/// Identifies resident bases: k, basis, raw `[s]G`, chunk length.
type BasesKey = (u32, Bases, Vec<u8>, usize);

/// The Hal on a kernels [`Device`].
#[derive(Debug)]
pub struct CudaHal<D: Device> {
    dev: D,
    config: CudaHalConfig,
    bases: Mutex<HashMap<BasesKey, ResidentBases<D>>>,
    plans: Mutex<HashMap<u32, Arc<NttPlan<D>>>>,
    traffic: Mutex<TrafficReport>,
}

impl<D: Device> CudaHal<D> {
    /// A Hal on `dev`.
    pub fn new(dev: D, config: CudaHalConfig) -> Self {
        CudaHal { dev, config, bases: Mutex::default(), plans: Mutex::default(), traffic: Mutex::default() }
    }

    /// Runs the operation `op`, adding the device traffic it caused to the
    /// operation's counts. The prover calls its Hal from one thread at a
    /// time; calls from several threads at once would share out their
    /// traffic between them as it happens.
    fn counted<T>(&self, op: &str, f: impl FnOnce() -> Result<T, ProverError>) -> Result<T, ProverError> {
        let before = self.dev.traffic();
        let out = f();
        let d = self.dev.traffic().since(before);
        let mut traffic = self.traffic.lock().unwrap_or_else(|e| e.into_inner());
        let t = traffic.entry(op.to_string()).or_default();
        t.calls += 1;
        t.launches += d.launches;
        t.host_to_device_bytes += d.host_to_device;
        t.device_to_host_bytes += d.device_to_host;
        out
    }

    /// The device.
    pub fn device(&self) -> &D {
        &self.dev
    }

    fn on_cpu(&self, len: usize) -> bool {
        len < self.config.cpu_below
    }

    /// Points per MSM launch: the configured chunk, lowered to what half the
    /// free device memory holds, a power of two, at least 2^10.
    fn msm_chunk(&self) -> usize {
        let mut chunk = self.config.msm_chunk.max(1 << 10);
        if let Some(free) = self.dev.free_memory() {
            chunk = chunk.min(free / 2 / MSM_BYTES_PER_POINT);
        }
        let chunk = chunk.max(1 << 10);
        1 << (usize::BITS - 1 - chunk.leading_zeros())
    }

    fn resident_bases(
        &self,
        params: &ParamsKZG<Bn256>,
        bases: Bases,
        chunk: usize,
    ) -> Result<ResidentBases<D>, ProverError> {
        let id = params.get_g().get(1).map(|p| p.to_raw_bytes()).unwrap_or_default();
        let key = (params.k(), bases, id, chunk);
        let mut cache = self.bases.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = cache.get(&key) {
            return Ok(b.clone());
        }
        let points = srs_bases(params, bases)?;
        let chunks = points
            .chunks(chunk)
            .map(|c| self.dev.upload(&repr::affines(c)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ProverError::Device)?;
        let chunks = Arc::new(chunks);
        cache.insert(key, chunks.clone());
        Ok(chunks)
    }

    fn plan(&self, log_n: u32) -> Result<Arc<NttPlan<D>>, ProverError> {
        let mut plans = self.plans.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = plans.get(&log_n) {
            return Ok(p.clone());
        }
        let plan = Arc::new(NttPlan::new(&self.dev, log_n).map_err(ProverError::Device)?);
        plans.insert(log_n, plan.clone());
        Ok(plan)
    }

    fn msm(&self, resident: &[Buffer<D, AffineRepr>], chunk: usize, scalars: &[Fr]) -> Result<G1, ProverError> {
        let mut acc = G1::default();
        for (i, bases) in resident.iter().enumerate() {
            let start = i * chunk;
            if start >= scalars.len() {
                break;
            }
            let end = (start + bases.len()).min(scalars.len());
            let mut s = repr::frs(&scalars[start..end]);
            // Zero scalars for the chunk's bases past the polynomial's end.
            s.resize(bases.len(), FieldRepr::default());
            let s = self.dev.upload(&s).map_err(ProverError::Device)?;
            let c = default_window_bits(bases.len());
            let r = msm::msm_buffers(&self.dev, &s, bases, c).map_err(ProverError::Device)?;
            acc += r.to_curve().map_err(ProverError::Device)?;
        }
        Ok(acc)
    }

    /// Runs `f` on groups of `polys` (each 2^log_n long) uploaded as one
    /// batch, returning the transformed values.
    fn transform_batches(
        &self,
        log_n: u32,
        polys: &[&[Fr]],
        f: impl Fn(&NttPlan<D>, &Buffer<D, FieldRepr>, u32) -> statesync_kernels::Result<()>,
    ) -> Result<Vec<Vec<Fr>>, ProverError> {
        let plan = self.plan(log_n)?;
        let n = 1usize << log_n;
        let per_batch = (NTT_BATCH_BYTES / (n * size_of::<FieldRepr>())).max(1);
        let mut out = Vec::with_capacity(polys.len());
        for group in polys.chunks(per_batch) {
            let buf = self.dev.upload(&repr::frs_flat(group)).map_err(ProverError::Device)?;
            f(&plan, &buf, group.len() as u32).map_err(ProverError::Device)?;
            out.extend(repr::to_frs_chunks(&self.dev.download(&buf).map_err(ProverError::Device)?, n));
        }
        Ok(out)
    }
}

impl<D: Device> Hal for CudaHal<D> {
    fn name(&self) -> String {
        format!("cuda on {}", self.dev.name())
    }

    fn backend(&self) -> Backend {
        if self.dev.is_emulator() {
            Backend::Emu
        } else {
            Backend::Cuda
        }
    }

    fn commit(&self, params: &ParamsKZG<Bn256>, bases: Bases, polys: &[&[Fr]]) -> Result<Vec<G1Affine>, ProverError> {
        self.counted("commit", || self.commit_op(params, bases, polys))
    }

    fn lagrange_to_coeff(&self, domain: &EvaluationDomain<Fr>, polys: &mut [Vec<Fr>]) -> Result<(), ProverError> {
        self.counted("lagrange_to_coeff", || self.lagrange_to_coeff_op(domain, polys))
    }

    fn coeff_to_extended_part(
        &self,
        domain: &EvaluationDomain<Fr>,
        polys: &[&[Fr]],
        factor: Fr,
    ) -> Result<Vec<Vec<Fr>>, ProverError> {
        self.counted("coeff_to_extended_part", || self.coeff_to_extended_part_op(domain, polys, factor))
    }

    fn commit_and_interpolate(
        &self,
        params: &ParamsKZG<Bn256>,
        domain: &EvaluationDomain<Fr>,
        polys: &mut [Vec<Fr>],
    ) -> Result<Vec<G1Affine>, ProverError> {
        self.counted("commit_and_interpolate", || self.commit_and_interpolate_op(params, domain, polys))
    }

    fn coeff_to_extended_parts(
        &self,
        domain: &EvaluationDomain<Fr>,
        polys: &[&[Fr]],
        factors: &[Fr],
        each: &mut dyn FnMut(usize, Vec<Vec<Fr>>) -> Result<(), ProverError>,
    ) -> Result<(), ProverError> {
        self.counted("coeff_to_extended_parts", || self.coeff_to_extended_parts_op(domain, polys, factors, each))
    }

    fn quotient_to_coeff(&self, domain: &EvaluationDomain<Fr>, parts: Vec<Vec<Fr>>) -> Result<Vec<Fr>, ProverError> {
        self.counted("quotient_to_coeff", || self.quotient_to_coeff_op(domain, parts))
    }

    fn batch_invert(&self, values: &mut [Fr]) -> Result<(), ProverError> {
        self.counted("batch_invert", || self.batch_invert_op(values))
    }

    fn traffic(&self) -> TrafficReport {
        self.traffic.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The Hal's operations themselves; [`Hal for CudaHal`](Hal) counts their traffic.
impl<D: Device> CudaHal<D> {
    fn commit_op(
        &self,
        params: &ParamsKZG<Bn256>,
        bases: Bases,
        polys: &[&[Fr]],
    ) -> Result<Vec<G1Affine>, ProverError> {
        let chunk = self.msm_chunk();
        let mut projective = Vec::with_capacity(polys.len());
        for p in polys {
            check_len(params, p.len())?;
            if self.on_cpu(p.len()) {
                projective.push(CpuHal.commit(params, bases, &[p])?[0].into());
            } else {
                let resident = self.resident_bases(params, bases, chunk)?;
                projective.push(self.msm(&resident, chunk, p)?);
            }
        }
        let mut affine = vec![G1Affine::default(); projective.len()];
        G1::batch_normalize(&projective, &mut affine);
        Ok(affine)
    }

    fn lagrange_to_coeff_op(&self, domain: &EvaluationDomain<Fr>, polys: &mut [Vec<Fr>]) -> Result<(), ProverError> {
        check_domain(domain, polys)?;
        if self.on_cpu(1 << domain.k()) {
            return CpuHal.lagrange_to_coeff(domain, polys);
        }
        let views: Vec<&[Fr]> = polys.iter().map(Vec::as_slice).collect();
        let out = self.transform_batches(domain.k(), &views, |plan, buf, batch| {
            plan.run(&self.dev, buf, batch, Direction::Inverse)
        })?;
        for (p, o) in polys.iter_mut().zip(out) {
            *p = o;
        }
        Ok(())
    }

    fn coeff_to_extended_part_op(
        &self,
        domain: &EvaluationDomain<Fr>,
        polys: &[&[Fr]],
        factor: Fr,
    ) -> Result<Vec<Vec<Fr>>, ProverError> {
        check_domain(domain, polys)?;
        if self.on_cpu(1 << domain.k()) {
            return CpuHal.coeff_to_extended_part(domain, polys, factor);
        }
        let g = Fr::ZETA * factor;
        self.transform_batches(domain.k(), polys, |plan, buf, batch| {
            plan.run_coset(&self.dev, buf, batch, Direction::Forward, &g)
        })
    }

    /// Each polynomial goes up once: the MSM reads it on the device, then the
    /// inverse NTT transforms it in place and it comes back. Polynomials of
    /// another length than the SRS, or MSMs split into chunks, take the two
    /// operations one after the other.
    fn commit_and_interpolate_op(
        &self,
        params: &ParamsKZG<Bn256>,
        domain: &EvaluationDomain<Fr>,
        polys: &mut [Vec<Fr>],
    ) -> Result<Vec<G1Affine>, ProverError> {
        check_domain(domain, polys)?;
        let n = 1usize << domain.k();
        let chunk = self.msm_chunk();
        if self.on_cpu(n) || n != params.n() as usize || chunk < n {
            let views: Vec<&[Fr]> = polys.iter().map(Vec::as_slice).collect();
            let commitments = self.commit_op(params, Bases::Lagrange, &views)?;
            self.lagrange_to_coeff_op(domain, polys)?;
            return Ok(commitments);
        }
        let resident = self.resident_bases(params, Bases::Lagrange, chunk)?;
        let [bases] = &resident[..] else {
            return Err(ProverError::Hal(format!("{} chunks of SRS bases for one chunk of {chunk}", resident.len())));
        };
        let plan = self.plan(domain.k())?;
        let mut projective = Vec::with_capacity(polys.len());
        for p in polys.iter_mut() {
            let buf = self.dev.upload(&repr::frs(p)).map_err(ProverError::Device)?;
            let r = msm::msm_buffers(&self.dev, &buf, bases, default_window_bits(n)).map_err(ProverError::Device)?;
            projective.push(r.to_curve().map_err(ProverError::Device)?);
            plan.run(&self.dev, &buf, 1, Direction::Inverse).map_err(ProverError::Device)?;
            repr::to_frs_into(&self.dev.download(&buf).map_err(ProverError::Device)?, p);
        }
        let mut affine = vec![G1Affine::default(); projective.len()];
        G1::batch_normalize(&projective, &mut affine);
        Ok(affine)
    }

    /// The polynomials go up once, in batches that stay resident; each part
    /// transforms a copy made on the device and comes back. When they would
    /// take more than half the free device memory, one part at a time as
    /// the default does (uploading them per part).
    fn coeff_to_extended_parts_op(
        &self,
        domain: &EvaluationDomain<Fr>,
        polys: &[&[Fr]],
        factors: &[Fr],
        each: &mut dyn FnMut(usize, Vec<Vec<Fr>>) -> Result<(), ProverError>,
    ) -> Result<(), ProverError> {
        check_domain(domain, polys)?;
        let n = 1usize << domain.k();
        let fits = self.dev.free_memory().is_none_or(|free| polys.len() * n * size_of::<FieldRepr>() <= free / 2);
        if self.on_cpu(n) || !fits || factors.len() < 2 {
            for (i, factor) in factors.iter().enumerate() {
                each(i, self.coeff_to_extended_part_op(domain, polys, *factor)?)?;
            }
            return Ok(());
        }
        let plan = self.plan(domain.k())?;
        let per_batch = (NTT_BATCH_BYTES / (n * size_of::<FieldRepr>())).max(1);
        let resident = polys
            .chunks(per_batch)
            .map(|group| Ok((group.len() as u32, self.dev.upload(&repr::frs_flat(group))?)))
            .collect::<statesync_kernels::Result<Vec<_>>>()
            .map_err(ProverError::Device)?;
        for (i, factor) in factors.iter().enumerate() {
            let g = Fr::ZETA * factor;
            let mut out = Vec::with_capacity(polys.len());
            for (batch, coeffs) in &resident {
                let buf = self.dev.duplicate(coeffs).map_err(ProverError::Device)?;
                plan.run_coset(&self.dev, &buf, *batch, Direction::Forward, &g).map_err(ProverError::Device)?;
                out.extend(repr::to_frs_chunks(&self.dev.download(&buf).map_err(ProverError::Device)?, n));
            }
            each(i, out)?;
        }
        Ok(())
    }

    fn quotient_to_coeff_op(&self, domain: &EvaluationDomain<Fr>, parts: Vec<Vec<Fr>>) -> Result<Vec<Fr>, ProverError> {
        check_parts(domain, &parts)?;
        if self.on_cpu(domain.extended_len()) {
            return CpuHal.quotient_to_coeff(domain, parts);
        }
        // Interleave the parts (point t of the extended coset is point t / m
        // of part t % m) and divide by X^n - 1 on the host: both O(n).
        let parts = parts.into_iter().map(|p| domain.lagrange_from_vec(p)).collect();
        let extended = domain.divide_by_vanishing_poly(domain.extended_from_lagrange_vec(parts));
        let mut out = self.transform_batches(domain.extended_k(), &[extended.values()], |plan, buf, batch| {
            plan.run_coset(&self.dev, buf, batch, Direction::Inverse, &Fr::ZETA)
        })?;
        let mut coeffs = out.pop().unwrap_or_default();
        coeffs.truncate((1usize << domain.k()) * domain.get_quotient_poly_degree());
        Ok(coeffs)
    }

    fn batch_invert_op(&self, values: &mut [Fr]) -> Result<(), ProverError> {
        if self.on_cpu(values.len()) {
            return CpuHal.batch_invert(values);
        }
        let a = self.dev.upload(&repr::frs(values)).map_err(ProverError::Device)?;
        let out = self.dev.zeros::<FieldRepr>(values.len()).map_err(ProverError::Device)?;
        poly::batch_invert(&self.dev, &out, &a).map_err(ProverError::Device)?;
        repr::to_frs_into(&self.dev.download(&out).map_err(ProverError::Device)?, values);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_threshold_from_the_environment_value() {
        let d = CudaHalConfig::default();
        assert_eq!(d.with_cpu_below(None).unwrap(), d);
        assert_eq!(d.with_cpu_below(Some("0")).unwrap().cpu_below, 0);
        assert_eq!(d.with_cpu_below(Some(" 65536 ")).unwrap(), CudaHalConfig { cpu_below: 65536, ..d });
        let e = d.with_cpu_below(Some("4k")).unwrap_err().to_string();
        assert!(e.contains(CPU_BELOW_VAR) && e.contains("\"4k\""), "{e}");
        assert!(d.with_cpu_below(Some("-1")).is_err());
    }
}
