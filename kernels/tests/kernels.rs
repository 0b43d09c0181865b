//! The kernels against halo2curves and halo2-axiom. Every test body is
//! generic over `Device` and runs on the emulator in forward, reverse and
//! shuffled thread order (results must not change) and, `#[ignore]`d unless
//! run with `--ignored` on a GPU host, on `CudaDevice`.

use halo2_proofs::arithmetic::best_multiexp;
use halo2_proofs::fft::recursive::FFTData;
use halo2_proofs::poly::EvaluationDomain;
use halo2curves::bn256::{Fq, Fr, G1Affine, G1};
use halo2curves::ff::{Field, PrimeField, WithSmallOrderMulGroup};
use halo2curves::group::prime::PrimeCurveAffine;
use halo2curves::group::{Curve, Group};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use statesync_kernels::msm::{self, default_window_bits};
use statesync_kernels::ntt::{self, Direction, NttPlan};
use statesync_kernels::poly::{self, BinaryOp};
use statesync_kernels::registry::{Kernel, SELFTEST};
use statesync_kernels::repr::{self, AffineRepr, FieldRepr, JacobianRepr};
use statesync_kernels::{Arg, Device, Launch};

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
    u32::from_le_bytes(x.to_repr()[..4].try_into().unwrap())
}

// ---- generic bodies ----------------------------------------------------

fn field_ops_match_halo2curves<D: Device>(dev: &D) {
    const FR_OPS: Kernel = Kernel::new(&SELFTEST, "fr_ops");
    const FQ_OPS: Kernel = Kernel::new(&SELFTEST, "fq_ops");
    let mut r = rng(1);
    let mut a: Vec<Fr> = edge_scalars();
    let mut b: Vec<Fr> = edge_scalars().into_iter().rev().collect();
    for _ in 0..100 {
        a.push(Fr::random(&mut r));
        b.push(Fr::random(&mut r));
    }
    let n = a.len();
    let (da, db) = (dev.upload(&repr::frs(&a)).unwrap(), dev.upload(&repr::frs(&b)).unwrap());
    let out = dev.zeros::<FieldRepr>(8 * n).unwrap();
    // SAFETY: (a, b, out, n) as fr_ops takes them; out holds 8n elements.
    unsafe {
        dev.launch(FR_OPS, Launch::linear(n as u64, 64).unwrap(), &[da.arg(), db.arg(), out.arg(), Arg::U64(n as u64)])
    }
    .unwrap();
    let out = dev.download(&out).unwrap();
    for i in 0..n {
        let (x, y) = (a[i], b[i]);
        let o = &out[8 * i..8 * i + 8];
        assert_eq!(o[0].to_fr(), x + y, "add {i}");
        assert_eq!(o[1].to_fr(), x - y, "sub {i}");
        assert_eq!(o[2].to_fr(), x * y, "mul {i}");
        assert_eq!(o[3].to_fr(), -x, "neg {i}");
        assert_eq!(o[4].to_fr(), x.square(), "square {i}");
        assert_eq!(o[5].to_fr(), x.invert().unwrap_or(Fr::ZERO), "invert {i}");
        assert_eq!(bytemuck::bytes_of(&o[6]), &x.to_repr()[..], "from_mont {i}");
        assert_eq!(o[7].to_fr(), x, "to_mont round trip {i}");
    }

    let qa: Vec<Fq> = (0..64).map(|_| Fq::random(&mut r)).chain([Fq::ZERO, Fq::ONE, -Fq::ONE]).collect();
    let qb: Vec<Fq> = qa.iter().rev().copied().collect();
    let n = qa.len();
    let to = |v: &[Fq]| v.iter().map(FieldRepr::from).collect::<Vec<_>>();
    let (da, db) = (dev.upload(&to(&qa)).unwrap(), dev.upload(&to(&qb)).unwrap());
    let out = dev.zeros::<FieldRepr>(8 * n).unwrap();
    // SAFETY: (a, b, out, n) as fq_ops takes them; out holds 8n elements.
    unsafe {
        dev.launch(FQ_OPS, Launch::linear(n as u64, 64).unwrap(), &[da.arg(), db.arg(), out.arg(), Arg::U64(n as u64)])
    }
    .unwrap();
    let out = dev.download(&out).unwrap();
    for i in 0..n {
        let (x, y) = (qa[i], qb[i]);
        let o = &out[8 * i..8 * i + 8];
        assert_eq!(o[0].to_fq(), x + y);
        assert_eq!(o[1].to_fq(), x - y);
        assert_eq!(o[2].to_fq(), x * y);
        assert_eq!(o[3].to_fq(), -x);
        assert_eq!(o[4].to_fq(), x.square());
        assert_eq!(o[5].to_fq(), x.invert().unwrap_or(Fq::ZERO));
        assert_eq!(bytemuck::bytes_of(&o[6]), &x.to_repr()[..]);
        assert_eq!(o[7].to_fq(), x);
    }
}

fn point_ops_match_halo2curves<D: Device>(dev: &D) {
    const G1_OPS: Kernel = Kernel::new(&SELFTEST, "g1_ops");
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
    let dp = dev.upload(&repr::affines(&p)).unwrap();
    let dq = dev.upload(&repr::affines(&q)).unwrap();
    let dk = dev.upload(&repr::frs(&k)).unwrap();
    let out = dev.zeros::<JacobianRepr>(4 * n).unwrap();
    // SAFETY: (p, q, k, out, n) as g1_ops takes them; out holds 4n points.
    unsafe {
        dev.launch(
            G1_OPS,
            Launch::linear(n as u64, 32).unwrap(),
            &[dp.arg(), dq.arg(), dk.arg(), out.arg(), Arg::U64(n as u64)],
        )
    }
    .unwrap();
    let out = dev.download(&out).unwrap();
    for i in 0..n {
        let o = &out[4 * i..4 * i + 4];
        let sum = (G1::from(p[i]) + q[i]).to_affine();
        assert_eq!(o[0].to_affine().unwrap(), sum, "add {i}");
        assert_eq!(o[1].to_affine().unwrap(), sum, "mixed add {i}");
        assert_eq!(o[2].to_affine().unwrap(), G1::from(p[i]).double().to_affine(), "double {i}");
        assert_eq!(o[3].to_affine().unwrap(), (p[i] * Fr::from(u64::from(fr_u32(&k[i])))).to_affine(), "mul {i}");
    }
}

fn msm_matches_halo2curves<D: Device>(dev: &D) {
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
        let got = msm::msm(dev, &scalars, &bases, None).unwrap().to_affine();
        assert_eq!(got, expected, "n = {n}, window {}", default_window_bits(n));
    }
    // Every window size on one input, including 1 bit and the largest.
    let bases = random_points(300, &mut r);
    let scalars: Vec<Fr> = (0..300).map(|_| Fr::random(&mut r)).collect();
    let expected = best_multiexp(&scalars, &bases).to_affine();
    for c in [1, 2, 5, 8, 11, 13, 16] {
        assert_eq!(msm::msm(dev, &scalars, &bases, Some(c)).unwrap().to_affine(), expected, "window {c}");
    }
    // All scalars zero, all points the identity, and every scalar r - 1.
    let zeros = vec![Fr::ZERO; 50];
    assert_eq!(msm::msm(dev, &zeros, &bases[..50], None).unwrap(), G1::identity());
    let ids = vec![G1Affine::identity(); 50];
    assert_eq!(msm::msm(dev, &scalars[..50], &ids, None).unwrap(), G1::identity());
    let minus_one = vec![-Fr::ONE; 50];
    assert_eq!(
        msm::msm(dev, &minus_one, &bases[..50], None).unwrap().to_affine(),
        best_multiexp(&minus_one, &bases[..50]).to_affine()
    );
    // Skewed scalars (one bucket per window holds every point), as halo2's
    // selector and fixed columns give: all ones, and all 2^16 - 1.
    for s in [Fr::ONE, Fr::from(0xffff)] {
        let same = vec![s; 1000];
        let bases = random_points(1000, &mut r);
        assert_eq!(
            msm::msm(dev, &same, &bases, None).unwrap().to_affine(),
            best_multiexp(&same, &bases).to_affine(),
            "all scalars {s:?}"
        );
    }
    // Bad input is an error, not a panic.
    assert!(msm::msm(dev, &scalars[..3], &bases[..2], None).is_err());
    assert!(msm::msm(dev, &scalars[..3], &bases[..3], Some(17)).is_err());
    assert_eq!(msm::msm(dev, &[], &[], None).unwrap(), G1::identity());
}

fn ntt_matches_halo2_evaluation_domain<D: Device>(dev: &D) {
    let mut r = rng(4);
    for k in 1..=12u32 {
        let n = 1usize << k;
        let coeffs: Vec<Fr> = (0..n).map(|_| Fr::random(&mut r)).collect();
        // Forward: halo2-axiom's FFT.
        let domain = EvaluationDomain::<Fr>::new(2, k);
        let (w, w_inv) = (domain.get_omega(), domain.get_omega_inv());
        assert_eq!(w, ntt::omega(k).unwrap());
        let mut expected = coeffs.clone();
        halo2_proofs::arithmetic::best_fft(&mut expected, w, k, &FFTData::new(n, w, w_inv), false);
        let mut got = coeffs.clone();
        ntt::ntt(dev, &mut got, Direction::Forward, None).unwrap();
        assert_eq!(got, expected, "forward k = {k}");
        // Inverse: the domain's lagrange_to_coeff.
        let back = domain.lagrange_to_coeff(domain.lagrange_from_vec(expected.clone()));
        ntt::ntt(dev, &mut got, Direction::Inverse, None).unwrap();
        assert_eq!(&got[..], &back[..], "inverse k = {k}");
        assert_eq!(got, coeffs, "inverse k = {k}");
        // Coset: coeff_to_extended on the extended domain (j = 5: 4n points
        // over zeta*H), and back with extended_to_coeff.
        let domain = EvaluationDomain::<Fr>::new(5, k);
        let ext = domain.coeff_to_extended(&domain.coeff_from_vec(coeffs.clone()));
        let mut padded = coeffs.clone();
        padded.resize(1 << domain.extended_k(), Fr::ZERO);
        ntt::ntt(dev, &mut padded, Direction::Forward, Some(&Fr::ZETA)).unwrap();
        assert_eq!(&padded[..], &ext[..], "coset k = {k}");
        let expected_back = domain.extended_to_coeff(ext);
        ntt::ntt(dev, &mut padded, Direction::Inverse, Some(&Fr::ZETA)).unwrap();
        assert_eq!(&padded[..expected_back.len()], &expected_back[..], "coset inverse k = {k}");
        assert!(padded[n..].iter().all(|x| bool::from(x.is_zero())), "coset inverse k = {k}: padding");
    }
}

fn batched_ntt_matches_single<D: Device>(dev: &D) {
    let mut r = rng(5);
    for (k, batch) in [(3u32, 5u32), (10, 3), (11, 2)] {
        let n = 1usize << k;
        let polys: Vec<Vec<Fr>> = (0..batch).map(|_| (0..n).map(|_| Fr::random(&mut r)).collect()).collect();
        let flat: Vec<Fr> = polys.concat();
        let plan = NttPlan::new(dev, k).unwrap();
        let buf = dev.upload(&repr::frs(&flat)).unwrap();
        plan.run(dev, &buf, batch, Direction::Forward).unwrap();
        let out = repr::to_frs(&dev.download(&buf).unwrap());
        let w = ntt::omega(k).unwrap();
        let data = FFTData::new(n, w, w.invert().unwrap());
        for (i, p) in polys.iter().enumerate() {
            let mut e = p.clone();
            halo2_proofs::arithmetic::best_fft(&mut e, w, k, &data, false);
            assert_eq!(&out[i * n..(i + 1) * n], &e[..], "k = {k}, polynomial {i}");
        }
        plan.run_coset(dev, &buf, batch, Direction::Inverse, &Fr::ZETA).unwrap();
        plan.run_coset(dev, &buf, batch, Direction::Forward, &Fr::ZETA).unwrap();
        assert_eq!(repr::to_frs(&dev.download(&buf).unwrap()), out, "coset round trip k = {k}");
        // A buffer of the wrong length is refused.
        assert!(plan.run(dev, &buf, batch + 1, Direction::Forward).is_err());
    }
    assert!(NttPlan::new(dev, 0).is_err());
    assert!(ntt::ntt(dev, &mut [Fr::ONE; 3], Direction::Forward, None).is_err());
}

fn elementwise_kernels_match_halo2curves<D: Device>(dev: &D) {
    let mut r = rng(6);
    for n in [1usize, 255, 1000] {
        let a: Vec<Fr> = (0..n).map(|i| if i % 7 == 3 { Fr::ZERO } else { Fr::random(&mut r) }).collect();
        let b: Vec<Fr> = (0..n).map(|_| Fr::random(&mut r)).collect();
        let (da, db) = (dev.upload(&repr::frs(&a)).unwrap(), dev.upload(&repr::frs(&b)).unwrap());
        let out = dev.zeros::<FieldRepr>(n).unwrap();
        let get = |buf| repr::to_frs(&dev.download(buf).unwrap());
        for (op, f) in [
            (BinaryOp::Add, (|x, y| x + y) as fn(Fr, Fr) -> Fr),
            (BinaryOp::Sub, |x, y| x - y),
            (BinaryOp::Mul, |x, y| x * y),
        ] {
            poly::binary(dev, op, &out, &da, &db).unwrap();
            let expected: Vec<Fr> = a.iter().zip(&b).map(|(x, y)| f(*x, *y)).collect();
            assert_eq!(get(&out), expected, "{op:?} n = {n}");
        }
        let s = Fr::random(&mut r);
        poly::scale(dev, &out, &da, &s).unwrap();
        assert_eq!(get(&out), a.iter().map(|x| x * s).collect::<Vec<_>>(), "scale n = {n}");
        poly::batch_invert(dev, &out, &da).unwrap();
        let expected: Vec<Fr> = a.iter().map(|x| x.invert().unwrap_or(Fr::ZERO)).collect();
        assert_eq!(get(&out), expected, "batch invert n = {n}");
        let g = Fr::random(&mut r);
        let d = dev.upload(&repr::frs(&a)).unwrap();
        poly::distribute_powers(dev, &d, &g, n as u64, 1).unwrap();
        let mut gi = Fr::ONE;
        let expected: Vec<Fr> = a
            .iter()
            .map(|x| {
                let v = x * gi;
                gi *= g;
                v
            })
            .collect();
        assert_eq!(get(&d), expected, "distribute powers n = {n}");
        // In place (out aliases an input) is allowed for these kernels.
        poly::binary(dev, BinaryOp::Add, &da, &da, &db).unwrap();
        assert_eq!(get(&da), a.iter().zip(&b).map(|(x, y)| x + y).collect::<Vec<_>>());
    }
    let (x, y) = (dev.zeros::<FieldRepr>(3).unwrap(), dev.zeros::<FieldRepr>(4).unwrap());
    assert!(poly::binary(dev, BinaryOp::Mul, &x, &x, &y).is_err());
    // Batch inversion in place would read what it already wrote: refused.
    assert!(poly::batch_invert(dev, &x, &x).is_err());
    assert!(poly::distribute_powers(dev, &x, &Fr::ONE, u64::MAX, 2).is_err());
    // Sizes beyond what a device can address are errors, not panics.
    assert!(dev.zeros::<FieldRepr>(usize::MAX / 8).is_err());
}

/// Runs each named body on the emulator in every thread order, and on a GPU
/// when asked for (`--ignored` on a host with one).
macro_rules! on_every_device {
    ($($body:ident),* $(,)?) => {
        mod emu {
            use statesync_kernels::{EmuDevice, Order};
            $(
                #[test]
                fn $body() {
                    for order in [Order::Forward, Order::Reverse, Order::Shuffle(0x5eed)] {
                        super::$body(&EmuDevice::new(order));
                    }
                }
            )*
        }
        // The same bodies on a real GPU. Ignored because no machine this
        // project is built or tested on has a GPU (DESIGN.md §5): without
        // one `CudaDevice::new` can only fail, so running them here would
        // prove nothing. They are compiled in every build (so they cannot
        // drift from the emulator instances) and run on a GPU host with
        // `--ignored`, where a missing GPU fails them instead of passing.
        mod cuda {
            $(
                #[test]
                #[ignore = "needs a CUDA GPU: cargo test --features statesync-kernels/cuda -- --ignored"]
                fn $body() {
                    let dev = statesync_kernels::CudaDevice::new(0).expect("a CUDA GPU");
                    super::$body(&dev);
                }
            )*
        }
    };
}

on_every_device!(
    field_ops_match_halo2curves,
    point_ops_match_halo2curves,
    msm_matches_halo2curves,
    ntt_matches_halo2_evaluation_domain,
    batched_ntt_matches_single,
    elementwise_kernels_match_halo2curves,
);

// ---- properties (field arithmetic on random inputs) ---------------------

fn fr_strategy() -> impl Strategy<Value = Fr> {
    prop::array::uniform32(any::<u8>()).prop_map(|b| {
        let mut wide = [0u8; 64];
        wide[..32].copy_from_slice(&b);
        <Fr as halo2curves::ff::FromUniformBytes<64>>::from_uniform_bytes(&wide)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn fr_mul_kernel_is_field_multiplication(pairs in prop::collection::vec((fr_strategy(), fr_strategy()), 1..64)) {
        const FR_MUL: Kernel = Kernel::new(&SELFTEST, "fr_mul");
        let dev = statesync_kernels::EmuDevice::default();
        let (a, b): (Vec<Fr>, Vec<Fr>) = pairs.into_iter().unzip();
        let n = a.len();
        let (da, db) = (dev.upload(&repr::frs(&a)).unwrap(), dev.upload(&repr::frs(&b)).unwrap());
        let out = dev.zeros::<FieldRepr>(n).unwrap();
        // SAFETY: (a, b, out, n) as fr_mul takes them; all hold n elements.
        unsafe { dev.launch(FR_MUL, Launch::linear(n as u64, 32).unwrap(), &[da.arg(), db.arg(), out.arg(), Arg::U64(n as u64)]) }.unwrap();
        let got = repr::to_frs(&dev.download(&out).unwrap());
        for i in 0..n {
            prop_assert_eq!(got[i], a[i] * b[i]);
        }
    }

    #[test]
    fn repr_round_trips(x in fr_strategy(), k in any::<u64>()) {
        prop_assert_eq!(FieldRepr::from(&x).to_fr(), x);
        let p = (G1::generator() * Fr::from(k)).to_affine();
        let a = AffineRepr::from(&p);
        prop_assert_eq!(JacobianRepr { x: a.x, y: a.y, z: FieldRepr::from(&Fq::ONE) }.to_affine().unwrap(), p);
    }
}
