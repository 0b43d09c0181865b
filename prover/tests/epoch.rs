//! Epoch proofs end to end: batch proofs aggregate into level-1 epoch proofs
//! (N = 2), those into a level-2 epoch proof; a gap or a reordered pair is
//! refused, and the epoch circuit laid out over a gap (past the native
//! check) breaks exactly the copy constraint linking the two roots; an epoch
//! does not verify under another chain's tag;
//! the generated Solidity verifier, compiled with solcjs and run in revm,
//! accepts valid calldata and rejects a tampered proof, a tampered root and
//! short calldata. (N = 4 and a second chain's verifier contract were tested
//! here until the suite outgrew CI's 90 minutes on a slower machine;
//! `statesync-bench aggregate --n 2,4` runs N = 4.)
//!
//! The SRS and the keys live in the shared test cache (`CARGO_TARGET_TMPDIR`,
//! addressed by circuit digest, shape and SRS): a warm machine skips the
//! k = 20 keygens, a cold one makes them once for every test binary.

use std::{path::PathBuf, sync::OnceLock, time::Instant};

use halo2_base::gates::circuit::CircuitBuilderStage;
use halo2_proofs::halo2curves::bn256::Fr;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use snark_verifier_sdk::Snark;
use statesync_circuits::{
    config::ChainConfig,
    engine::{apply_transitions, Mode},
    examples,
    fixed::Fixed,
    transition::Transition,
    witness::PublicInputs,
};
use statesync_prover::{
    epoch::{
        accumulator_holds, chain_tag, epoch_circuit, epoch_public, inner_snark, prove_epoch, verify_epoch, EpochProof,
        EpochSpec, ACCUMULATOR_LEN, EPOCH_K,
    },
    evm::{calldata, compile_solidity, solcjs, verifier_solidity, Evm},
    hal::CpuHal,
    keys::{KeyStore, ShapeKeys},
    proof::{prove_batch, TranscriptKind},
    srs::{Params, SrsSource},
    ProverError,
};

/// The epoch test chain (the service's epoch test uses the same one, so the
/// two share the level-1 epoch key).
fn tiny(id: &str) -> ChainConfig {
    examples::tiny_chain(id, 1, 3)
}

/// Shared by the tests: params, batch keys, and consecutive batch proofs.
struct Fixture {
    store: KeyStore,
    params: Params,
    agg_params: Params,
    keys: std::sync::Arc<ShapeKeys>,
    /// Poseidon-transcript batch proofs of chain A: deposits of 1, 2, ... .
    batches: Vec<(PublicInputs, Snark)>,
}

/// The test cache: the development SRS is deterministic and keys are
/// content-addressed, so both are kept beside the build.
fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let cfg = tiny("epoch-chain");
        let store = KeyStore::in_cache_dir(&cache_dir());
        let srs = SrsSource::new(None, &cache_dir());
        let layout = store.layout(&cfg.shape).unwrap();
        let params = srs.params(layout.k as u32).unwrap();
        let agg_params = srs.params(EPOCH_K).unwrap();
        let keys = store.keys(&params, &cfg.shape).unwrap();
        let mut state = cfg.genesis_state();
        let mut batches = vec![];
        for amount in 1..=4i64 {
            let t = Transition::deposit(1, Fixed::from_int(amount));
            let out = apply_transitions(&state, &[t], Mode::Enforce).unwrap();
            let proof = prove_batch(
                &CpuHal,
                &params,
                &keys,
                &out.witness,
                TranscriptKind::Poseidon,
                ChaCha20Rng::seed_from_u64(1),
            )
            .unwrap();
            let spec = EpochSpec { level: 1, n: 2, k: EPOCH_K };
            let snark = inner_snark(&params, keys.pk.get_vk(), &spec, out.witness.public.to_fields(), proof);
            batches.push((out.witness.public, snark));
            state = out.state;
        }
        Fixture { store, params, agg_params, keys, batches }
    })
}

fn deploy_verifier(
    params: &Params,
    vk: &halo2_proofs::plonk::VerifyingKey<halo2_proofs::halo2curves::bn256::G1Affine>,
) -> Evm {
    let t = Instant::now();
    let code = compile_solidity(&solcjs().unwrap(), &verifier_solidity(params, vk)).unwrap();
    let mut evm = Evm::deploy(code.clone()).unwrap();
    eprintln!(
        "verifier: {} bytes of deployment code, {} bytes deployed, compiled in {:.1?}",
        code.len(),
        evm.code_size(),
        t.elapsed()
    );
    evm
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    eprintln!("{what}: {:.1?}", t.elapsed());
    out
}

fn snarks(range: std::ops::Range<usize>) -> Vec<Snark> {
    fixture().batches[range].iter().map(|(_, s)| s.clone()).collect()
}

/// Lays out the epoch circuit over `snarks` as key generation does (its
/// copy constraints recorded), past the native chaining check, as a
/// cheating prover would, and returns the copy constraints between
/// halo2-base cells that its witness breaks, as the pairs of values that
/// differ. Each one alone fails every proof of that witness (a permutation
/// argument over unequal cells does not hold); this finds them in seconds
/// where a forced k = 20 proof took four minutes.
fn broken_copies(keys: &statesync_prover::epoch::EpochKeys, snarks: Vec<Snark>) -> Vec<(Fr, Fr)> {
    let f = fixture();
    let mut c = epoch_circuit(CircuitBuilderStage::Mock, keys.config, &f.agg_params, snarks, &keys.spec, keys.tag);
    let pairs = c.builder.core().copy_manager.lock().unwrap().advice_equalities.clone();
    let threads = &c.builder.pool(0).threads;
    let value = |cell: &halo2_base::ContextCell| {
        threads
            .iter()
            .find(|t| t.type_id() == cell.type_id && t.id() == cell.context_id)
            .map(|t| t.advice[cell.offset].evaluate())
    };
    let checked = pairs.iter().filter_map(|(a, b)| Some((value(a)?, value(b)?))).collect::<Vec<_>>();
    assert!(checked.len() * 2 > pairs.len(), "most copy constraints are between the main threads' cells");
    checked.into_iter().filter(|(a, b)| a != b).collect()
}

#[test]
fn two_levels_chain_roots_and_verify_on_the_evm() {
    // The level-1 key proves twice here (two epochs):
    // keep its extended polynomials (about 3.5 GB at k = 20) between proofs
    // instead of recomputing them. The only test of this binary, set before
    // any thread that reads the environment starts.
    std::env::set_var("STATESYNC_KEY_CACHE_MIB", "4096");
    let f = fixture();
    let tag = chain_tag(&tiny("epoch-chain"));
    let l1 = EpochSpec { level: 1, n: 2, k: EPOCH_K };
    let keys1 = timed("level-1 N=2 keygen", || {
        f.store.epoch_keys(&f.agg_params, &f.params, f.keys.pk.get_vk(), &l1, tag).unwrap()
    });
    eprintln!("level-1 N=2 config: {:?}", keys1.config);

    // a gap and a reordered pair: refused up front, and unprovable when forced
    let gap = prove_epoch(
        &CpuHal,
        &f.agg_params,
        &keys1,
        vec![snarks(0..1)[0].clone(), snarks(2..3)[0].clone()],
        TranscriptKind::Poseidon,
        ChaCha20Rng::seed_from_u64(3),
    );
    assert!(matches!(gap, Err(ProverError::Epoch(m)) if m.contains("do not chain")));
    let reordered = vec![snarks(1..2)[0].clone(), snarks(0..1)[0].clone()];
    assert!(prove_epoch(
        &CpuHal,
        &f.agg_params,
        &keys1,
        reordered,
        TranscriptKind::Poseidon,
        ChaCha20Rng::seed_from_u64(3)
    )
    .is_err());
    // Forced past the native check, the gap breaks exactly the in-circuit
    // links of batch 0 to batch 2: its new root is not their old root, seq
    // 0 + 1 is not 2 (a reordered pair breaks the same links); the honest
    // pair breaks nothing.
    let gap =
        timed("forced gap witness", || broken_copies(&keys1, vec![snarks(0..1)[0].clone(), snarks(2..3)[0].clone()]));
    let (b0, b2) = (&f.batches[0].0, &f.batches[2].0);
    assert_ne!(b0.new_root, b2.old_root);
    let broken = |x: Fr, y: Fr| gap.contains(&(x, y)) || gap.contains(&(y, x));
    assert_eq!(gap.len(), 2, "two broken links: {gap:?}");
    assert!(broken(b0.new_root, b2.old_root) && broken(Fr::from(1), Fr::from(2)), "{gap:?}");
    assert!(timed("honest pair witness", || broken_copies(&keys1, snarks(0..2))).is_empty());

    let mut epochs: Vec<EpochProof> = vec![];
    for range in [0..2, 2..4] {
        let e = timed("level-1 N=2 prove", || {
            prove_epoch(
                &CpuHal,
                &f.agg_params,
                &keys1,
                snarks(range.clone()),
                TranscriptKind::Poseidon,
                ChaCha20Rng::seed_from_u64(2),
            )
            .unwrap()
        });
        let publics: Vec<PublicInputs> = f.batches[range].iter().map(|(p, _)| *p).collect();
        assert_eq!(e.public(), epoch_public(&publics, &[1, 1], tag), "the epoch exposes the chained roots and totals");
        assert!(verify_epoch(&f.agg_params, keys1.pk.get_vk(), &e.instances, &e.proof, TranscriptKind::Poseidon));
        epochs.push(e);
    }
    // the epoch is bound to its chain: another chain's tag does not verify
    let mut retagged = epochs[0].instances.clone();
    retagged[ACCUMULATOR_LEN + 5] = chain_tag(&tiny("other-chain"));
    assert_ne!(retagged, epochs[0].instances);
    assert!(!verify_epoch(&f.agg_params, keys1.pk.get_vk(), &retagged, &epochs[0].proof, TranscriptKind::Poseidon));
    let mut forged = epochs[0].instances.clone();
    forged[0] += Fr::one();
    assert!(!accumulator_holds(&f.agg_params, &forged), "a forged accumulator fails the deferred pairing check");
    assert!(!verify_epoch(&f.agg_params, keys1.pk.get_vk(), &forged, &epochs[0].proof, TranscriptKind::Poseidon));

    // level 2 over the two level-1 epochs, proven for the EVM
    let l2 = EpochSpec { level: 2, n: 2, k: EPOCH_K };
    let keys2 = timed("level-2 N=2 keygen", || {
        f.store.epoch_keys(&f.agg_params, &f.agg_params, keys1.pk.get_vk(), &l2, tag).unwrap()
    });
    let inner: Vec<Snark> = epochs
        .iter()
        .map(|e| inner_snark(&f.agg_params, keys1.pk.get_vk(), &l2, e.instances.clone(), e.proof.clone()))
        .collect();
    let top = timed("level-2 N=2 prove (EVM transcript)", || {
        prove_epoch(&CpuHal, &f.agg_params, &keys2, inner.clone(), TranscriptKind::Evm, ChaCha20Rng::seed_from_u64(4))
            .unwrap()
    });
    let publics: Vec<PublicInputs> = f.batches[0..4].iter().map(|(p, _)| *p).collect();
    let halves = [epoch_public(&publics[..2], &[1, 1], tag).public, epoch_public(&publics[2..], &[1, 1], tag).public];
    let folded = epoch_public(&halves, &[2, 2], tag);
    assert_eq!(top.public(), folded, "level 2 spans batches 0..4");
    assert_eq!(top.public().public.transitions, 4);
    assert!(verify_epoch(&f.agg_params, keys2.pk.get_vk(), &top.instances, &top.proof, TranscriptKind::Evm));
    let swapped = vec![inner[1].clone(), inner[0].clone()];
    assert!(prove_epoch(&CpuHal, &f.agg_params, &keys2, swapped, TranscriptKind::Evm, ChaCha20Rng::seed_from_u64(5))
        .is_err());

    // the EVM verifier of level 2
    let mut evm = deploy_verifier(&f.agg_params, keys2.pk.get_vk());
    let valid = evm.call(calldata(&top.instances, &top.proof)).unwrap();
    assert!(valid.success, "valid calldata verifies");
    eprintln!("level-2 epoch verification: {} gas", valid.gas_used);
    let mut bad = top.proof.clone();
    bad[100] ^= 1;
    assert!(!evm.call(calldata(&top.instances, &bad)).unwrap().success, "a tampered proof byte reverts");
    let mut root = top.instances.clone();
    root[ACCUMULATOR_LEN + 1] += Fr::one();
    assert!(!evm.call(calldata(&root, &top.proof)).unwrap().success, "a tampered new root reverts");
    assert!(!evm.call(calldata(&top.instances[..top.instances.len() - 1], &top.proof)).unwrap().success);
}
