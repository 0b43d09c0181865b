//! EdDSA over Baby Jubjub with Poseidon: statesync's signatures (account
//! keys, orders, withdrawals, oracle prices), the scheme of Hermez, zkSync
//! Lite and Loopring, with statesync's own hash and key derivation.
//!
//! - Curve and base point: [`crate::babyjub`], `B8` of prime order `l`.
//! - Secret key: 32 bytes `k`. Secret scalar `s = SHA-512("statesync/eddsa/v1/secret" ‖ k) mod (l − 1) + 1`
//!   (never 0). Public key `A = s·B8`, 32 bytes compressed ([`Point::compress`]).
//! - Messages are one field element `m`: callers hash what they sign with
//!   Poseidon under a domain of their own (an order is never a withdrawal).
//! - Nonce: `r = SHA-512("statesync/eddsa/v1/nonce" ‖ k ‖ m) mod l`,
//!   deterministic as in RFC 8032, so no signer needs a random source;
//!   `R = r·B8`.
//! - Challenge: `h = Poseidon(Signature; R.x, R.y, A.x, A.y, m)` ([`challenge`]).
//! - `S = (r + 8·h·s) mod l`; the signature is `(R, S)`, 64 bytes.
//! - Verification ([`PublicKey::verify`]), natively and in the circuit
//!   ([`chip`]) alike: `S < l`, `8·A` is not the identity (a key of small
//!   order would accept anything), and `S·B8 = R + h·(8·A)`. Multiplying
//!   `A` by the cofactor makes any point of the curve usable as a key
//!   without a subgroup check; `R` is then forced into the subgroup by the
//!   equation itself.

pub mod chip;

use halo2_base::halo2_proofs::halo2curves::bn256::Fr;
use num_bigint::BigUint;
use serde::{de::Error as _, Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha512};

use crate::{
    babyjub::{self, Extended, Point},
    poseidon::{self, Domain},
};

/// A secret key: 32 bytes. Its `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// A public key: a point of the curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(pub Point);

/// A signature `(R, S)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// `R = r·B8`.
    pub r: Point,
    /// `S`, below `l` when well formed.
    pub s: BigUint,
}

fn sha512_mod(parts: &[&[u8]], modulus: &BigUint) -> BigUint {
    let mut h = Sha512::new();
    for p in parts {
        h.update(p);
    }
    BigUint::from_bytes_le(&h.finalize()) % modulus
}

/// The challenge `h` of a signature by `a` with nonce point `r` over `m`.
pub fn challenge(r: &Point, a: &Point, m: Fr) -> Fr {
    poseidon::hash(Domain::Signature, &[r.x(), r.y(), a.x(), a.y(), m])
}

impl SecretKey {
    /// The key of these bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        SecretKey(bytes)
    }

    /// A fresh key from `rng` (the operating system's in the CLI).
    pub fn random(rng: &mut impl rand::RngCore) -> Self {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        SecretKey(b)
    }

    /// The key's bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    fn scalar(&self) -> BigUint {
        let l = babyjub::subgroup_order();
        sha512_mod(&[b"statesync/eddsa/v1/secret", &self.0], &(l - 1u8)) + 1u8
    }

    /// The public key `s·B8`.
    pub fn public(&self) -> PublicKey {
        PublicKey(babyjub::mul_base8(&self.scalar()).to_affine())
    }

    /// Signs `m` (in variable time: [`babyjub::Extended`]).
    pub fn sign(&self, m: Fr) -> Signature {
        let l = babyjub::subgroup_order();
        let r = sha512_mod(&[b"statesync/eddsa/v1/nonce", &self.0, &babyjub::int_of(&m).to_bytes_le()], l);
        let big_r = babyjub::mul_base8(&r).to_affine();
        let a = self.public().0;
        let h = babyjub::int_of(&challenge(&big_r, &a, m));
        let s = (r + h * 8u8 * self.scalar()) % l;
        Signature { r: big_r, s }
    }
}

impl PublicKey {
    /// Whether the key can sign: a point of the prime-order subgroup other
    /// than the identity, as every [`SecretKey::public`] is. Other points
    /// are refused as account keys (no signature would verify, or any
    /// would).
    pub fn usable(&self) -> bool {
        self.0 != Point::IDENTITY && self.0.in_subgroup()
    }

    /// Whether `sig` is this key's signature of `m` (module docs).
    pub fn verify(&self, m: Fr, sig: &Signature) -> bool {
        let a8 = Extended::from(self.0).mul_cofactor();
        if sig.s >= *babyjub::subgroup_order() || a8.is_identity() {
            return false;
        }
        let h = babyjub::int_of(&challenge(&sig.r, &self.0, m));
        babyjub::mul_base8(&sig.s) == Extended::from(sig.r).add(&a8.mul(&h))
    }

    /// The 32-byte compressed form.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.compress()
    }

    /// The key of 32 compressed bytes, if they are a point.
    pub fn from_bytes(b: &[u8; 32]) -> Option<Self> {
        Point::decompress(b).map(PublicKey)
    }
}

impl Signature {
    /// 64 bytes: `R` compressed, then `S` little-endian.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&self.r.compress());
        let s = self.s.to_bytes_le();
        out[32..32 + s.len().min(32)].copy_from_slice(&s[..s.len().min(32)]);
        out
    }

    /// The signature of [`Signature::to_bytes`]' form, if `R` is a point.
    pub fn from_bytes(b: &[u8; 64]) -> Option<Self> {
        let r = Point::decompress(b[..32].try_into().expect("32 bytes"))?;
        Some(Signature { r, s: BigUint::from_bytes_le(&b[32..]) })
    }
}

fn parse_hex<const N: usize>(s: &str) -> Result<[u8; N], String> {
    let digits = s.strip_prefix("0x").unwrap_or(s);
    let bytes = hex::decode(digits).map_err(|e| format!("not hex: {e}"))?;
    bytes.try_into().map_err(|b: Vec<u8>| format!("{} bytes where {N} are expected", b.len()))
}

macro_rules! hex_serde {
    ($t:ty, $n:expr, $what:expr) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_string())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                let bytes = parse_hex::<$n>(&text).map_err(|e| D::Error::custom(format!("{}: {e}", $what)))?;
                <$t>::from_bytes(&bytes).ok_or_else(|| D::Error::custom(format!("{}: not a point of the curve", $what)))
            }
        }
        impl std::fmt::Display for $t {
            /// 0x-hex, as serialized.
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "0x{}", hex::encode(self.to_bytes()))
            }
        }
        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
                let bytes = parse_hex::<$n>(text).map_err(|e| format!("{}: {e}", $what))?;
                <$t>::from_bytes(&bytes).ok_or_else(|| format!("{}: not a point of the curve", $what))
            }
        }
    };
}

hex_serde!(PublicKey, 32, "public key");
hex_serde!(Signature, 64, "signature");

impl std::str::FromStr for SecretKey {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        parse_hex::<32>(text).map(SecretKey).map_err(|e| format!("secret key: {e}"))
    }
}

impl std::fmt::Display for SecretKey {
    /// The secret as hex: only for the one place a key is handed out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

#[cfg(test)]
mod tests {
    use halo2_base::halo2_proofs::arithmetic::Field;
    use proptest::prelude::*;

    use super::*;

    fn key(n: u8) -> SecretKey {
        SecretKey::from_bytes([n; 32])
    }

    #[test]
    fn signatures_verify_and_bind_key_and_message() {
        let (k, m) = (key(7), Fr::from(42));
        let sig = k.sign(m);
        assert!(k.public().verify(m, &sig));
        assert_eq!(k.sign(m), sig, "deterministic nonces");
        assert!(!k.public().verify(Fr::from(43), &sig), "another message");
        assert!(!key(8).public().verify(m, &sig), "another key");
        let mut forged = sig.clone();
        forged.s += 1u8;
        assert!(!k.public().verify(m, &forged), "another S");
        let mut forged = sig.clone();
        forged.r = forged.r.add(&babyjub::base8());
        assert!(!k.public().verify(m, &forged), "another R");
        let mut high = sig.clone();
        high.s += babyjub::subgroup_order();
        assert!(!k.public().verify(m, &high), "S >= l is refused (no malleability)");
        assert!(k.public().0.in_subgroup());
    }

    #[test]
    fn keys_of_small_order_accept_nothing() {
        // with A = (0, 1), S·B8 = R holds for any S: the identity is refused
        let s = BigUint::from(5u8);
        let sig = Signature { r: babyjub::base8().mul(&s), s };
        assert!(!PublicKey(Point::IDENTITY).verify(Fr::ONE, &sig));
        let order2 = Point::new(Fr::ZERO, -Fr::ONE).expect("(0, -1) is on the curve");
        assert!(!PublicKey(order2).verify(Fr::ONE, &sig));
    }

    #[test]
    fn keys_and_signatures_round_trip_as_hex() {
        let k = key(3);
        let sig = k.sign(Fr::from(9));
        let json = serde_json::to_string(&(k.public(), &sig)).unwrap();
        let (pk, back): (PublicKey, Signature) = serde_json::from_str(&json).unwrap();
        assert_eq!((pk, &back), (k.public(), &sig));
        assert_eq!(k.to_string().parse::<SecretKey>().unwrap(), k);
        assert_eq!(format!("{k:?}"), "SecretKey(..)");
        assert!(serde_json::from_str::<PublicKey>("\"0x12\"").unwrap_err().to_string().contains("1 bytes"));
        assert!(serde_json::from_str::<PublicKey>(&format!("\"0x{}\"", "ff".repeat(32))).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn random_keys_sign_random_messages(seed in any::<[u8; 32]>(), m in any::<u64>()) {
            let k = SecretKey::from_bytes(seed);
            let sig = k.sign(Fr::from(m));
            prop_assert!(k.public().verify(Fr::from(m), &sig));
            prop_assert!(!k.public().verify(Fr::from(m) + Fr::ONE, &sig));
        }
    }
}
