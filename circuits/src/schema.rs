//! JSON Schemas of the wire types whose serde form is written by hand
//! (feature `openapi`): decimals, keys and signatures. The derived types
//! (chain config, batch, transitions, public inputs) reference them, and the
//! API's OpenAPI document is generated from both.

use std::borrow::Cow;

use utoipa::{
    openapi::{
        schema::{ObjectBuilder, OneOfBuilder, Schema, Type},
        RefOr,
    },
    PartialSchema, ToSchema,
};

use crate::{
    eddsa::{PublicKey, Signature},
    fixed::Fixed,
};

/// What [`Fixed<D>`]'s `FromStr` reads: an optional sign, at most 39 integer
/// digits (every `i128` reads back), at most `D` decimals, at least one digit.
fn decimal_pattern(d: u32) -> String {
    format!(r"^[-+]?([0-9]{{1,39}}(\.[0-9]{{0,{d}}})?|\.[0-9]{{1,{d}}})$")
}

impl<const D: u32> PartialSchema for Fixed<D> {
    fn schema() -> RefOr<Schema> {
        let text = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(decimal_pattern(D)))
            .description(Some(format!("a decimal string with at most {D} decimals, e.g. \"64250.25\"")));
        let units = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Int64)))
            .description(Some("whole units".to_string()));
        OneOfBuilder::new()
            .item(text)
            .item(units)
            .description(Some(format!(
                "A fixed-point number with {D} decimals: a decimal string (never rounded: more than {D} decimals is \
                 an error) or a JSON integer of whole units. Each field's bound is checked on use."
            )))
            .into()
    }
}

impl<const D: u32> ToSchema for Fixed<D> {
    fn name() -> Cow<'static, str> {
        Cow::Owned(format!("Decimal{D}"))
    }
}

/// A `0x`-optional hex string of `bytes` bytes.
fn hex_bytes(bytes: usize, what: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(format!("^(0x)?[0-9a-fA-F]{{{}}}$", 2 * bytes)))
        .description(Some(what.to_string()))
        .into()
}

impl PartialSchema for PublicKey {
    fn schema() -> RefOr<Schema> {
        hex_bytes(32, "A Baby Jubjub public key: its compressed point, 32 bytes in hex (0x optional)")
    }
}

impl ToSchema for PublicKey {}

impl PartialSchema for Signature {
    fn schema() -> RefOr<Schema> {
        hex_bytes(64, "An EdDSA signature: R compressed, then S little-endian; 64 bytes in hex (0x optional)")
    }
}

impl ToSchema for Signature {}
