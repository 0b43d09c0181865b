//! The batch witness: everything a worker needs to prove a batch, without the
//! live chain state. Produced by [`crate::engine`], consumed by
//! [`crate::circuit`]; stored with the job.

use ethnum::I256;
use halo2_base::halo2_proofs::halo2curves::{bn256::Fr, ff::PrimeField};
use serde::{Deserialize, Serialize};

use crate::{
    config::Shape,
    state::{Account, MarketTable, OrderFill},
    transition::Encoded,
};

/// Values the circuit takes as witnesses and constrains (rather than derives),
/// kept here so tests can tamper with them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hints {
    /// Funding paid by account `a` per market when settled (12 decimals).
    pub funding_a: Vec<i128>,
    /// Funding paid by account `b` per market.
    pub funding_b: Vec<i128>,
    /// Scenario risk R of `a` before, `a` after, `b` before, `b` after.
    pub risk: [I256; 4],
}

/// One slot of the batch circuit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The transition (padding is [`Kind::Noop`](crate::transition::Kind::Noop)).
    pub transition: Encoded,
    /// Leaf of `a` before the step.
    pub a_leaf: Account,
    /// Siblings of `a` in the tree before the step.
    #[serde(with = "fr_vec")]
    pub a_path: Vec<Fr>,
    /// Leaf of `b` after `a` was written.
    pub b_leaf: Account,
    /// Siblings of `b` after `a` was written.
    #[serde(with = "fr_vec")]
    pub b_path: Vec<Fr>,
    /// The slot of `a`'s and of `b`'s orders tree that the step's orders
    /// fill in (slot 0 where the party fills none), before the fill.
    pub orders: [OrderSlot; 2],
    /// Constrained hints.
    pub hints: Hints,
}

/// A leaf of an account's orders tree and its siblings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSlot {
    /// The leaf.
    pub leaf: OrderFill,
    /// Its siblings, from the leaf level up.
    #[serde(with = "fr_vec")]
    pub path: Vec<Fr>,
}

/// Public inputs of a batch proof, in instance-column order.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicInputs {
    /// State root before the batch.
    #[serde(with = "fr_hex")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^0x[0-9a-fA-F]{64}$"))]
    pub old_root: Fr,
    /// State root after the batch.
    #[serde(with = "fr_hex")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^0x[0-9a-fA-F]{64}$"))]
    pub new_root: Fr,
    /// Poseidon chain over the encodings of the real transitions.
    #[serde(with = "fr_hex")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^0x[0-9a-fA-F]{64}$"))]
    pub commitment: Fr,
    /// Number of real (non-padding) transitions.
    pub transitions: u64,
    /// Number of liquidations.
    pub liquidations: u64,
    /// The chain tag ([`crate::config::ChainConfig::tag`]).
    #[serde(with = "fr_hex")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^0x[0-9a-fA-F]{64}$"))]
    pub chain_tag: Fr,
    /// The batch's sequence number.
    pub seq: u64,
}

/// Public inputs of a batch proof.
pub const PUBLIC_LEN: usize = 7;

impl PublicInputs {
    /// As field elements, in instance order.
    pub fn to_fields(&self) -> Vec<Fr> {
        vec![
            self.old_root,
            self.new_root,
            self.commitment,
            Fr::from(self.transitions),
            Fr::from(self.liquidations),
            self.chain_tag,
            Fr::from(self.seq),
        ]
    }

    /// From the [`PUBLIC_LEN`] field elements of [`PublicInputs::to_fields`]
    /// (counts and seq keep their low 64 bits; they never exceed them).
    pub fn from_fields(f: &[Fr]) -> Self {
        let count = |x: &Fr| u64::from_le_bytes(x.to_repr()[..8].try_into().expect("8 bytes"));
        PublicInputs {
            old_root: f[0],
            new_root: f[1],
            commitment: f[2],
            transitions: count(&f[3]),
            liquidations: count(&f[4]),
            chain_tag: f[5],
            seq: count(&f[6]),
        }
    }
}

/// A whole batch witness, padded to the shape's capacity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchWitness {
    /// Shape.
    pub shape: Shape,
    /// Market table before the batch.
    pub markets: MarketTable,
    /// Accounts root before the batch.
    #[serde(with = "fr_hex")]
    pub accounts_root: Fr,
    /// `capacity` steps.
    pub steps: Vec<Step>,
    /// Public inputs.
    pub public: PublicInputs,
}

/// Hex (big-endian, 0x-prefixed) serde for field elements.
pub mod fr_hex {
    use halo2_base::halo2_proofs::halo2curves::{bn256::Fr, ff::PrimeField};
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    /// `0x` + 64 hex digits, big-endian.
    pub fn to_hex(f: &Fr) -> String {
        let mut b = f.to_repr();
        b.reverse();
        format!("0x{}", hex::encode(b))
    }

    /// Parses [`to_hex`]'s output.
    pub fn from_hex(s: &str) -> Option<Fr> {
        let digits = s.strip_prefix("0x")?;
        let mut b: [u8; 32] = hex::decode(digits).ok()?.try_into().ok()?;
        b.reverse();
        Option::from(Fr::from_repr(b))
    }

    /// Serialize.
    pub fn serialize<S: Serializer>(f: &Fr, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_hex(f))
    }
    /// Deserialize.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Fr, D::Error> {
        let s = String::deserialize(d)?;
        from_hex(&s).ok_or_else(|| D::Error::custom("not a BN254 scalar in 0x-hex"))
    }
}

mod fr_vec {
    use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[Fr], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(super::fr_hex::to_hex))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Fr>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| super::fr_hex::from_hex(s).ok_or_else(|| D::Error::custom("not a BN254 scalar in 0x-hex")))
            .collect()
    }
}
