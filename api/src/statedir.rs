//! A chain's state kept in a directory (`statesync apply --state-dir DIR`).
//!
//! Layout: `chain.json` (the config the directory was created from),
//! `state.bin` (bincode [`StoredState`], the commit point),
//! `batches/<seq>.json` and `witness/<seq>.bin` (what `prove` needs).
//! Every file is written to a temporary name and renamed, and `state.bin` is
//! renamed last, so a crash leaves either the old or the new state. An
//! exclusive lock on `DIR/lock` serializes concurrent commands.

use std::{
    fs,
    path::{Path, PathBuf},
};

use serde::Serialize;
use statesync_circuits::{
    config::ChainConfig,
    engine::apply_batch,
    error::BatchError,
    state::{ChainState, StoredState, STATE_VERSION},
    transition::Batch,
    witness::{fr_hex, BatchWitness},
};

/// Errors of a state directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateDirError {
    /// The batch broke a rule; nothing was written.
    #[error("batch rejected: {0}")]
    Rejected(BatchError),
    /// The directory belongs to another chain or is corrupt.
    #[error("{0}")]
    Mismatch(String),
    /// No such batch.
    #[error("no batch with seq {0} in this state directory")]
    NoSuchBatch(u64),
    /// File system.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StateDirError {
    let context = context.into();
    move |source| StateDirError::Io { context, source }
}

/// What `apply` prints.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyOutcome {
    /// The batch's sequence number.
    pub seq: u64,
    /// Root before.
    pub old_root: String,
    /// Root after.
    pub new_root: String,
}

/// An open, locked state directory.
#[derive(Debug)]
pub struct StateDir {
    dir: PathBuf,
    config: ChainConfig,
    _lock: fs::File,
}

impl StateDir {
    /// Opens (creating on first use) the directory of `config`'s chain.
    pub fn open(dir: &Path, config: &ChainConfig) -> Result<Self, StateDirError> {
        fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .map_err(io("opening the lock file"))?;
        lock.lock().map_err(io("locking the state directory"))?;
        let cfg_path = dir.join("chain.json");
        match fs::read_to_string(&cfg_path) {
            Ok(text) => {
                let existing = ChainConfig::from_json(&text)
                    .map_err(|e| StateDirError::Mismatch(format!("{} is corrupt: {e}", cfg_path.display())))?;
                if existing != *config {
                    return Err(StateDirError::Mismatch(format!(
                        "{} holds chain {:?} with another config; use a fresh state directory",
                        dir.display(),
                        existing.chain_id
                    )));
                }
            }
            Err(_) => write_atomic(&cfg_path, &serde_json::to_vec_pretty(config).expect("configs serialize"))?,
        }
        Ok(StateDir { dir: dir.to_path_buf(), config: config.clone(), _lock: lock })
    }

    /// The current state (genesis before the first batch).
    pub fn state(&self) -> Result<ChainState, StateDirError> {
        match fs::read(self.dir.join("state.bin")) {
            Ok(bytes) => {
                let stored: StoredState = bincode::deserialize(&bytes).map_err(|e| {
                    StateDirError::Mismatch(format!(
                        "state.bin is corrupt or was written by another statesync version \
                         (this build reads state version {STATE_VERSION}): {e}"
                    ))
                })?;
                ChainState::from_stored(stored).map_err(|e| StateDirError::Mismatch(format!("state.bin: {e}")))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(self.config.genesis_state()),
            Err(e) => Err(io("reading state.bin")(e)),
        }
    }

    /// Applies a batch atomically and records its witness.
    pub fn apply(&self, batch: &Batch) -> Result<ApplyOutcome, StateDirError> {
        let state = self.state()?;
        let applied = apply_batch(&state, &self.config.chain_id, batch).map_err(StateDirError::Rejected)?;
        let seq = batch.seq;
        write_atomic(
            &self.dir.join("batches").join(format!("{seq}.json")),
            &serde_json::to_vec_pretty(batch).expect("batches serialize"),
        )?;
        write_atomic(
            &self.dir.join("witness").join(format!("{seq}.bin")),
            &bincode::serialize(&applied.witness).expect("witnesses serialize"),
        )?;
        write_atomic(
            &self.dir.join("state.bin"),
            &bincode::serialize(&applied.state.to_stored()).expect("states serialize"),
        )?;
        Ok(ApplyOutcome {
            seq,
            old_root: fr_hex::to_hex(&applied.witness.public.old_root),
            new_root: fr_hex::to_hex(&applied.witness.public.new_root),
        })
    }

    /// The witness of an applied batch.
    pub fn witness(&self, seq: u64) -> Result<BatchWitness, StateDirError> {
        let state = self.state()?;
        if seq >= state.next_seq {
            return Err(StateDirError::NoSuchBatch(seq));
        }
        let path = self.dir.join("witness").join(format!("{seq}.bin"));
        let bytes = fs::read(&path).map_err(io(format!("reading {}", path.display())))?;
        bincode::deserialize(&bytes).map_err(|e| StateDirError::Mismatch(format!("{} is corrupt: {e}", path.display())))
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateDirError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io(format!("creating {}", parent.display())))?;
    }
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes).map_err(io(format!("writing {}", tmp.display())))?;
    fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(io(format!("syncing {}", tmp.display())))?;
    fs::rename(&tmp, path).map_err(io(format!("renaming {}", tmp.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use statesync_circuits::{examples, transition::Batch};

    #[test]
    fn apply_persists_and_rejection_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = examples::chain();
        let sd = StateDir::open(dir.path(), &cfg).unwrap();
        let genesis_root = sd.state().unwrap().root();
        let bad = Batch::from_json(examples::BATCH_INVALID_JSON).unwrap();
        assert!(matches!(sd.apply(&bad), Err(StateDirError::Rejected(e)) if e.index == Some(1)));
        assert_eq!(sd.state().unwrap().root(), genesis_root);
        assert!(!dir.path().join("state.bin").exists());
        let out = sd.apply(&examples::batch_valid()).unwrap();
        assert_eq!(out.seq, 0);
        drop(sd);
        let sd = StateDir::open(dir.path(), &cfg).unwrap();
        let st = sd.state().unwrap();
        assert_eq!(st.next_seq, 1);
        assert_eq!(fr_hex::to_hex(&st.root()), out.new_root);
        assert_eq!(sd.witness(0).unwrap().public.new_root, st.root());
        assert!(matches!(sd.witness(1), Err(StateDirError::NoSuchBatch(1))));
        // replaying seq 0 is a sequence error
        assert!(matches!(sd.apply(&examples::batch_valid()), Err(StateDirError::Rejected(e)) if e.rule == "sequence"));
        drop(sd);
        let mut other = cfg.clone();
        other.chain_id = "other".into();
        assert!(matches!(StateDir::open(dir.path(), &other), Err(StateDirError::Mismatch(_))));
    }
}
