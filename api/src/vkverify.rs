//! `statesync verify --vk FILE PROOF`: verifying with the verifying keys a
//! service publishes (`GET /v1/chains/{chain}/vk`), without an SRS and
//! without generating any key ([`statesync_prover::vkfile`]).

use std::{fs, path::Path};

use serde::Deserialize;
use serde_json::Value;
use statesync_circuits::witness::fr_hex;
use statesync_prover::{
    batch::{self, ProofFile},
    epoch,
    snark::TranscriptKind,
    vkfile::{CircuitOf, VerifyingKeyFile},
};

use crate::{cli::Failure, http::chains::ChainKeys};

/// A proven epoch as `GET /v1/chains/{chain}/epochs/{id}` returns it (the
/// fields a verifier reads).
#[derive(Debug, Deserialize)]
struct EpochJson {
    chain: String,
    first_seq: u64,
    last_seq: u64,
    vk_hash: Option<String>,
    instances: Option<Vec<String>>,
    proof: Option<String>,
    /// Absent in the answers of earlier versions, whose epochs were all
    /// proven for the EVM.
    #[serde(default = "evm")]
    transcript: TranscriptKind,
}

fn evm() -> TranscriptKind {
    TranscriptKind::Evm
}

fn read_json(path: &Path) -> Result<(String, Value), Failure> {
    let text = fs::read_to_string(path).map_err(|e| Failure::input(format!("reading {}: {e}", path.display())))?;
    let value =
        serde_json::from_str(&text).map_err(|e| Failure::input(format!("{}: not JSON: {e}", path.display())))?;
    Ok((text, value))
}

fn invalid(why: &str) -> Failure {
    println!("{}", serde_json::json!({ "valid": false, "reason": why }));
    Failure::failed(format!("invalid: {why}"))
}

/// Verifies the proof at `proof` with the keys at `vk`: exit 0 valid, 1
/// invalid, 2 unreadable input.
pub fn verify(vk: &Path, proof: &Path) -> Result<(), Failure> {
    let (_, keys) = read_json(vk)?;
    let bad_keys = |e: serde_json::Error| Failure::input(format!("{}: not a verifying-key file: {e}", vk.display()));
    // The endpoint's answer names the chain; a single file does not.
    let (chain, batch_key, epoch_keys) = if keys.get("batch").is_some() {
        let k: ChainKeys = serde_json::from_value(keys).map_err(bad_keys)?;
        (Some((k.chain_id, k.chain_tag)), Some(k.batch), [k.epoch, k.wrapper].into_iter().flatten().collect())
    } else {
        let f: VerifyingKeyFile = serde_json::from_value(keys).map_err(bad_keys)?;
        match f.circuit {
            CircuitOf::Batch { .. } => (None, Some(f), vec![]),
            CircuitOf::Epoch { .. } => (None, None, vec![f]),
        }
    };
    let (text, value) = read_json(proof)?;
    let verifier = |f: &VerifyingKeyFile| f.verifier().map_err(|e| Failure::input(format!("{}: {e}", vk.display())));
    // an epoch (as the service shows it) carries its instances; a batch proof file does not
    if value.get("instances").is_none() {
        let file = ProofFile::from_json(&text).map_err(|e| Failure::input(e.to_string()))?;
        let key = batch_key.ok_or_else(|| Failure::input("a batch proof needs the batch circuit's verifying key"))?;
        if let CircuitOf::Batch { shape, .. } = &key.circuit {
            if *shape != file.shape {
                return Err(invalid("the proof is of another shape"));
            }
        }
        if let Some((id, tag)) = &chain {
            if file.chain_id != *id || fr_hex::to_hex(&file.public_inputs.chain_tag) != *tag {
                return Err(invalid("the proof is of another chain"));
            }
        }
        let v = verifier(&key)?;
        let proof = file.batch_proof().map_err(|e| Failure::input(e.to_string()))?;
        if file.vk_hash != v.vk_hash {
            return Err(invalid("the proof names another verifying key"));
        }
        if !batch::verify(&v.params, &v.vk, &v.vk_hash, &proof) {
            return Err(invalid("the proof does not verify"));
        }
        println!("{}", serde_json::json!({ "valid": true, "circuit": "batch", "seq": file.seq }));
        return Ok(());
    }
    let e: EpochJson = serde_json::from_value(value)
        .map_err(|e| Failure::input(format!("{}: neither a batch proof file nor an epoch: {e}", proof.display())))?;
    let (Some(vk_hash), Some(instances), Some(bytes)) = (e.vk_hash, e.instances, e.proof) else {
        return Err(Failure::input(format!("{}: the epoch is not proven (no proof yet)", proof.display())));
    };
    // the level-1 epoch's key or the wrapper's: the one the epoch names
    let key = match epoch_keys.iter().find(|k| k.vk_hash == vk_hash) {
        Some(k) => k,
        None => match epoch_keys.first() {
            Some(k) => k,
            None => return Err(Failure::input("an epoch proof needs the verifying key of its circuit")),
        },
    };
    if chain.as_ref().is_some_and(|(id, _)| *id != e.chain) {
        return Err(invalid("the epoch is of another chain"));
    }
    let instances: Vec<_> = instances
        .iter()
        .map(|s| fr_hex::from_hex(s).ok_or_else(|| Failure::input(format!("instance {s:?} is not a 0x-hex scalar"))))
        .collect::<Result<_, _>>()?;
    let bytes = hex::decode(&bytes).map_err(|err| Failure::input(format!("the proof is not hex: {err}")))?;
    let v = verifier(key)?;
    if vk_hash != v.vk_hash {
        return Err(invalid("the epoch names another verifying key"));
    }
    if !epoch::verify_epoch(&v.params, &v.vk, &instances, &bytes, e.transcript) {
        return Err(invalid("the proof does not verify"));
    }
    println!(
        "{}",
        serde_json::json!({ "valid": true, "circuit": "epoch", "first_seq": e.first_seq, "last_seq": e.last_seq })
    );
    Ok(())
}
