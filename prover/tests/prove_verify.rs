//! Real proofs on a small shape through the [`Prover`]: both transcripts
//! verify with halo2-axiom's verifier; tampered proofs, wrong public inputs,
//! another transcript or another verifying key are rejected; keys are
//! generated, cached on disk and read back.

use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use statesync_circuits::{engine::apply_batch, examples};
use statesync_prover::{hal::CpuHal, keys::KeyStore, snark::TranscriptKind, srs::SrsSource, Prover};
use statesync_testkit::test_cache_dir;

#[test]
fn batch_proofs_verify_and_tampering_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = examples::chain_with(12, 3);
    let st = cfg.genesis_state();
    let out = apply_batch(&st, &cfg.chain_id, &examples::signed_for(&examples::batch_valid(), &cfg)).unwrap();
    // the SRS from the shared test cache; the keys made here, from scratch,
    // so that every run generates, caches and reloads a batch key
    let srs = SrsSource::new(None, test_cache_dir!());
    let prover = Prover::new(srs.clone(), KeyStore::new(dir.path().join("keys")), Arc::new(CpuHal));
    let keys = prover.batch_keys(&cfg.shape).unwrap().keys;
    assert_eq!(prover.batch_verifier(&cfg.shape).unwrap().vk_hash, keys.vk_hash, "the cached vk is the pk's");

    // a second prover reads the proving key back from disk
    let reloaded = Prover::new(srs, KeyStore::new(dir.path().join("keys")), Arc::new(CpuHal));
    assert_eq!(reloaded.batch_keys(&cfg.shape).unwrap().keys.vk_hash, keys.vk_hash);

    for (kind, p) in [(TranscriptKind::Blake2b, &reloaded), (TranscriptKind::Poseidon, &prover)] {
        let (proof, timings) = p.prove_batch(&out.witness, kind, ChaCha20Rng::seed_from_u64(7)).unwrap();
        assert!(timings.witness > std::time::Duration::ZERO && timings.proving > timings.witness);
        assert_eq!((proof.transcript, &proof.vk_hash), (kind, &keys.vk_hash));
        assert!(prover.verify_batch(&cfg.shape, &proof).unwrap(), "{kind:?} proof verifies");
        let other = if kind == TranscriptKind::Blake2b { TranscriptKind::Poseidon } else { TranscriptKind::Blake2b };
        let check = |f: &dyn Fn(&mut statesync_prover::batch::BatchProof)| {
            let mut bad = proof.clone();
            f(&mut bad);
            prover.verify_batch(&cfg.shape, &bad).unwrap()
        };
        assert!(!check(&|p| p.transcript = other), "wrong transcript rejected");
        assert!(!check(&|p| p.proof[100] ^= 1), "flipped byte rejected");
        assert!(!check(&|p| p.public.new_root = p.public.old_root), "wrong public input rejected");
        assert!(!check(&|p| p.vk_hash = "0".repeat(64)), "a proof naming another verifying key is rejected");
    }

    // a witness claiming other public inputs than it computes is refused
    let mut lying = out.witness.clone();
    lying.public.transitions += 1;
    assert!(prover.prove_batch(&lying, TranscriptKind::Blake2b, ChaCha20Rng::seed_from_u64(7)).is_err());
}
