//! Epoch proofs: two consecutive batch proofs aggregate into one proof that
//! halo2-axiom verifies and whose public inputs chain the roots; a gap cannot
//! be proven.

use std::time::Instant;

use halo2_base::gates::circuit::CircuitBuilderStage;
use halo2_proofs::plonk::{keygen_pk, keygen_vk};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use snark_verifier_sdk::{halo2::aggregation::AggregationConfigParams, CircuitExt};
use statesync_circuits::{
    config::{ChainConfig, Shape},
    engine::{apply_transitions, Mode},
    examples,
    transition::Transition,
    witness::PublicInputs,
};
use statesync_prover::{
    epoch::{accumulator_holds, batch_snark, epoch_circuit, epoch_public, Level, ACCUMULATOR_LEN},
    keys::KeyStore,
    proof::{prove_batch, prove_circuit, TranscriptKind},
    srs::SrsSource,
};

fn tiny() -> ChainConfig {
    let mut cfg = examples::chain();
    cfg.shape = Shape { capacity: 1, depth: 3, markets: 1, series: 0, scenarios: 1 };
    cfg.markets.truncate(1);
    cfg.series.clear();
    cfg.scenarios.truncate(1);
    cfg
}

#[test]
fn epoch_of_two_batches_chains_roots() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny();
    let store = KeyStore::new(dir.path().join("keys"));
    let srs = SrsSource::Dev { cache_dir: dir.path().join("srs") };
    let layout = store.layout(&cfg.shape).unwrap();
    let params = srs.params(layout.k as u32).unwrap();
    let keys = store.keys(&params, &cfg.shape).unwrap();
    let mut state = cfg.genesis_state();
    let mut snarks = vec![];
    let mut publics: Vec<PublicInputs> = vec![];
    for amount in 1..=3i64 {
        let t = Transition::Deposit { account: 1, amount: statesync_circuits::fixed::Fixed::from_int(amount) };
        let out = apply_transitions(&state, &[t], Mode::Enforce).unwrap();
        let proof =
            prove_batch(&params, &keys, &out.witness, TranscriptKind::Poseidon, ChaCha20Rng::seed_from_u64(1)).unwrap();
        snarks.push(batch_snark(&params, keys.pk.get_vk(), &out.witness.public, proof));
        publics.push(out.witness.public);
        state = out.state;
    }

    let k = 20u32;
    let agg_params = srs.params(k).unwrap();
    let t = Instant::now();
    let mut kc = epoch_circuit(
        CircuitBuilderStage::Keygen,
        AggregationConfigParams { degree: k, lookup_bits: k as usize - 1, ..Default::default() },
        &agg_params,
        snarks[..2].to_vec(),
        Level::Batches,
    );
    let config = kc.calculate_params(Some(20));
    eprintln!("epoch circuit N=2: {config:?}");
    let vk = keygen_vk(&agg_params, &kc).unwrap();
    let pk = keygen_pk(&agg_params, vk, &kc).unwrap();
    let break_points = kc.break_points();
    eprintln!("keygen {:.1?}", t.elapsed());

    let t = Instant::now();
    let pc = epoch_circuit(CircuitBuilderStage::Prover, config, &agg_params, snarks[..2].to_vec(), Level::Batches)
        .use_break_points(break_points.clone());
    let instances = pc.instances()[0].clone();
    assert_eq!(instances[ACCUMULATOR_LEN..].to_vec(), epoch_public(&publics[..2]).to_fields(), "roots chain");
    let proof = prove_circuit(&agg_params, &pk, pc, &instances, TranscriptKind::Blake2b, ChaCha20Rng::seed_from_u64(2))
        .unwrap();
    eprintln!("prove {:.1?}", t.elapsed());
    assert!(statesync_prover::proof::verify_instances(
        &agg_params,
        pk.get_vk(),
        &instances,
        &proof,
        TranscriptKind::Blake2b
    ));
    assert!(accumulator_holds(&agg_params, &instances), "the deferred pairing check holds");
    let mut forged = instances.clone();
    forged[0] += halo2_proofs::halo2curves::bn256::Fr::one();
    assert!(!accumulator_holds(&agg_params, &forged));

    // a gap (batches 0 and 2): the chaining constraint cannot be met
    let gap = epoch_circuit(
        CircuitBuilderStage::Prover,
        config,
        &agg_params,
        vec![snarks[0].clone(), snarks[2].clone()],
        Level::Batches,
    )
    .use_break_points(break_points);
    let gap_instances = gap.instances()[0].clone();
    let bad =
        prove_circuit(&agg_params, &pk, gap, &gap_instances, TranscriptKind::Blake2b, ChaCha20Rng::seed_from_u64(3))
            .unwrap();
    assert!(!statesync_prover::proof::verify_instances(
        &agg_params,
        pk.get_vk(),
        &gap_instances,
        &bad,
        TranscriptKind::Blake2b
    ));
}
