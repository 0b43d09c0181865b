//! statesync's prover against halo2-axiom, on every Hal: its proofs verify
//! with halo2-axiom's verifier, their transcript equals halo2-axiom's as far
//! as halo2-axiom is itself reproducible, and every Hal writes the CPU's
//! bytes (checked operation by operation by DualHal). Each test body is
//! written once, generic over the Hal, and instantiated for `CpuHal`,
//! `CudaHal<EmuDevice>` and, `#[ignore]`d unless run with `--ignored` on a
//! GPU host, `CudaHal<CudaDevice>`.

use halo2_base::{
    gates::{
        circuit::{builder::BaseCircuitBuilder, BaseCircuitParams, CircuitBuilderStage},
        GateChip, GateInstructions, RangeInstructions,
    },
    halo2_proofs::{
        halo2curves::bn256::{Bn256, Fr, G1Affine},
        plonk::{keygen_pk, keygen_vk, ProvingKey},
        poly::kzg::commitment::ParamsKZG,
    },
};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use statesync_prover::{
    hal::{traffic_since, Backend, CpuHal, DualHal, Hal},
    snark::{prove_circuit, prove_circuit_halo2, verify_instances, TranscriptKind},
    srs::SrsSource,
    ProverError,
};
use statesync_testkit::{on_every_hal, test_prover};

const K: u32 = 9;

/// A halo2-base circuit: `values` range-checked to 8 bits when `lookup_bits`
/// is set, summed, squared, the result public.
fn build(stage: CircuitBuilderStage, lookup_bits: Option<usize>, values: &[u64]) -> (BaseCircuitBuilder<Fr>, Vec<Fr>) {
    let mut b = BaseCircuitBuilder::from_stage(stage).use_k(K as usize).use_instance_columns(1);
    if let Some(bits) = lookup_bits {
        b = b.use_lookup_bits(bits);
    }
    let range = lookup_bits.map(|_| b.range_chip());
    let gate = GateChip::<Fr>::default();
    let ctx = b.main(0);
    let cells: Vec<_> = values.iter().map(|v| ctx.load_witness(Fr::from(*v))).collect();
    if let Some(range) = &range {
        for c in &cells {
            range.range_check(ctx, *c, 8);
        }
    }
    let sum = gate.sum(ctx, cells.iter().copied());
    let out = gate.mul(ctx, sum, sum);
    let public = vec![*out.value()];
    b.assigned_instances[0].push(out);
    (b, public)
}

struct Setup {
    params: ParamsKZG<Bn256>,
    pk: ProvingKey<G1Affine>,
    config: BaseCircuitParams,
    break_points: Vec<Vec<usize>>,
    lookup_bits: Option<usize>,
}

fn setup(lookup_bits: Option<usize>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let params = SrsSource::Dev { cache_dir: dir.path().into() }.params(K).unwrap();
    let (mut b, _) = build(CircuitBuilderStage::Keygen, lookup_bits, &[1; 40]);
    let config = b.calculate_params(Some(9));
    let vk = keygen_vk(&params, &b).unwrap();
    let pk = keygen_pk(&params, vk, &b).unwrap();
    let break_points = b.break_points();
    Setup { params, pk, config, break_points, lookup_bits }
}

impl Setup {
    fn circuit(&self, values: &[u64]) -> (BaseCircuitBuilder<Fr>, Vec<Fr>) {
        let (b, public) = build(CircuitBuilderStage::Prover, self.lookup_bits, values);
        let b = b.use_params(self.config.clone()).use_break_points(self.break_points.clone());
        (b, public)
    }

    fn prove(&self, hal: &dyn Hal, values: &[u64], kind: TranscriptKind, seed: u64) -> Result<Vec<u8>, ProverError> {
        let (c, public) = self.circuit(values);
        prove_circuit(hal, &self.params, &self.pk, c, &public, kind, ChaCha20Rng::seed_from_u64(seed))
    }

    fn baseline(&self, values: &[u64], kind: TranscriptKind, seed: u64) -> Vec<u8> {
        let (c, public) = self.circuit(values);
        prove_circuit_halo2(&self.params, &self.pk, c, &public, kind, ChaCha20Rng::seed_from_u64(seed)).unwrap()
    }

    fn verifies(&self, values: &[u64], proof: &[u8], kind: TranscriptKind) -> bool {
        let (_, public) = self.circuit(values);
        verify_instances(&self.params, self.pk.get_vk(), &public, proof, kind)
    }

    /// Bytes of the transcript before the vanishing argument's random
    /// commitment when the circuit has no lookups (advice, then permutation
    /// products), or before the lookups' permuted commitments otherwise:
    /// compressed points of 32 bytes in the Blake2b transcript.
    fn reproducible_prefix(&self) -> usize {
        let cs = self.pk.get_vk().cs();
        let advice = cs.num_advice_columns();
        if !cs.lookups().is_empty() {
            return 32 * advice;
        }
        let chunk = cs.degree() - 2;
        let sets = cs.permutation().get_columns().len().div_ceil(chunk);
        32 * (advice + sets)
    }
}

fn values(seed: u64) -> Vec<u64> {
    (0..40).map(|i| (i * 37 + seed * 11) % 256).collect()
}

// ---- generic bodies ----------------------------------------------------

fn proofs_verify_and_match_halo2_axiom_as_far_as_it_is_reproducible<H: Hal>(make: impl Fn() -> H) {
    let hal = make();
    for lookup_bits in [None, Some(8)] {
        let s = setup(lookup_bits);
        let v = values(1);
        for kind in [TranscriptKind::Blake2b, TranscriptKind::Poseidon, TranscriptKind::Evm] {
            let ours = s.prove(&hal, &v, kind, 5).unwrap();
            assert!(s.verifies(&v, &ours, kind), "{lookup_bits:?} {kind:?}: halo2-axiom verifies our proof");
            assert!(!s.verifies(&values(2), &ours, kind), "another public input is rejected");
            let mut bad = ours.clone();
            let last = bad.len() - 40;
            bad[last] ^= 1;
            assert!(!s.verifies(&v, &bad, kind), "a flipped byte is rejected");
        }
        let kind = TranscriptKind::Blake2b;
        let ours = s.prove(&hal, &v, kind, 5).unwrap();
        let theirs = s.baseline(&v, kind, 5);
        let again = s.baseline(&v, kind, 5);
        assert_eq!(ours.len(), theirs.len(), "same proof size");
        let prefix = s.reproducible_prefix();
        assert_eq!(ours[..prefix], theirs[..prefix], "{lookup_bits:?}: same transcript up to byte {prefix}");
        // Past that point halo2-axiom is not reproducible from its RNG
        // (thread_rng in the vanishing argument, HashMap order in lookups):
        // its own two runs with one seed differ right there.
        assert_eq!(theirs[..prefix], again[..prefix]);
        assert_ne!(theirs[prefix..prefix + 32], again[prefix..prefix + 32], "halo2-axiom reproducible past the prefix");
        // Ours is reproducible: the same seed gives the same bytes.
        assert_eq!(ours, s.prove(&hal, &v, kind, 5).unwrap());
        assert_ne!(ours, s.prove(&hal, &v, kind, 6).unwrap(), "the seed is used");
    }
}

fn writes_the_cpu_bytes<H: Hal>(make: impl Fn() -> H) {
    let s = setup(Some(8));
    let v = values(3);
    let kind = TranscriptKind::Poseidon;
    let cpu = s.prove(&CpuHal, &v, kind, 9).unwrap();
    let hal = make();
    let before = hal.traffic();
    let ours = s.prove(&hal, &v, kind, 9).unwrap();
    assert_eq!(ours, cpu, "{} gives the CPU's proof, byte for byte", hal.name());
    // What the proof moved to and from the device, per operation.
    let moved = traffic_since(&hal.traffic(), &before);
    if hal.backend() == Backend::Cpu {
        assert!(moved.is_empty(), "{moved:?}");
    } else {
        for op in [
            "commit",
            "commit_and_interpolate",
            "lagrange_to_coeff",
            "coeff_to_extended_parts",
            "quotient_to_coeff",
            "batch_invert",
        ] {
            let t = moved.get(op).unwrap_or_else(|| panic!("no {op} in {moved:?}"));
            assert!(t.calls > 0 && t.launches > 0, "{op}: {t:?}");
            assert!(t.host_to_device_bytes >= 32 && t.device_to_host_bytes >= 32, "{op}: {t:?}");
        }
        let again = traffic_since(&hal.traffic(), &before);
        assert_eq!(again, moved, "reading the counters moves nothing");
    }
    let dual = DualHal::new(CpuHal, make());
    assert_eq!(s.prove(&dual, &v, kind, 9).unwrap(), cpu);
    assert!(dual.compared() > 20, "DualHal compared {} operations", dual.compared());
    assert!(s.verifies(&v, &ours, kind));
}

fn an_unsatisfied_lookup_is_an_error_not_a_panic<H: Hal>(make: impl Fn() -> H) {
    let s = setup(Some(8));
    let mut v = values(4);
    v[7] = 300; // not an 8-bit value
    let err = s.prove(&make(), &v, TranscriptKind::Blake2b, 1).unwrap_err();
    assert!(matches!(err, ProverError::Unsatisfied(_)), "{err}");
}

fn the_batch_circuit<H: Hal>(make: impl Fn() -> H) {
    use statesync_circuits::{engine::apply_batch, examples};
    use statesync_prover::batch::batch_circuit;

    // A signed withdrawal and a perp trade on the example chain at capacity
    // 2: every slot runs every constraint whatever its transition, so this
    // is the whole circuit; the shape is not the subject here, the Hals are.
    let cfg = examples::chain_with(2, 3);
    let mut batch = examples::signed_for(&examples::batch_valid(), &cfg);
    batch.transitions = vec![batch.transitions[1].clone(), batch.transitions[3].clone()];
    let out = apply_batch(&cfg.genesis_state(), &cfg.chain_id, &batch).unwrap();
    let keyed = test_prover!(CpuHal).batch_keys(&cfg.shape).unwrap();
    let (params, keys) = (&*keyed.params, &keyed.keys);
    let kind = TranscriptKind::Blake2b;
    let prove = |hal: &dyn Hal| {
        let (c, public) = batch_circuit(keys, &out.witness).unwrap();
        prove_circuit(hal, params, &keys.pk, c, &public, kind, ChaCha20Rng::seed_from_u64(11)).unwrap()
    };
    let cpu = prove(&CpuHal);
    let public = out.witness.public.to_fields();
    assert!(verify_instances(params, keys.pk.get_vk(), &public, &cpu, kind), "halo2-axiom verifies it");

    let (c, _) = batch_circuit(keys, &out.witness).unwrap();
    let theirs = prove_circuit_halo2(params, &keys.pk, c, &public, kind, ChaCha20Rng::seed_from_u64(11)).unwrap();
    assert_eq!(cpu.len(), theirs.len(), "same proof size as halo2-axiom");
    // The batch circuit has lookups: halo2-axiom is reproducible up to its
    // advice commitments (see above).
    let prefix = 32 * keys.pk.get_vk().cs().num_advice_columns();
    assert_eq!(cpu[..prefix], theirs[..prefix], "advice commitments equal halo2-axiom's");

    // Every operation of the proof on the CPU and on this Hal, compared as
    // it happens: the same bytes.
    let dual = DualHal::new(CpuHal, make());
    assert_eq!(prove(&dual), cpu, "{} writes the CPU's bytes", dual.name());
    assert!(dual.compared() > 20);
}

on_every_hal!(
    proofs_verify_and_match_halo2_axiom_as_far_as_it_is_reproducible,
    writes_the_cpu_bytes,
    an_unsatisfied_lookup_is_an_error_not_a_panic,
    the_batch_circuit,
);
