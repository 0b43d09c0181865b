//! `statesync account` and `statesync sign`: the wallet side of
//! authorization. An account's secret key lives in a file of its own (hex,
//! created with mode 0600); `sign` prints the signed transition, the signed
//! order or the signed oracle quote, as the JSON object a batch carries.

use std::{fs, io::Write, path::Path};

use clap::Subcommand;
use rand::rngs::OsRng;
use statesync_circuits::{
    config::ChainConfig,
    eddsa::{PublicKey, SecretKey},
    fixed::{Fx12, Fx6},
    transition::{Kind, MarksQuote, Order, PriceQuote, Transition},
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
    /// An order: prints the order object a `trade`'s `taker_order` or
    /// `maker_order`, an `option_trade`'s, or a `liquidate`'s
    /// `liquidator_order` carries, signed.
    Order {
        /// What fills the order: trade, option_trade or liquidate.
        #[arg(long, value_parser = ["trade", "option_trade", "liquidate"])]
        kind: String,
        /// Account id (the order's owner: the key's account).
        #[arg(long)]
        account: u64,
        /// Market id (trade, liquidate) or series id (option_trade).
        #[arg(long)]
        asset: u32,
        /// Size limit from the account's side: positive buys, negative sells (decimal).
        #[arg(long, allow_hyphen_values = true)]
        size: Fx6,
        /// Price limit: a buy fills at or below it, a sell at or above it (decimal).
        #[arg(long)]
        price: Fx6,
        /// The most the order pays in fees over all its fills (decimal).
        #[arg(long, default_value = "0")]
        max_fee: Fx6,
        /// The last batch (seq) in which the order may fill.
        #[arg(long)]
        expiry: u64,
        /// The order's id: slot id mod 64 of the account's orders tree; a
        /// higher id in the same slot ends the earlier order.
        #[arg(long)]
        id: u64,
    },
    /// An oracle's quote: prints the quote object an `oracle_price`'s or an
    /// `option_marks`' `quotes` carries, signed with the oracle's key.
    Oracle {
        /// What the quote updates: oracle_price or option_marks.
        #[arg(long, value_parser = ["oracle_price", "option_marks"])]
        kind: String,
        /// The oracle: its index in the chain's `oracles.keys`.
        #[arg(long)]
        oracle: u32,
        /// Market id (oracle_price) or series id (option_marks).
        #[arg(long)]
        asset: u32,
        /// The quote's timestamp (every update of a market or series must
        /// be later than its previous one).
        #[arg(long)]
        timestamp: u64,
        /// Price (oracle_price) or premium (option_marks), decimal.
        #[arg(long)]
        price: Fx6,
        /// Delta (option_marks).
        #[arg(long, allow_hyphen_values = true, default_value = "0")]
        delta: Fx6,
        /// Gamma, 12 decimals (option_marks).
        #[arg(long, allow_hyphen_values = true, default_value = "0")]
        gamma: Fx12,
        /// Vega (option_marks).
        #[arg(long, allow_hyphen_values = true, default_value = "0")]
        vega: Fx6,
    },
    /// A transition's JSON (FILE, or standard input without one or with
    /// `-`), printed back with the signatures of one signer made: with
    /// `--account N`, account N's (its withdrawal or key change, its orders
    /// in a trade, option trade or liquidation); with `--oracle I`, oracle
    /// I's quotes (the key must be that oracle's in the chain config).
    Transition {
        /// The account whose signatures to make.
        #[arg(long, conflicts_with = "oracle", required_unless_present = "oracle")]
        account: Option<u64>,
        /// The oracle whose quotes to sign.
        #[arg(long)]
        oracle: Option<u32>,
        /// The transition (JSON).
        file: Option<std::path::PathBuf>,
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

/// Refuses a key that is not oracle `oracle`'s in the chain config.
fn oracle_key(cfg: &ChainConfig, key_file: &Path, key: &SecretKey, oracle: u32) -> Result<(), Failure> {
    if cfg.oracles.keys.get(oracle as usize) == Some(&key.public()) {
        Ok(())
    } else {
        Err(Failure::input(format!(
            "the key in {} is not oracle {oracle}'s key in the chain config",
            key_file.display()
        )))
    }
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

/// Runs `statesync sign`: prints the signed transition or order (JSON).
pub fn sign(chain: &Path, key_file: &Path, action: SignAction) -> Result<(), Failure> {
    let cfg = read_chain(chain)?;
    let tag = cfg.tag();
    let key = read_key(key_file)?;
    let t = match action {
        SignAction::Order { kind, account, asset, size, price, max_fee, expiry, id } => {
            let kind = match kind.as_str() {
                "trade" => Kind::Trade,
                "option_trade" => Kind::OptionTrade,
                _ => Kind::Liquidate,
            };
            let order = Order::new(size, price, max_fee, expiry, id).signed(&key, tag, kind, account, asset);
            println!("{}", serde_json::to_string(&order).expect("orders serialize"));
            return Ok(());
        }
        SignAction::Transition { account, oracle, file } => {
            let text = match file.as_deref() {
                Some(path) if path != Path::new("-") => {
                    fs::read_to_string(path).map_err(|e| Failure::input(format!("reading {}: {e}", path.display())))?
                }
                _ => std::io::read_to_string(std::io::stdin())
                    .map_err(|e| Failure::input(format!("reading standard input: {e}")))?,
            };
            let t: Transition =
                serde_json::from_str(&text).map_err(|e| Failure::input(format!("not a transition: {e}")))?;
            let e = t.encode();
            // the signing below decodes this encoding again: refuse here
            // what it could not decode
            e.decode().map_err(|err| Failure::input(err.to_string()))?;
            let mut made = (0..2).filter(|p| e.signer(*p) && Some(e.account(*p)) == account).count();
            if let Some(oracle) = oracle {
                oracle_key(&cfg, key_file, &key, oracle)?;
                made += e.quotes.iter().filter(|q| q.oracle == oracle).count();
            }
            if made == 0 {
                return Err(Failure::input("the signer signs nothing in this transition"));
            }
            let mine = |signs: bool| signs.then(|| key.clone());
            let t = t.signed_by(|a| mine(Some(a) == account), tag).quotes_signed_by(|o| mine(Some(o) == oracle), tag);
            println!("{}", serde_json::to_string(&t).expect("transitions serialize"));
            return Ok(());
        }
        SignAction::Oracle { kind, oracle, asset, timestamp, price, delta, gamma, vega } => {
            oracle_key(&cfg, key_file, &key, oracle)?;
            let quote = if kind == "oracle_price" {
                let plain = Fx6::ZERO;
                if (delta, gamma.raw(), vega) != (plain, 0, plain) {
                    return Err(Failure::input("--delta, --gamma and --vega are for option_marks"));
                }
                serde_json::to_string(&PriceQuote::signed(&key, tag, oracle, asset, timestamp, price))
            } else {
                let values = [price.raw(), delta.raw(), gamma.raw(), vega.raw()];
                serde_json::to_string(&MarksQuote::signed(&key, tag, oracle, asset, timestamp, values))
            };
            println!("{}", quote.expect("quotes serialize"));
            return Ok(());
        }
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
