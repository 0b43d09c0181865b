//! The kernels against halo2curves and halo2-axiom, as checks generic over
//! [`Device`]: the kernel tests run them on the emulator in every thread
//! order (`tests/kernels.rs`), and `statesync-bench gpu-check` runs the very
//! same bodies on a GPU. A check returns the first mismatch as a
//! [`Failure`] naming the operation, the input and both values; it never
//! panics on a wrong device result.

use std::fmt;

use halo2_proofs::arithmetic::{best_fft, best_multiexp};
use halo2_proofs::fft::recursive::FFTData;
use halo2_proofs::poly::EvaluationDomain;
use halo2curves::bn256::{Fq, Fr, G1Affine, G1};
use halo2curves::ff::{Field, PrimeField, WithSmallOrderMulGroup};
use halo2curves::group::prime::PrimeCurveAffine;
use halo2curves::group::{Curve, Group};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::msm::{self, default_window_bits};
use crate::ntt::{self, Direction, NttPlan};
use crate::poly::{self, BinaryOp};
use crate::registry::{kernels, Kernel};
use crate::repr::{self, FieldRepr, JacobianRepr};
use crate::{Arg, Device, KernelError, Launch};

/// Why a check failed: a result that differs from the reference, or a
/// device error where a result was due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

impl From<KernelError> for Failure {
    fn from(e: KernelError) -> Self {
        Failure(format!("device error: {e}"))
    }
}

/// A check's result.
pub type Outcome = Result<(), Failure>;

/// One generic check body.
pub type Check<D> = fn(&D) -> Outcome;

/// Every check, by name, in the order `gpu-check` runs them.
pub fn all<D: Device>() -> [(&'static str, Check<D>); 6] {
    [
        ("field ops (Fr, Fq)", field_ops_match_halo2curves::<D>),
        ("curve ops (G1)", point_ops_match_halo2curves::<D>),
        ("msm (edge cases, every window size, skewed scalars)", msm_matches_halo2curves::<D>),
        ("ntt, intt, coset ntt (k = 1..12)", ntt_matches_halo2_evaluation_domain::<D>),
        ("batched ntt", batched_ntt_matches_single::<D>),
        ("element-wise kernels", elementwise_kernels_match_halo2curves::<D>),
    ]
}

/// `Err` naming `what` unless `got == expected`.
fn same<T: PartialEq + fmt::Debug>(got: T, expected: T, what: impl fmt::Display) -> Outcome {
    if got == expected {
        Ok(())
    } else {
        Err(Failure(format!("{what}: got {got:?}, expected {expected:?}")))
    }
}

/// `Err` naming `what` and the first differing element unless the slices
/// are equal.
fn same_slices<T: PartialEq + fmt::Debug>(got: &[T], expected: &[T], what: impl fmt::Display) -> Outcome {
    if got.len() != expected.len() {
        return Err(Failure(format!("{what}: {} elements, expected {}", got.len(), expected.len())));
    }
    match got.iter().zip(expected).position(|(a, b)| a != b) {
        None => Ok(()),
        Some(i) => Err(Failure(format!("{what}: element {i} is {:?}, expected {:?}", got[i], expected[i]))),
    }
}

/// `Err(what)` unless `ok`.
fn holds(ok: bool, what: impl fmt::Display) -> Outcome {
    if ok {
        Ok(())
    } else {
        Err(Failure(what.to_string()))
    }
}

/// `Err` naming `what` unless `r` is an error (bad input must be refused).
fn refused<T>(r: crate::Result<T>, what: &str) -> Outcome {
    holds(r.is_err(), format!("{what}: accepted, must be refused"))
}

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// Scalars a Pippenger implementation gets wrong first: 0, 1, 2, r-1, r-2,
/// 2^253, all-ones windows, and values whose top window is full.
fn edge_scalars() -> Vec<Fr> {
    let r_minus = |k: u64| -Fr::from(k);
    vec![
        Fr::ZERO,
        Fr::ONE,
        Fr::from(2),
        r_minus(1),
        r_minus(2),
        Fr::from(2).pow([253]),
        Fr::from(2).pow([253]) - Fr::ONE,
        Fr::from(u64::MAX),
        Fr::from(0xffff),
        Fr::from(2).pow([128]) * Fr::from(u64::MAX),
    ]
}

fn random_points(n: usize, r: &mut ChaCha20Rng) -> Vec<G1Affine> {
    // A few distinct random points, repeated, with the identity mixed in.
    let distinct: Vec<G1Affine> =
        (0..n.clamp(1, 64)).map(|_| (G1::generator() * Fr::random(&mut *r)).to_affine()).collect();
    (0..n)
        .map(|i| match i % 17 {
            5 => G1Affine::identity(),
            _ => distinct[r.gen_range(0..distinct.len())],
        })
        .collect()
}

fn fr_u32(x: &Fr) -> u32 {
    let repr = x.to_repr();
    u32::from_le_bytes([repr[0], repr[1], repr[2], repr[3]])
}

/// The self-test kernels' Fr and Fq arithmetic (add, sub, mul, neg, square,
/// invert, Montgomery conversions) on edge and random values.
pub fn field_ops_match_halo2curves<D: Device>(dev: &D) -> Outcome {
    let mut r = rng(1);
    let mut a: Vec<Fr> = edge_scalars();
    let mut b: Vec<Fr> = edge_scalars().into_iter().rev().collect();
    for _ in 0..100 {
        a.push(Fr::random(&mut r));
        b.push(Fr::random(&mut r));
    }
    field_ops(dev, kernels::FR_OPS, "Fr", &a, &b, FieldRepr::to_fr)?;
    let qa: Vec<Fq> = (0..64).map(|_| Fq::random(&mut r)).chain([Fq::ZERO, Fq::ONE, -Fq::ONE]).collect();
    let qb: Vec<Fq> = qa.iter().rev().copied().collect();
    field_ops(dev, kernels::FQ_OPS, "Fq", &qa, &qb, FieldRepr::to_fq)
}

/// One of the `fr_ops`/`fq_ops` kernels on the pairs `(a[i], b[i])`: eight
/// results per pair, in the kernel's order.
fn field_ops<D: Device, F>(dev: &D, kernel: Kernel, field: &str, a: &[F], b: &[F], back: fn(&FieldRepr) -> F) -> Outcome
where
    F: PrimeField + fmt::Debug,
    for<'a> FieldRepr: From<&'a F>,
{
    let n = a.len();
    let to = |v: &[F]| v.iter().map(FieldRepr::from).collect::<Vec<_>>();
    let (da, db) = (dev.upload(&to(a))?, dev.upload(&to(b))?);
    let out = dev.zeros::<FieldRepr>(8 * n)?;
    // SAFETY: (a, b, out, n) as fr_ops and fq_ops take them; out holds 8n
    // elements.
    unsafe { dev.launch(kernel, Launch::linear(n as u64, 64)?, &[da.arg(), db.arg(), out.arg(), Arg::U64(n as u64)]) }?;
    let out = dev.download(&out)?;
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        let o = &out[8 * i..8 * i + 8];
        same(back(&o[0]), x + y, format_args!("{field} add {i}"))?;
        same(back(&o[1]), x - y, format_args!("{field} sub {i}"))?;
        same(back(&o[2]), x * y, format_args!("{field} mul {i}"))?;
        same(back(&o[3]), -x, format_args!("{field} neg {i}"))?;
        same(back(&o[4]), x.square(), format_args!("{field} square {i}"))?;
        same(back(&o[5]), x.invert().unwrap_or(F::ZERO), format_args!("{field} invert {i}"))?;
        same(bytemuck::bytes_of(&o[6]), x.to_repr().as_ref(), format_args!("{field} from_mont {i}"))?;
        same(back(&o[7]), x, format_args!("{field} to_mont round trip {i}"))?;
    }
    Ok(())
}

/// G1 addition (with the identity, doubling and inverse cases), mixed
/// addition, doubling and small scalar multiplication.
pub fn point_ops_match_halo2curves<D: Device>(dev: &D) -> Outcome {
    const G1_OPS: Kernel = kernels::G1_OPS;
    let mut r = rng(2);
    let g = G1::generator();
    let mut p: Vec<G1Affine> = Vec::new();
    let mut q: Vec<G1Affine> = Vec::new();
    let mut k: Vec<Fr> = Vec::new();
    for i in 0..40 {
        let a = (g * Fr::random(&mut r)).to_affine();
        let b = (g * Fr::random(&mut r)).to_affine();
        let (pa, qb) = match i {
            0 => (G1Affine::identity(), b),
            1 => (a, G1Affine::identity()),
            2 => (G1Affine::identity(), G1Affine::identity()),
            3 => (a, a),
            4 => (a, -a),
            _ => (a, b),
        };
        p.push(pa);
        q.push(qb);
        k.push(Fr::from(u64::from(r.gen::<u32>() >> (i % 32))));
    }
    let n = p.len();
    let dp = dev.upload(&repr::affines(&p))?;
    let dq = dev.upload(&repr::affines(&q))?;
    let dk = dev.upload(&repr::frs(&k))?;
    let out = dev.zeros::<JacobianRepr>(4 * n)?;
    // SAFETY: (p, q, k, out, n) as g1_ops takes them; out holds 4n points.
    unsafe {
        dev.launch(
            G1_OPS,
            Launch::linear(n as u64, 32)?,
            &[dp.arg(), dq.arg(), dk.arg(), out.arg(), Arg::U64(n as u64)],
        )
    }?;
    let out = dev.download(&out)?;
    for i in 0..n {
        let o = &out[4 * i..4 * i + 4];
        let sum = (G1::from(p[i]) + q[i]).to_affine();
        same(o[0].to_affine()?, sum, format_args!("add {i}"))?;
        same(o[1].to_affine()?, sum, format_args!("mixed add {i}"))?;
        same(o[2].to_affine()?, G1::from(p[i]).double().to_affine(), format_args!("double {i}"))?;
        same(o[3].to_affine()?, (p[i] * Fr::from(u64::from(fr_u32(&k[i])))).to_affine(), format_args!("mul {i}"))?;
    }
    Ok(())
}

/// MSMs against `best_multiexp`: sizes 1..4096 with edge scalars and
/// repeats, every window size, all-zero scalars, all-identity points,
/// skewed scalars (one bucket holds every point), and refused bad input.
pub fn msm_matches_halo2curves<D: Device>(dev: &D) -> Outcome {
    let mut r = rng(3);
    for &n in &[1usize, 2, 3, 7, 255, 256, 1000, 4096] {
        let bases = random_points(n, &mut r);
        let edge = edge_scalars();
        // Random scalars with edge cases and repeats spread through them.
        let scalars: Vec<Fr> = (0..n)
            .map(|i| match i % 5 {
                0 => edge[(i / 5) % edge.len()],
                1 if i > 5 => Fr::from(7),
                _ => Fr::random(&mut r),
            })
            .collect();
        let expected = best_multiexp(&scalars, &bases).to_affine();
        let got = msm::msm(dev, &scalars, &bases, None)?.to_affine();
        same(got, expected, format_args!("msm n = {n}, window {}", default_window_bits(n)))?;
    }
    // Every window size on one input, including 1 bit and the largest.
    let bases = random_points(300, &mut r);
    let scalars: Vec<Fr> = (0..300).map(|_| Fr::random(&mut r)).collect();
    let expected = best_multiexp(&scalars, &bases).to_affine();
    for c in [1, 2, 5, 8, 11, 13, 16] {
        same(msm::msm(dev, &scalars, &bases, Some(c))?.to_affine(), expected, format_args!("msm window {c}"))?;
    }
    // All scalars zero, all points the identity, and every scalar r - 1.
    let zeros = vec![Fr::ZERO; 50];
    same(msm::msm(dev, &zeros, &bases[..50], None)?, G1::identity(), "msm of zero scalars")?;
    let ids = vec![G1Affine::identity(); 50];
    same(msm::msm(dev, &scalars[..50], &ids, None)?, G1::identity(), "msm of identity points")?;
    let minus_one = vec![-Fr::ONE; 50];
    same(
        msm::msm(dev, &minus_one, &bases[..50], None)?.to_affine(),
        best_multiexp(&minus_one, &bases[..50]).to_affine(),
        "msm of r - 1 scalars",
    )?;
    // Skewed scalars (one bucket per window holds every point), as halo2's
    // selector and fixed columns give: all ones, and all 2^16 - 1; more than
    // CHUNK^2 points in one bucket take two merge rounds.
    for s in [Fr::ONE, Fr::from(0xffff)] {
        let same_scalars = vec![s; 3000];
        let bases = random_points(3000, &mut r);
        same(
            msm::msm(dev, &same_scalars, &bases, None)?.to_affine(),
            best_multiexp(&same_scalars, &bases).to_affine(),
            format_args!("msm with every scalar {s:?}"),
        )?;
    }
    // Bad input is an error, not a panic.
    refused(msm::msm(dev, &scalars[..3], &bases[..2], None), "msm of 3 scalars on 2 bases")?;
    refused(msm::msm(dev, &scalars[..3], &bases[..3], Some(17)), "msm with a 17-bit window")?;
    same(msm::msm(dev, &[], &[], None)?, G1::identity(), "empty msm")
}

/// Forward, inverse and coset NTTs for k = 1..12 against halo2-axiom's
/// `best_fft` and `EvaluationDomain`.
pub fn ntt_matches_halo2_evaluation_domain<D: Device>(dev: &D) -> Outcome {
    let mut r = rng(4);
    for k in 1..=12u32 {
        let n = 1usize << k;
        let coeffs: Vec<Fr> = (0..n).map(|_| Fr::random(&mut r)).collect();
        // Forward: halo2-axiom's FFT.
        let domain = EvaluationDomain::<Fr>::new(2, k);
        let (w, w_inv) = (domain.get_omega(), domain.get_omega_inv());
        same(w, ntt::omega(k)?, format_args!("omega k = {k}"))?;
        let mut expected = coeffs.clone();
        best_fft(&mut expected, w, k, &FFTData::new(n, w, w_inv), false);
        let mut got = coeffs.clone();
        ntt::ntt(dev, &mut got, Direction::Forward, None)?;
        same_slices(&got, &expected, format_args!("forward k = {k}"))?;
        // Inverse: the domain's lagrange_to_coeff.
        let back = domain.lagrange_to_coeff(domain.lagrange_from_vec(expected.clone()));
        ntt::ntt(dev, &mut got, Direction::Inverse, None)?;
        same_slices(&got[..], &back[..], format_args!("inverse k = {k}"))?;
        same_slices(&got, &coeffs, format_args!("inverse k = {k} (round trip)"))?;
        // Coset: coeff_to_extended on the extended domain (j = 5: 4n points
        // over zeta*H), and back with extended_to_coeff.
        let domain = EvaluationDomain::<Fr>::new(5, k);
        let ext = domain.coeff_to_extended(&domain.coeff_from_vec(coeffs.clone()));
        let mut padded = coeffs.clone();
        padded.resize(1 << domain.extended_k(), Fr::ZERO);
        ntt::ntt(dev, &mut padded, Direction::Forward, Some(&Fr::ZETA))?;
        same_slices(&padded[..], &ext[..], format_args!("coset k = {k}"))?;
        let expected_back = domain.extended_to_coeff(ext);
        ntt::ntt(dev, &mut padded, Direction::Inverse, Some(&Fr::ZETA))?;
        same_slices(&padded[..expected_back.len()], &expected_back[..], format_args!("coset inverse k = {k}"))?;
        holds(padded[n..].iter().all(|x| bool::from(x.is_zero())), format_args!("coset inverse k = {k}: padding"))?;
    }
    Ok(())
}

/// Batched NTTs (several polynomials per launch) equal one-by-one
/// transforms; coset round trips; wrong lengths refused.
pub fn batched_ntt_matches_single<D: Device>(dev: &D) -> Outcome {
    let mut r = rng(5);
    for (k, batch) in [(3u32, 5u32), (10, 3), (11, 2)] {
        let n = 1usize << k;
        let polys: Vec<Vec<Fr>> = (0..batch).map(|_| (0..n).map(|_| Fr::random(&mut r)).collect()).collect();
        let flat: Vec<Fr> = polys.concat();
        let plan = NttPlan::new(dev, k)?;
        let buf = dev.upload(&repr::frs(&flat))?;
        plan.run(dev, &buf, batch, Direction::Forward)?;
        let out = repr::to_frs(&dev.download(&buf)?);
        let w = ntt::omega(k)?;
        let w_inv = Option::<Fr>::from(w.invert()).ok_or_else(|| Failure(format!("omega of k = {k} is zero")))?;
        let data = FFTData::new(n, w, w_inv);
        for (i, p) in polys.iter().enumerate() {
            let mut e = p.clone();
            best_fft(&mut e, w, k, &data, false);
            same_slices(&out[i * n..(i + 1) * n], &e[..], format_args!("batched k = {k}, polynomial {i}"))?;
        }
        plan.run_coset(dev, &buf, batch, Direction::Inverse, &Fr::ZETA)?;
        plan.run_coset(dev, &buf, batch, Direction::Forward, &Fr::ZETA)?;
        same_slices(&repr::to_frs(&dev.download(&buf)?), &out, format_args!("coset round trip k = {k}"))?;
        // A buffer of the wrong length is refused.
        refused(plan.run(dev, &buf, batch + 1, Direction::Forward), "a batch longer than the buffer")?;
    }
    refused(NttPlan::new(dev, 0), "an NTT plan of size 1")?;
    refused(ntt::ntt(dev, &mut [Fr::ONE; 3], Direction::Forward, None), "an NTT of 3 elements")
}

/// Add, sub, mul, scale, batch inversion (zeros stay zero), powers, in
/// place where allowed; mismatched lengths and aliasing refused.
pub fn elementwise_kernels_match_halo2curves<D: Device>(dev: &D) -> Outcome {
    let mut r = rng(6);
    for n in [1usize, 255, 1000] {
        let a: Vec<Fr> = (0..n).map(|i| if i % 7 == 3 { Fr::ZERO } else { Fr::random(&mut r) }).collect();
        let b: Vec<Fr> = (0..n).map(|_| Fr::random(&mut r)).collect();
        let (da, db) = (dev.upload(&repr::frs(&a))?, dev.upload(&repr::frs(&b))?);
        let out = dev.zeros::<FieldRepr>(n)?;
        let get = |buf| -> Result<Vec<Fr>, Failure> { Ok(repr::to_frs(&dev.download(buf)?)) };
        for (op, f) in [
            (BinaryOp::Add, (|x, y| x + y) as fn(Fr, Fr) -> Fr),
            (BinaryOp::Sub, |x, y| x - y),
            (BinaryOp::Mul, |x, y| x * y),
        ] {
            poly::binary(dev, op, &out, &da, &db)?;
            let expected: Vec<Fr> = a.iter().zip(&b).map(|(x, y)| f(*x, *y)).collect();
            same_slices(&get(&out)?, &expected, format_args!("{op:?} n = {n}"))?;
        }
        let s = Fr::random(&mut r);
        poly::scale(dev, &out, &da, &s)?;
        same_slices(&get(&out)?, &a.iter().map(|x| x * s).collect::<Vec<_>>(), format_args!("scale n = {n}"))?;
        poly::batch_invert(dev, &out, &da)?;
        let expected: Vec<Fr> = a.iter().map(|x| x.invert().unwrap_or(Fr::ZERO)).collect();
        same_slices(&get(&out)?, &expected, format_args!("batch invert n = {n}"))?;
        let g = Fr::random(&mut r);
        let d = dev.upload(&repr::frs(&a))?;
        poly::distribute_powers(dev, &d, &g, n as u64, 1)?;
        let mut gi = Fr::ONE;
        let expected: Vec<Fr> = a
            .iter()
            .map(|x| {
                let v = x * gi;
                gi *= g;
                v
            })
            .collect();
        same_slices(&get(&d)?, &expected, format_args!("distribute powers n = {n}"))?;
        // In place (out aliases an input) is allowed for these kernels.
        poly::binary(dev, BinaryOp::Add, &da, &da, &db)?;
        let sums: Vec<Fr> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        same_slices(&get(&da)?, &sums, format_args!("add in place n = {n}"))?;
    }
    let (x, y) = (dev.zeros::<FieldRepr>(3)?, dev.zeros::<FieldRepr>(4)?);
    refused(poly::binary(dev, BinaryOp::Mul, &x, &x, &y), "a product of buffers of 3 and 4 elements")?;
    // Batch inversion in place would read what it already wrote: refused.
    refused(poly::batch_invert(dev, &x, &x), "batch inversion in place")?;
    refused(poly::distribute_powers(dev, &x, &Fr::ONE, u64::MAX, 2), "powers beyond the buffer")?;
    // Sizes beyond what a device can address are errors, not panics.
    refused(dev.zeros::<FieldRepr>(usize::MAX / 8), "a buffer of 2^61 elements")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mismatch_names_the_first_differing_element() {
        assert_eq!(same_slices(&[1, 2, 3], &[1, 2, 3], "x"), Ok(()));
        assert_eq!(same_slices(&[1, 5, 3], &[1, 2, 3], "ntt"), Err(Failure("ntt: element 1 is 5, expected 2".into())));
        assert_eq!(same_slices(&[1], &[1, 2], "ntt"), Err(Failure("ntt: 1 elements, expected 2".into())));
        assert_eq!(same(3, 4, "add 0"), Err(Failure("add 0: got 3, expected 4".into())));
        assert!(refused::<()>(Ok(()), "bad input").is_err());
        assert!(refused::<()>(Err(KernelError::InvalidInput("x".into())), "bad input").is_ok());
    }
}
