//! The kernels against halo2curves and halo2-axiom. Every check of
//! `statesync_kernels::conformance` (generic over `Device`) runs on the
//! emulator in forward, reverse and shuffled thread order (results must not
//! change) and, `#[ignore]`d unless run with `--ignored` on a GPU host, on
//! `CudaDevice` (`statesync-bench gpu-check` runs them there too).

use halo2curves::bn256::{Fq, Fr, G1};
use halo2curves::ff::Field;
use halo2curves::group::Curve;
use proptest::prelude::*;
use statesync_kernels::registry::{kernels, Kernel};
use statesync_kernels::repr::{self, AffineRepr, FieldRepr, JacobianRepr};
use statesync_kernels::{Arg, Device, Launch};
use statesync_testkit::on_every_device;

on_every_device!(
    field_ops_match_halo2curves,
    point_ops_match_halo2curves,
    msm_matches_halo2curves,
    ntt_matches_halo2_evaluation_domain,
    batched_ntt_matches_single,
    elementwise_kernels_match_halo2curves,
);

/// A device whose every read comes back with one bit flipped: a device
/// that computes wrong results.
#[derive(Debug)]
struct Corrupting(statesync_kernels::EmuDevice);

impl Device for Corrupting {
    type Mem = <statesync_kernels::EmuDevice as Device>::Mem;

    fn name(&self) -> String {
        format!("corrupting {}", self.0.name())
    }
    fn alloc_zeroed(&self, bytes: usize) -> statesync_kernels::Result<Self::Mem> {
        self.0.alloc_zeroed(bytes)
    }
    fn write(&self, dst: &mut Self::Mem, src: &[u8]) -> statesync_kernels::Result<()> {
        self.0.write(dst, src)
    }
    fn copy(&self, dst: &mut Self::Mem, src: &Self::Mem, bytes: usize) -> statesync_kernels::Result<()> {
        self.0.copy(dst, src, bytes)
    }
    fn read(&self, src: &Self::Mem, dst: &mut [u8]) -> statesync_kernels::Result<()> {
        self.0.read(src, dst)?;
        if let Some(b) = dst.first_mut() {
            *b ^= 1;
        }
        Ok(())
    }
    unsafe fn launch(
        &self,
        kernel: Kernel,
        shape: Launch,
        args: &[Arg<'_, Self::Mem>],
    ) -> statesync_kernels::Result<()> {
        // SAFETY: the caller's contract, passed on unchanged.
        unsafe { self.0.launch(kernel, shape, args) }
    }
    fn synchronize(&self) -> statesync_kernels::Result<()> {
        self.0.synchronize()
    }
    fn traffic(&self) -> statesync_kernels::Traffic {
        self.0.traffic()
    }
    fn is_emulator(&self) -> bool {
        true
    }
}

#[test]
fn every_check_fails_on_a_device_that_computes_wrong_results() {
    let dev = Corrupting(statesync_kernels::EmuDevice::default());
    for (name, check) in statesync_kernels::conformance::all::<Corrupting>() {
        let failure = check(&dev).expect_err(name);
        assert!(!failure.0.is_empty(), "{name}");
    }
}

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
        const FR_MUL: Kernel = kernels::FR_MUL;
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

/// The longest chain of additions one MSM thread makes, for uniform,
/// all-ones and selector-like (0 or 1) scalars at two sizes: one thread per
/// bucket added the whole largest bucket (n for all-ones); the chunked
/// schedule never gives a thread more than `CHUNK`, whatever n.
#[test]
fn no_msm_thread_adds_more_than_a_chunk() {
    use rand::{Rng, SeedableRng};
    use statesync_kernels::msm::{chains, default_window_bits, CHUNK};
    let mut r = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    for n in [1usize << 12, 1 << 16] {
        let c = default_window_bits(n);
        let uniform: Vec<Fr> = (0..n).map(|_| Fr::random(&mut r)).collect();
        let ones = vec![Fr::ONE; n];
        let selector: Vec<Fr> = (0..n).map(|_| Fr::from(u64::from(r.gen::<bool>()))).collect();
        for (name, scalars) in [("uniform", &uniform), ("all ones", &ones), ("selector", &selector)] {
            let k = chains(scalars, c);
            eprintln!("n = 2^{}, c = {c}, {name}: {k:?}", n.trailing_zeros());
            assert!(k.accumulate <= CHUNK && k.merge <= CHUNK, "{name}: {k:?}");
        }
        let (ones, selector) = (chains(&ones, c), chains(&selector, c));
        assert_eq!(ones.unsigned_bucket, n, "one thread per bucket: all n points on one thread");
        assert!(selector.unsigned_bucket > n / 3);
        assert!(ones.rounds >= 2, "{ones:?}");
    }
}
