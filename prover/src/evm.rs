//! The EVM side (DESIGN.md §3): verifier contracts and `StateSync`.
//!
//! snark-verifier-sdk generates a Solidity contract (one `fallback`, inline
//! assembly) that verifies a proof of an aggregation circuit made with the
//! EVM (Keccak) transcript, including the deferred pairing check of its
//! accumulator, and reverts otherwise. Calldata is the instances (32 bytes
//! each, big-endian) followed by the proof bytes. The verifier of an epoch
//! circuit is 34 to 45 KB, over Ethereum's 24,576 bytes (EIP-170); the
//! wrapper circuit's (one epoch proof, few columns) is under it, and is the
//! one meant for Ethereum. `StateSync.sol` keeps a chain's root and next
//! seq and advances them with wrapper proofs verified by that contract.

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

/// The Solidity source of the verifier of epoch or wrapper proofs under
/// `vk` (`params`: the circuit's).
pub fn verifier_solidity(params: &ParamsKZG<Bn256>, vk: &VerifyingKey<G1Affine>) -> String {
    gen_evm_verifier_sol_code::<AggregationCircuit, SHPLONK>(params, vk, vec![EPOCH_INSTANCES])
}

/// The calldata of an epoch or wrapper proof: instances then proof.
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

/// The Solidity source of `StateSync`, the chain's on-chain synchronization
/// point: it keeps the chain's state root and next seq and moves them with
/// wrapper proofs verified by the chain's verifier contract.
pub const STATE_SYNC_SOL: &str = include_str!("StateSync.sol");

/// The ABI-encoded arguments of `StateSync`'s constructor (appended to its
/// deployment bytecode): the verifier contract's address, the chain tag, the
/// genesis root and the seq of the first batch.
pub fn state_sync_constructor_args(verifier: [u8; 20], chain_tag: Fr, genesis_root: Fr, first_seq: u64) -> Vec<u8> {
    let mut out = vec![0u8; 12];
    out.extend(verifier);
    out.extend(word(chain_tag));
    out.extend(word(genesis_root));
    out.extend(word(Fr::from(first_seq)));
    out
}

/// The calldata of `StateSync.submit(bytes)` carrying a wrapper proof's
/// `calldata` (instances then proof).
pub fn submit_calldata(proof_calldata: &[u8]) -> Vec<u8> {
    let mut out = selector("submit(bytes)").to_vec();
    out.extend(uint(32)); // offset of the one `bytes` argument
    out.extend(uint(proof_calldata.len() as u64));
    out.extend(proof_calldata);
    out.resize(4 + 64 + proof_calldata.len().div_ceil(32) * 32, 0);
    out
}

/// The first four bytes of the Keccak-256 of a function's signature.
pub fn selector(signature: &str) -> [u8; 4] {
    use sha3::{Digest, Keccak256};
    Keccak256::digest(signature.as_bytes())[..4].try_into().expect("4 bytes")
}

/// A field element as an EVM word (big-endian).
pub fn word(x: Fr) -> [u8; 32] {
    use halo2_proofs::halo2curves::ff::PrimeField;
    let mut w = x.to_repr();
    w.reverse();
    w
}

fn uint(x: u64) -> [u8; 32] {
    word(Fr::from(x))
}

/// What a transaction did.
#[cfg(feature = "evm-exec")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallOutcome {
    /// Whether the call succeeded (did not revert or halt).
    pub success: bool,
    /// Gas used by the transaction (including the 21,000 base and calldata).
    pub gas_used: u64,
    /// The returned or revert data.
    pub output: Vec<u8>,
    /// The logs emitted (none when it failed): topics and data.
    pub logs: Vec<(Vec<[u8; 32]>, Vec<u8>)>,
    /// Why the EVM halted (out of gas, a size limit, ...), when it did.
    pub halted: Option<String>,
}

/// A local EVM (revm, mainnet rules of its latest fork, in-memory state)
/// with Ethereum's limits: a deployed contract's code is at most 24,576
/// bytes (EIP-170) and its initcode at most 49,152 (EIP-3860); a deployment
/// past either fails, as it would on Ethereum.
#[cfg(feature = "evm-exec")]
pub struct Evm {
    evm: revm::handler::MainnetEvm<revm::handler::MainnetContext<revm::database::InMemoryDB>>,
    nonce: u64,
}

/// An account's address.
#[cfg(feature = "evm-exec")]
pub type Address = revm::primitives::Address;

#[cfg(feature = "evm-exec")]
impl std::fmt::Debug for Evm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evm").field("nonce", &self.nonce).finish_non_exhaustive()
    }
}

#[cfg(feature = "evm-exec")]
impl Default for Evm {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "evm-exec")]
impl Evm {
    /// Gas limit of every transaction (Ethereum's block gas limit of 2024).
    pub const GAS_LIMIT: u64 = 30_000_000;

    /// An empty chain, Ethereum's size limits enforced.
    pub fn new() -> Self {
        Self::with_limits(true)
    }

    /// An empty chain without EIP-170's and EIP-3860's limits: for the
    /// verifiers of epoch proofs themselves (34 to 45 KB), which deploy only
    /// on chains without those limits; what is meant for Ethereum (the
    /// wrapper's verifier, `StateSync`) is tested on [`Evm::new`].
    pub fn without_size_limits() -> Self {
        Self::with_limits(false)
    }

    fn with_limits(limits: bool) -> Self {
        use revm::{database::InMemoryDB, Context, MainBuilder, MainContext};
        let evm = Context::mainnet()
            .with_db(InMemoryDB::default())
            .modify_cfg_chained(|cfg| {
                if !limits {
                    cfg.limit_contract_code_size = Some(usize::MAX);
                    cfg.limit_contract_initcode_size = Some(usize::MAX);
                }
            })
            .build_mainnet();
        Evm { evm, nonce: 0 }
    }

    /// Deploys `code` (deployment bytecode, constructor arguments appended);
    /// an error says why it failed (a size limit among them).
    pub fn deploy(&mut self, code: Vec<u8>) -> Result<Address, ProverError> {
        use revm::{context::result::Output, primitives::TxKind};
        let (result, outcome) = self.transact(TxKind::Create, code)?;
        match result {
            Some(Output::Create(_, Some(contract))) if outcome.success => Ok(contract),
            _ => Err(ProverError::Evm(match outcome.halted {
                Some(reason) => format!("deployment halted: {reason}"),
                None => format!("deployment reverted: 0x{}", hex::encode(&outcome.output)),
            })),
        }
    }

    /// Size of the deployed (runtime) code of `contract` in bytes (EIP-170 allows 24,576).
    pub fn code_size(&mut self, contract: Address) -> usize {
        use revm::database::Database;
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

    /// Calls `contract` with `calldata`.
    pub fn call(&mut self, contract: Address, calldata: Vec<u8>) -> Result<CallOutcome, ProverError> {
        Ok(self.transact(revm::primitives::TxKind::Call(contract), calldata)?.1)
    }

    fn transact(
        &mut self,
        kind: revm::primitives::TxKind,
        data: Vec<u8>,
    ) -> Result<(Option<revm::context::result::Output>, CallOutcome), ProverError> {
        use revm::{
            context::{result::ExecutionResult, TxEnv},
            ExecuteCommitEvm,
        };
        let tx = TxEnv { gas_limit: Self::GAS_LIMIT, kind, data: data.into(), nonce: self.nonce, ..Default::default() };
        let result = self.evm.transact_commit(tx).map_err(|e| ProverError::Evm(format!("transaction: {e:?}")))?;
        self.nonce += 1;
        Ok(match result {
            ExecutionResult::Success { gas_used, output, logs, .. } => {
                let logs = logs
                    .into_iter()
                    .map(|l| (l.data.topics().iter().map(|t| t.0).collect(), l.data.data.to_vec()))
                    .collect();
                let outcome =
                    CallOutcome { success: true, gas_used, output: output.data().to_vec(), logs, halted: None };
                (Some(output), outcome)
            }
            ExecutionResult::Revert { gas_used, output } => {
                (None, CallOutcome { success: false, gas_used, output: output.to_vec(), logs: vec![], halted: None })
            }
            ExecutionResult::Halt { gas_used, reason } => (
                None,
                CallOutcome {
                    success: false,
                    gas_used,
                    output: vec![],
                    logs: vec![],
                    halted: Some(format!("{reason:?}")),
                },
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deployment code whose constructor returns `size` zero bytes as the
    /// contract's code, padded with `pad` bytes of initcode after it.
    fn returning(size: u16, pad: usize) -> Vec<u8> {
        // PUSH2 size, PUSH1 0, RETURN
        let mut code = vec![0x61, (size >> 8) as u8, size as u8, 0x60, 0x00, 0xf3];
        code.resize(code.len() + pad, 0);
        code
    }

    #[cfg(feature = "evm-exec")]
    #[test]
    fn ethereums_size_limits_are_enforced_and_can_be_lifted() {
        let mut evm = Evm::new();
        let at_limit = evm.deploy(returning(24_576, 0)).unwrap();
        assert_eq!(evm.code_size(at_limit), 24_576);
        let over = evm.deploy(returning(24_577, 0)).unwrap_err().to_string();
        assert!(over.contains("CreateContractSizeLimit"), "EIP-170: {over}");
        // EIP-3860: 49,152 bytes of initcode at most
        assert!(evm.deploy(returning(1, 49_152 - 6)).is_ok());
        let over = evm.deploy(returning(1, 49_152 - 5)).unwrap_err().to_string();
        assert!(over.contains("InitCodeSizeLimit"), "EIP-3860: {over}");
        let mut unlimited = Evm::without_size_limits();
        let big = unlimited.deploy(returning(40_000, 50_000)).unwrap();
        assert_eq!(unlimited.code_size(big), 40_000);
    }

    #[test]
    fn abi_encoding_of_selectors_words_and_submit() {
        // ERC-20's transfer, a well-known selector
        assert_eq!(selector("transfer(address,uint256)"), [0xa9, 0x05, 0x9c, 0xbb]);
        let mut one = [0u8; 32];
        one[31] = 1;
        assert_eq!(word(Fr::one()), one);
        let data = submit_calldata(&[7u8; 33]);
        assert_eq!(data[..4], selector("submit(bytes)"));
        assert_eq!(data[4..36], uint(32), "offset of the bytes argument");
        assert_eq!(data[36..68], uint(33), "its length");
        assert_eq!(data[68..101], [7u8; 33]);
        assert_eq!(data.len(), 4 + 64 + 64, "padded to whole words");
        assert!(data[101..].iter().all(|b| *b == 0));
        let args = state_sync_constructor_args([0xab; 20], Fr::from(5), Fr::from(6), 7);
        assert_eq!(args.len(), 4 * 32);
        assert_eq!(args[..12], [0u8; 12]);
        assert_eq!(args[12..32], [0xab; 20]);
        assert_eq!(args[32..64], uint(5));
        assert_eq!(args[64..96], uint(6));
        assert_eq!(args[96..], uint(7));
    }
}
