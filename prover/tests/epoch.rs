//! Epoch proofs end to end: batch proofs aggregate into level-1 epoch proofs
//! (N = 2; the first holds one batch and a padding slot), those into a
//! level-2 epoch proof; a gap or a reordered pair is refused, and the epoch
//! circuit laid out over a gap (past the native check) breaks exactly the
//! constraints linking the two; an epoch does not verify under another
//! chain's tag. The level-1 epochs are then wrapped (the thin wrapper
//! circuit, EVM transcript), and on an EVM with Ethereum's size limits
//! enforced the wrapper's Solidity verifier deploys, accepts valid calldata
//! and rejects a tampered proof, a tampered root and short calldata;
//! `StateSync` accepts the two wrapped epochs in order and refuses a proof
//! that does not start at its root, a replay, another chain's and a
//! tampered proof. (N = 4 and a second chain's verifier contract were tested
//! here until the suite outgrew CI's 90 minutes on a slower machine;
//! `statesync-bench aggregate --n 2,4` runs N = 4.)
//!
//! The SRS and the keys live in the shared test cache (`CARGO_TARGET_TMPDIR`,
//! addressed by circuit digest, shape and SRS): a warm machine skips the
//! keygens, a cold one makes them once for every test binary.

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
        EPOCH_K, WRAPPER_K,
    },
    evm::{
        calldata, compile_solidity, selector, solcjs, state_sync_constructor_args, submit_calldata, verifier_solidity,
        word, Address, CallOutcome, Evm, STATE_SYNC_SOL,
    },
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

/// Compiles `source` with solcjs and deploys it on `evm` (limits enforced),
/// `args` appended to its deployment code.
fn deploy(evm: &mut Evm, what: &str, source: &str, args: &[u8]) -> Address {
    let t = Instant::now();
    let mut code = compile_solidity(&solcjs().unwrap(), source).unwrap();
    let initcode = code.len();
    code.extend(args);
    let address = evm.deploy(code).unwrap();
    let size = evm.code_size(address);
    eprintln!("{what}: {initcode} bytes of deployment code, {size} bytes deployed, compiled in {:.1?}", t.elapsed());
    assert!(size <= 24_576, "{what} is {size} bytes deployed, over EIP-170's 24,576");
    address
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    eprintln!("{what}: {:.1?}", t.elapsed());
    out
}

/// The level-1 spec of the test.
const L1: EpochSpec = EpochSpec::epoch(1, 2, EPOCH_K);

/// The batch proofs `ids` as the level-1 epoch circuit takes them.
fn snarks(ids: &[usize]) -> Vec<Snark> {
    let f = fixture();
    let v = f.prover.batch_verifier(&f.cfg.shape).unwrap();
    let snark = |b: &BatchProof| inner_snark(&v.params, &v.vk, &L1, b.public.to_fields(), b.proof.clone());
    ids.iter().map(|&i| snark(&f.batches[i])).collect()
}

/// Lays out the level-1 epoch circuit over `snarks` as key generation does
/// (its constraints between cells and to constants recorded), past the
/// native chaining check, as a cheating prover would, and returns the
/// equalities between halo2-base cells, or of a cell to a constant, that
/// its witness breaks, as the pairs of values that differ. Each one alone
/// fails every proof of that witness (a permutation argument over unequal
/// cells does not hold); this finds them in seconds where a forced k = 20
/// proof took four minutes.
fn broken_equalities(params: &Params, keys: &EpochKeys, snarks: Vec<Snark>) -> Vec<(Fr, Fr)> {
    let real = snarks.len();
    let mut c = epoch_circuit(CircuitBuilderStage::Mock, keys.config, params, snarks, real, &keys.spec, keys.tag);
    let copies = c.builder.core().copy_manager.lock().unwrap().clone();
    let threads = &c.builder.pool(0).threads;
    let value = |cell: &halo2_base::ContextCell| {
        threads
            .iter()
            .find(|t| t.type_id() == cell.type_id && t.id() == cell.context_id)
            .map(|t| t.advice[cell.offset].evaluate())
    };
    let pairs = &copies.advice_equalities;
    let checked = pairs.iter().filter_map(|(a, b)| Some((value(a)?, value(b)?))).collect::<Vec<_>>();
    assert!(checked.len() * 2 > pairs.len(), "most copy constraints are between the main threads' cells");
    let constants = copies.constant_equalities.iter().filter_map(|(c, cell)| Some((*c, value(cell)?)));
    checked.into_iter().chain(constants).filter(|(a, b)| a != b).collect()
}

#[test]
fn two_levels_chain_roots_wrap_and_sync_on_the_evm() {
    let f = fixture();
    let epochs = two_levels(f);
    // A prover of its own for the wrapper: the level-1 and level-2 proving
    // keys (2.5 and 3 GB, kept in memory by the prover that used them) are
    // gone before its key generation.
    wrap_and_sync(&test_prover!(CpuHal), &f.cfg, &epochs);
}

/// Level-1 epochs over the fixture's batches (checked, forced gaps
/// included), and a level-2 epoch over them (checked); returns the level-1
/// epochs. Its prover (and the keys it holds) is dropped on return.
fn two_levels(f: &Fixture) -> Vec<EpochProof> {
    let prover = &test_prover!(CpuHal);
    let cfg = &f.cfg;
    let tag = cfg.tag();
    let keyed1 = timed("level-1 N=2 keygen", || prover.epoch_keys(cfg, &L1).unwrap());
    let (agg_params, keys1) = (&keyed1.params, &keyed1.keys);
    eprintln!("level-1 N=2 config: {:?}", keys1.config);
    let prove = |spec: &EpochSpec, inner: &[BatchProof], seed: u64| {
        prover.prove_epoch(cfg, spec, inner, TranscriptKind::Poseidon, ChaCha20Rng::seed_from_u64(seed))
    };

    // a gap, a reordered pair, a proof of another transcript, too many
    // proofs and none: refused up front, and (the first two) unprovable when
    // forced
    let gap = prove(&L1, &[f.batches[0].clone(), f.batches[2].clone()], 3);
    assert!(matches!(gap, Err(ProverError::Epoch(m)) if m.contains("do not chain")));
    assert!(prove(&L1, &[f.batches[1].clone(), f.batches[0].clone()], 3).is_err());
    let mut blake = f.batches[1].clone();
    blake.transcript = TranscriptKind::Blake2b;
    let wrong = prove(&L1, &[f.batches[0].clone(), blake], 3);
    assert!(matches!(wrong, Err(ProverError::Epoch(m)) if m.contains("another transcript")));
    assert!(matches!(prove(&L1, &f.batches[..3], 3), Err(ProverError::Epoch(m)) if m.contains("1 to 2 proofs")));
    assert!(matches!(prove(&L1, &[], 3), Err(ProverError::Epoch(m)) if m.contains("1 to 2 proofs")));
    // Forced past the native check, the gap breaks exactly the in-circuit
    // links of batch 0 to batch 2: its new root is not their old root, seq
    // 0 + 1 is not 2 (a reordered pair breaks the same links); the honest
    // pair breaks nothing.
    let gap = timed("forced gap witness", || broken_equalities(agg_params, keys1, snarks(&[0, 2])));
    let (b0, b2) = (&f.batches[0].public, &f.batches[2].public);
    assert_ne!(b0.new_root, b2.old_root);
    let broken = |x: Fr| gap.contains(&(Fr::zero(), x));
    assert_eq!(gap.len(), 2, "two broken links: {gap:?}");
    assert!(broken(b0.new_root - b2.old_root) && broken(Fr::from(1) - Fr::from(2)), "{gap:?}");
    assert!(timed("honest pair witness", || broken_equalities(agg_params, keys1, snarks(&[0, 1]))).is_empty());

    // epoch A: batch 0 alone (m = 1, its second slot padded); epoch B: batches 1 and 2
    let mut epochs: Vec<EpochProof> = vec![];
    for range in [0..1, 1..3] {
        let e = timed("level-1 N=2 prove", || prove(&L1, &f.batches[range.clone()], 2).unwrap());
        let publics: Vec<PublicInputs> = f.batches[range.clone()].iter().map(|b| b.public).collect();
        let counts = vec![1; range.len()];
        assert_eq!(e.public(), epoch_public(&publics, &counts, tag), "the epoch exposes the chained roots and totals");
        assert!(prover.verify_epoch(cfg, &L1, &e).unwrap());
        epochs.push(e);
    }
    assert_eq!(epochs[0].public().batches, 1, "the padding slot counts nothing");
    assert_eq!(epochs[0].public().public.new_root, f.batches[0].public.new_root);
    // the epoch is bound to its chain: another chain's tag does not verify
    let mut retagged = epochs[0].clone();
    retagged.instances[ACCUMULATOR_LEN + 5] = tiny("other-chain").tag();
    assert_ne!(retagged.instances, epochs[0].instances);
    assert!(!prover.verify_epoch(cfg, &L1, &retagged).unwrap());
    let mut forged = epochs[0].clone();
    forged.instances[0] += Fr::one();
    assert!(!accumulator_holds(agg_params, &forged.instances), "a forged accumulator fails the deferred pairing check");
    assert!(!prover.verify_epoch(cfg, &L1, &forged).unwrap());

    // level 2 over the two level-1 epochs (1 + 2 batches)
    let l2 = EpochSpec::epoch(2, 2, EPOCH_K);
    timed("level-2 N=2 keygen", || prover.epoch_keys(cfg, &l2).unwrap());
    let top = timed("level-2 N=2 prove", || {
        prover.prove_epoch(cfg, &l2, &epochs, TranscriptKind::Poseidon, ChaCha20Rng::seed_from_u64(4)).unwrap()
    });
    let publics: Vec<PublicInputs> = f.batches[..3].iter().map(|b| b.public).collect();
    let parts = [epoch_public(&publics[..1], &[1], tag).public, epoch_public(&publics[1..], &[1, 1], tag).public];
    assert_eq!(top.public(), epoch_public(&parts, &[1, 2], tag), "level 2 spans batches 0..3");
    assert_eq!(top.public().public.transitions, 3);
    assert!(prover.verify_epoch(cfg, &l2, &top).unwrap());
    let swapped = [epochs[1].clone(), epochs[0].clone()];
    assert!(prover.prove_epoch(cfg, &l2, &swapped, TranscriptKind::Poseidon, ChaCha20Rng::seed_from_u64(5)).is_err());
    epochs
}

/// Wraps the level-1 `epochs` (consecutive, from genesis), deploys the
/// wrapper's verifier and `StateSync` with Ethereum's limits, and submits.
fn wrap_and_sync(prover: &Prover, cfg: &ChainConfig, epochs: &[EpochProof]) {
    let f = fixture();
    let tag = cfg.tag();

    // the wrapper over level-1 epochs: same public inputs, EVM transcript
    let wrap = L1.wrapper(WRAPPER_K);
    let keyed_w = timed("wrapper keygen", || prover.epoch_keys(cfg, &wrap).unwrap());
    eprintln!("wrapper config: {:?}", keyed_w.keys.config);
    let wrapped: Vec<EpochProof> = epochs
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let w = timed("wrapper prove", || {
                prover
                    .prove_epoch(
                        cfg,
                        &wrap,
                        std::slice::from_ref(e),
                        TranscriptKind::Evm,
                        ChaCha20Rng::seed_from_u64(6 + i as u64),
                    )
                    .unwrap()
            });
            assert_eq!(w.public(), e.public(), "the wrapper passes the epoch's public inputs through");
            assert!(prover.verify_epoch(cfg, &wrap, &w).unwrap());
            w
        })
        .collect();
    assert!(prover.prove_epoch(cfg, &wrap, epochs, TranscriptKind::Evm, ChaCha20Rng::seed_from_u64(8)).is_err());

    // the wrapper's verifier, deployed under EIP-170
    let mut evm = Evm::new();
    let verifier =
        deploy(&mut evm, "wrapper verifier", &verifier_solidity(&keyed_w.params, keyed_w.keys.pk.get_vk()), &[]);
    let (a, b) = (&wrapped[0], &wrapped[1]);
    let valid = evm.call(verifier, calldata(&a.instances, &a.proof)).unwrap();
    assert!(valid.success, "valid calldata verifies");
    eprintln!("wrapper verification: {} gas", valid.gas_used);
    let mut bad = a.proof.clone();
    bad[100] ^= 1;
    assert!(!evm.call(verifier, calldata(&a.instances, &bad)).unwrap().success, "a tampered proof byte reverts");
    let mut root = a.instances.clone();
    root[ACCUMULATOR_LEN + 1] += Fr::one();
    assert!(!evm.call(verifier, calldata(&root, &a.proof)).unwrap().success, "a tampered new root reverts");
    assert!(!evm.call(verifier, calldata(&a.instances[..a.instances.len() - 1], &a.proof)).unwrap().success);

    // StateSync of this chain at its genesis, and one of another chain
    let genesis = f.batches[0].public.old_root;
    let args = |tag: Fr| state_sync_constructor_args(verifier.into_array(), tag, genesis, 0);
    let sync = deploy(&mut evm, "StateSync", STATE_SYNC_SOL, &args(tag));
    let other = deploy(&mut evm, "StateSync (another chain)", STATE_SYNC_SOL, &args(tiny("other-chain").tag()));
    let submit = |evm: &mut Evm, to: Address, e: &EpochProof| {
        evm.call(to, submit_calldata(&calldata(&e.instances, &e.proof))).unwrap()
    };
    let reverts_with = |o: &CallOutcome, error: &str| !o.success && o.output.starts_with(&selector(error));
    // B before A does not start at the stored root
    assert!(reverts_with(&submit(&mut evm, sync, b), "WrongStart(uint256,uint256)"));
    // another chain's contract refuses this chain's proof
    assert!(reverts_with(&submit(&mut evm, other, a), "WrongChain(uint256)"));
    // a tampered proof
    let mut tampered = a.clone();
    tampered.proof[100] ^= 1;
    assert!(reverts_with(&submit(&mut evm, sync, &tampered), "InvalidProof()"));
    // A, then B: accepted in order, each emitting its public inputs
    for (e, next_seq) in [(a, 1u64), (b, 3)] {
        let out = submit(&mut evm, sync, e);
        assert!(out.success, "{out:?}");
        eprintln!("StateSync.submit: {} gas", out.gas_used);
        assert_eq!(out.logs.len(), 1);
        let (topics, data) = &out.logs[0];
        assert_eq!(
            topics[0][..4],
            selector("Synced(uint256,uint256,uint256,uint256,uint256,uint256,uint256)")[..],
            "event topic"
        );
        let p = e.public();
        assert_eq!(topics[1], word(Fr::from(p.public.seq)));
        assert_eq!(data[..32], word(Fr::from(p.batches)));
        assert_eq!(data[32..64], word(p.public.old_root));
        assert_eq!(data[64..96], word(p.public.new_root));
        let stored = evm.call(sync, selector("stateRoot()").to_vec()).unwrap();
        assert_eq!(stored.output, word(p.public.new_root));
        let seq = evm.call(sync, selector("nextSeq()").to_vec()).unwrap();
        assert_eq!(seq.output, word(Fr::from(next_seq)));
    }
    // A replayed
    assert!(reverts_with(&submit(&mut evm, sync, a), "WrongStart(uint256,uint256)"));
}
