//! The EVM verifier of top-level epoch proofs (DESIGN.md §3).
//!
//! snark-verifier-sdk generates a Solidity contract (one `fallback`, inline
//! assembly) that verifies an epoch proof made with the EVM (Keccak)
//! transcript, including the deferred pairing check of its accumulator, and
//! reverts otherwise. Calldata is the instances (32 bytes each, big-endian)
//! followed by the proof bytes.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use halo2_proofs::{
    halo2curves::bn256::{Bn256, Fr, G1Affine},
    plonk::VerifyingKey,
    poly::kzg::commitment::ParamsKZG,
};
use snark_verifier_sdk::{
    evm::{encode_calldata, gen_evm_verifier_sol_code},
    halo2::aggregation::AggregationCircuit,
    SHPLONK,
};

use crate::{epoch::EPOCH_INSTANCES, ProverError};

/// The Solidity source of the verifier of epoch proofs under `vk` (params of
/// the epoch circuit).
pub fn verifier_solidity(params: &ParamsKZG<Bn256>, vk: &VerifyingKey<G1Affine>) -> String {
    gen_evm_verifier_sol_code::<AggregationCircuit, SHPLONK>(params, vk, vec![EPOCH_INSTANCES])
}

/// The calldata of an epoch proof: instances then proof.
pub fn calldata(instances: &[Fr], proof: &[u8]) -> Vec<u8> {
    encode_calldata(&[instances.to_vec()], proof)
}

/// Where `solcjs` is: `STATESYNC_SOLCJS`, else where `scripts/tools`
/// installs it in this source tree (`.tools/solc`).
pub fn solcjs() -> Result<PathBuf, ProverError> {
    let path = std::env::var_os("STATESYNC_SOLCJS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/solc/node_modules/.bin/solcjs"));
    if path.exists() {
        Ok(path)
    } else {
        Err(ProverError::Evm(format!(
            "solcjs not found at {} (run scripts/tools, or set STATESYNC_SOLCJS)",
            path.display()
        )))
    }
}

/// Compiles Solidity `source` with `solcjs` (the compiler of the npm
/// registry's `solc` package, pinned by `scripts/tools`) and returns the
/// deployment bytecode of its one contract.
pub fn compile_solidity(solcjs: &Path, source: &str) -> Result<Vec<u8>, ProverError> {
    let dir = tempdir_in_target()?;
    let src = dir.join("Verifier.sol");
    std::fs::write(&src, source).map_err(ProverError::io(format!("writing {}", src.display())))?;
    let out = Command::new(solcjs)
        .arg("--bin")
        .arg("--base-path")
        .arg(&dir)
        .arg("--output-dir")
        .arg(&dir)
        .arg(&src)
        .stdin(Stdio::null())
        .output()
        .map_err(ProverError::io(format!("running {}", solcjs.display())))?;
    let bin = std::fs::read_dir(&dir)
        .map_err(ProverError::io(format!("listing {}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "bin"));
    let result = match (out.status.success(), bin) {
        (true, Some(bin)) => {
            let text = std::fs::read_to_string(&bin).map_err(ProverError::io(format!("reading {}", bin.display())))?;
            hex::decode(text.trim()).map_err(|e| ProverError::Evm(format!("solcjs wrote no hex bytecode: {e}")))
        }
        _ => Err(ProverError::Evm(format!(
            "solcjs failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))),
    };
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn tempdir_in_target() -> Result<std::path::PathBuf, ProverError> {
    let dir = std::env::temp_dir().join(format!("statesync-solc-{}-{}", std::process::id(), rand::random::<u64>()));
    std::fs::create_dir_all(&dir).map_err(ProverError::io(format!("creating {}", dir.display())))?;
    Ok(dir)
}

/// What a call to a deployed verifier did.
#[cfg(feature = "evm-exec")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallOutcome {
    /// Whether the call succeeded (did not revert or halt).
    pub success: bool,
    /// Gas used by the call transaction (including the 21,000 base and calldata).
    pub gas_used: u64,
}

/// A local EVM (revm, mainnet rules, in-memory state) with one deployed
/// contract. The contract size limits of EIP-170 (24,576 bytes deployed) and
/// EIP-3860 (49,152 bytes of initcode) are lifted:
/// snark-verifier's verifiers of aggregation circuits exceed it (see
/// [`Evm::code_size`] and the README), so they deploy on chains without
/// that limit, or behind a thinner wrapping circuit.
#[cfg(feature = "evm-exec")]
pub struct Evm {
    evm: revm::handler::MainnetEvm<revm::handler::MainnetContext<revm::database::InMemoryDB>>,
    contract: revm::primitives::Address,
    nonce: u64,
}

#[cfg(feature = "evm-exec")]
impl std::fmt::Debug for Evm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evm").field("contract", &self.contract).field("nonce", &self.nonce).finish_non_exhaustive()
    }
}

#[cfg(feature = "evm-exec")]
impl Evm {
    /// Deploys `code` (deployment bytecode); an error says why it failed.
    pub fn deploy(code: Vec<u8>) -> Result<Self, ProverError> {
        use revm::{
            context::{
                result::{ExecutionResult, Output},
                TxEnv,
            },
            database::InMemoryDB,
            primitives::TxKind,
            Context, ExecuteCommitEvm, MainBuilder, MainContext,
        };
        let mut evm = Context::mainnet()
            .with_db(InMemoryDB::default())
            .modify_cfg_chained(|cfg| {
                cfg.limit_contract_code_size = Some(usize::MAX);
                cfg.limit_contract_initcode_size = Some(usize::MAX);
            })
            .build_mainnet();
        let tx = TxEnv { gas_limit: 30_000_000, kind: TxKind::Create, data: code.into(), ..Default::default() };
        let result = evm.transact_commit(tx).map_err(|e| ProverError::Evm(format!("deployment: {e:?}")))?;
        match result {
            ExecutionResult::Success { output: Output::Create(_, Some(contract)), .. } => {
                Ok(Evm { evm, contract, nonce: 1 })
            }
            other => Err(ProverError::Evm(format!("deployment failed: {other:?}"))),
        }
    }

    /// Size of the deployed (runtime) code in bytes (EIP-170 allows 24,576).
    pub fn code_size(&mut self) -> usize {
        use revm::database::Database;
        let contract = self.contract;
        self.evm
            .ctx
            .journaled_state
            .database
            .basic(contract)
            .ok()
            .flatten()
            .and_then(|a| a.code)
            .map_or(0, |c| c.original_bytes().len())
    }

    /// Calls the contract with `calldata`.
    pub fn call(&mut self, calldata: Vec<u8>) -> Result<CallOutcome, ProverError> {
        use revm::{
            context::{result::ExecutionResult, TxEnv},
            primitives::TxKind,
            ExecuteCommitEvm,
        };
        let tx = TxEnv {
            gas_limit: 30_000_000,
            kind: TxKind::Call(self.contract),
            data: calldata.into(),
            nonce: self.nonce,
            ..Default::default()
        };
        let result = self.evm.transact_commit(tx).map_err(|e| ProverError::Evm(format!("call: {e:?}")))?;
        self.nonce += 1;
        Ok(match result {
            ExecutionResult::Success { gas_used, .. } => CallOutcome { success: true, gas_used },
            ExecutionResult::Revert { gas_used, .. } | ExecutionResult::Halt { gas_used, .. } => {
                CallOutcome { success: false, gas_used }
            }
        })
    }
}
