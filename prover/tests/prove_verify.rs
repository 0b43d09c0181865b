//! Real proofs on a small shape: both transcripts verify with halo2-axiom's
//! verifier; tampered proofs and wrong public inputs are rejected.

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use statesync_circuits::{engine::apply_batch, examples};
use statesync_prover::{
    hal::CpuHal,
    keys::KeyStore,
    proof::{prove_batch, verify_batch, TranscriptKind},
    srs::SrsSource,
};

#[test]
fn batch_proofs_verify_and_tampering_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = examples::chain_with(12, 3);
    let st = cfg.genesis_state();
    let out = apply_batch(&st, &cfg.chain_id, &examples::signed_for(&examples::batch_valid(), &cfg)).unwrap();
    let store = KeyStore::new(dir.path().join("keys"));
    let layout = store.layout(&cfg.shape).unwrap();
    // the SRS from the shared test cache; the keys made here, from scratch,
    // so that every run generates, caches and reloads a batch key
    let params =
        SrsSource::new(None, std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))).params(layout.k as u32).unwrap();
    let keys = store.keys(&params, &cfg.shape).unwrap();
    let (vk, vk_hash) = store.verifying_key(&params, &cfg.shape).unwrap();
    assert_eq!(vk_hash, keys.vk_hash, "the cached verifying key is the proving key's");

    // a second store reads the proving key back from disk
    let reloaded = KeyStore::new(dir.path().join("keys")).keys(&params, &cfg.shape).unwrap();
    assert_eq!(reloaded.vk_hash, keys.vk_hash);

    for (kind, keys) in [(TranscriptKind::Blake2b, &reloaded), (TranscriptKind::Poseidon, &keys)] {
        let proof = prove_batch(&CpuHal, &params, keys, &out.witness, kind, ChaCha20Rng::seed_from_u64(7)).unwrap();
        assert!(verify_batch(&params, &vk, &out.witness.public, &proof, kind), "{kind:?} proof verifies");
        let other = if kind == TranscriptKind::Blake2b { TranscriptKind::Poseidon } else { TranscriptKind::Blake2b };
        assert!(!verify_batch(&params, &vk, &out.witness.public, &proof, other), "wrong transcript rejected");
        let mut bad = proof.clone();
        bad[100] ^= 1;
        assert!(!verify_batch(&params, &vk, &out.witness.public, &bad, kind), "flipped byte rejected");
        let mut wrong = out.witness.public;
        wrong.new_root = wrong.old_root;
        assert!(!verify_batch(&params, &vk, &wrong, &proof, kind), "wrong public input rejected");
    }

    // a witness claiming other public inputs than it computes is refused
    let mut lying = out.witness.clone();
    lying.public.transitions += 1;
    assert!(
        prove_batch(&CpuHal, &params, &keys, &lying, TranscriptKind::Blake2b, ChaCha20Rng::seed_from_u64(7)).is_err()
    );
}
