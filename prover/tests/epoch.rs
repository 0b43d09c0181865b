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

use std::{sync::OnceLock, time::Instant};

use halo2_base::gates::circuit::CircuitBuilderStage;
use halo2_proofs::halo2curves::bn256::Fr;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use snark_verifier_sdk::Snark;
use statesync_circuits::{config::ChainConfig, examples, witness::PublicInputs};
use statesync_prover::{
    batch::BatchProof,
    epoch::{
        accumulator_holds, epoch_circuit, epoch_public, inner_snark, EpochKeys, EpochProof, EpochSpec, ACCUMULATOR_LEN,
        EPOCH_K,
    },
    evm::{calldata, compile_solidity, solcjs, verifier_solidity, Evm},
    hal::CpuHal,
    snark::TranscriptKind,
    srs::Params,
    Prover, ProverError,
};
use statesync_testkit::{deposit_witnesses, test_prover};

/// The epoch test chain (the service's epoch test uses the same one, so the
/// two share the level-1 epoch key).
fn tiny(id: &str) -> ChainConfig {
    examples::tiny_chain(id, 1, 3)
}

/// Shared by the tests: the prover and consecutive batch proofs.
struct Fixture {
    prover: Prover,
    cfg: ChainConfig,
    /// Poseidon-transcript batch proofs of the chain: deposits of 1, 2, ... .
    batches: Vec<BatchProof>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let cfg = tiny("epoch-chain");
        let prover = test_prover!(CpuHal);
        let batches = deposit_witnesses(&cfg, 1, &[1, 2, 3, 4])
            .iter()
            .map(|w| prover.prove_batch(w, TranscriptKind::Poseidon, ChaCha20Rng::seed_from_u64(1)).unwrap().0)
            .collect();
        Fixture { prover, cfg, batches }
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

/// The batch proofs `ids` as the level-1 epoch circuit takes them.
fn snarks(ids: &[usize]) -> Vec<Snark> {
    let f = fixture();
    let v = f.prover.batch_verifier(&f.cfg.shape).unwrap();
    let spec = EpochSpec { level: 1, n: 2, k: EPOCH_K };
    let snark = |b: &BatchProof| inner_snark(&v.params, &v.vk, &spec, b.public.to_fields(), b.proof.clone());
    ids.iter().map(|&i| snark(&f.batches[i])).collect()
}

/// Lays out the epoch circuit over `snarks` as key generation does (its
/// copy constraints recorded), past the native chaining check, as a
/// cheating prover would, and returns the copy constraints between
/// halo2-base cells that its witness breaks, as the pairs of values that
/// differ. Each one alone fails every proof of that witness (a permutation
/// argument over unequal cells does not hold); this finds them in seconds
/// where a forced k = 20 proof took four minutes.
fn broken_copies(params: &Params, keys: &EpochKeys, snarks: Vec<Snark>) -> Vec<(Fr, Fr)> {
    let mut c = epoch_circuit(CircuitBuilderStage::Mock, keys.config, params, snarks, &keys.spec, keys.tag);
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
    let (prover, cfg) = (&f.prover, &f.cfg);
    let tag = cfg.tag();
    let l1 = EpochSpec { level: 1, n: 2, k: EPOCH_K };
    let keyed1 = timed("level-1 N=2 keygen", || prover.epoch_keys(cfg, &l1).unwrap());
    let (agg_params, keys1) = (&keyed1.params, &keyed1.keys);
    eprintln!("level-1 N=2 config: {:?}", keys1.config);
    let prove = |spec: &EpochSpec, inner: &[BatchProof], seed: u64| {
        prover.prove_epoch(cfg, spec, inner, TranscriptKind::Poseidon, ChaCha20Rng::seed_from_u64(seed))
    };

    // a gap, a reordered pair and a proof of another transcript: refused up
    // front, and (the first two) unprovable when forced
    let gap = prove(&l1, &[f.batches[0].clone(), f.batches[2].clone()], 3);
    assert!(matches!(gap, Err(ProverError::Epoch(m)) if m.contains("do not chain")));
    assert!(prove(&l1, &[f.batches[1].clone(), f.batches[0].clone()], 3).is_err());
    let mut blake = f.batches[1].clone();
    blake.transcript = TranscriptKind::Blake2b;
    let wrong = prove(&l1, &[f.batches[0].clone(), blake], 3);
    assert!(matches!(wrong, Err(ProverError::Epoch(m)) if m.contains("another transcript")));
    // Forced past the native check, the gap breaks exactly the in-circuit
    // links of batch 0 to batch 2: its new root is not their old root, seq
    // 0 + 1 is not 2 (a reordered pair breaks the same links); the honest
    // pair breaks nothing.
    let gap = timed("forced gap witness", || broken_copies(agg_params, keys1, snarks(&[0, 2])));
    let (b0, b2) = (&f.batches[0].public, &f.batches[2].public);
    assert_ne!(b0.new_root, b2.old_root);
    let broken = |x: Fr, y: Fr| gap.contains(&(x, y)) || gap.contains(&(y, x));
    assert_eq!(gap.len(), 2, "two broken links: {gap:?}");
    assert!(broken(b0.new_root, b2.old_root) && broken(Fr::from(1), Fr::from(2)), "{gap:?}");
    assert!(timed("honest pair witness", || broken_copies(agg_params, keys1, snarks(&[0, 1]))).is_empty());

    let mut epochs: Vec<EpochProof> = vec![];
    for range in [0..2, 2..4] {
        let e = timed("level-1 N=2 prove", || prove(&l1, &f.batches[range.clone()], 2).unwrap());
        let publics: Vec<PublicInputs> = f.batches[range].iter().map(|b| b.public).collect();
        assert_eq!(e.public(), epoch_public(&publics, &[1, 1], tag), "the epoch exposes the chained roots and totals");
        assert!(prover.verify_epoch(cfg, &l1, &e).unwrap());
        epochs.push(e);
    }
    // the epoch is bound to its chain: another chain's tag does not verify
    let mut retagged = epochs[0].clone();
    retagged.instances[ACCUMULATOR_LEN + 5] = tiny("other-chain").tag();
    assert_ne!(retagged.instances, epochs[0].instances);
    assert!(!prover.verify_epoch(cfg, &l1, &retagged).unwrap());
    let mut forged = epochs[0].clone();
    forged.instances[0] += Fr::one();
    assert!(!accumulator_holds(agg_params, &forged.instances), "a forged accumulator fails the deferred pairing check");
    assert!(!prover.verify_epoch(cfg, &l1, &forged).unwrap());

    // level 2 over the two level-1 epochs, proven for the EVM
    let l2 = EpochSpec { level: 2, n: 2, k: EPOCH_K };
    let keyed2 = timed("level-2 N=2 keygen", || prover.epoch_keys(cfg, &l2).unwrap());
    let top = timed("level-2 N=2 prove (EVM transcript)", || {
        prover.prove_epoch(cfg, &l2, &epochs, TranscriptKind::Evm, ChaCha20Rng::seed_from_u64(4)).unwrap()
    });
    let publics: Vec<PublicInputs> = f.batches.iter().map(|b| b.public).collect();
    let halves = [epoch_public(&publics[..2], &[1, 1], tag).public, epoch_public(&publics[2..], &[1, 1], tag).public];
    let folded = epoch_public(&halves, &[2, 2], tag);
    assert_eq!(top.public(), folded, "level 2 spans batches 0..4");
    assert_eq!(top.public().public.transitions, 4);
    assert!(prover.verify_epoch(cfg, &l2, &top).unwrap());
    let swapped = [epochs[1].clone(), epochs[0].clone()];
    assert!(prover.prove_epoch(cfg, &l2, &swapped, TranscriptKind::Evm, ChaCha20Rng::seed_from_u64(5)).is_err());

    // the EVM verifier of level 2
    let mut evm = deploy_verifier(&keyed2.params, keyed2.keys.pk.get_vk());
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
