//! `statesync account` and `statesync sign`: the wallet side of
//! authorization. An account's secret key lives in a file of its own (hex,
//! created with mode 0600); `sign` prints the signed transition as the JSON
//! object a batch carries.

use std::{fs, io::Write, path::Path};

use clap::Subcommand;
use rand::rngs::OsRng;
use statesync_circuits::{
    eddsa::{PublicKey, SecretKey},
    fixed::Fx6,
    transition::Transition,
};

use crate::cli::{read_chain, Failure};

/// `statesync account` actions.
#[derive(Debug, Subcommand)]
pub enum AccountAction {
    /// Create a secret key in a new file (mode 0600) and print its public
    /// key, the value a chain's genesis, a first deposit or a set_key gives
    /// an account.
    New {
        /// The file to create (never overwritten).
        #[arg(long)]
        key_file: std::path::PathBuf,
    },
    /// Print the public key of a secret key file.
    Public {
        /// The secret key file.
        #[arg(long)]
        key_file: std::path::PathBuf,
    },
}

/// `statesync sign` transitions.
#[derive(Debug, Subcommand)]
pub enum SignAction {
    /// A withdrawal.
    Withdraw {
        /// Account id.
        #[arg(long)]
        account: u64,
        /// Amount (decimal).
        #[arg(long)]
        amount: Fx6,
        /// The account's nonce: signed transitions it has made so far.
        #[arg(long)]
        nonce: u64,
    },
    /// A change of the account's key (signed with the current one).
    SetKey {
        /// Account id.
        #[arg(long)]
        account: u64,
        /// The new public key (hex, as `statesync account new` prints it).
        #[arg(long)]
        new_key: PublicKey,
        /// The account's nonce.
        #[arg(long)]
        nonce: u64,
    },
}

fn read_key(path: &Path) -> Result<SecretKey, Failure> {
    let text = fs::read_to_string(path).map_err(|e| Failure::input(format!("reading {}: {e}", path.display())))?;
    text.trim().parse().map_err(|e| Failure::input(format!("{}: {e}", path.display())))
}

fn print_public(key: &PublicKey) {
    println!("{}", serde_json::json!({ "public_key": key }));
}

/// Runs `statesync account`.
pub fn account(action: AccountAction) -> Result<(), Failure> {
    match action {
        AccountAction::New { key_file } => {
            let key = SecretKey::random(&mut OsRng);
            let mut opts = fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f =
                opts.open(&key_file).map_err(|e| Failure::input(format!("creating {}: {e}", key_file.display())))?;
            writeln!(f, "{key}").map_err(|e| Failure::failed(format!("writing {}: {e}", key_file.display())))?;
            print_public(&key.public());
            Ok(())
        }
        AccountAction::Public { key_file } => {
            print_public(&read_key(&key_file)?.public());
            Ok(())
        }
    }
}

/// Runs `statesync sign`: prints the signed transition (JSON).
pub fn sign(chain: &Path, key_file: &Path, action: SignAction) -> Result<(), Failure> {
    let tag = read_chain(chain)?.tag();
    let key = read_key(key_file)?;
    let t = match action {
        SignAction::Withdraw { account, amount, nonce } => {
            Transition::Withdraw { account, amount, nonce, signature: None }
        }
        SignAction::SetKey { account, new_key, nonce } => {
            Transition::SetKey { account, key: new_key, nonce, signature: None }
        }
    };
    println!("{}", serde_json::to_string(&t.signed(&key, tag)).expect("transitions serialize"));
    Ok(())
}
