//! Errors of the circuits crate.

use serde::{Deserialize, Serialize};

/// A chain config that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Malformed JSON (with serde's line and column).
    #[error("chain config is not valid JSON: {0}")]
    Json(String),
    /// Unsupported format version.
    #[error("unsupported chain config version {0} (this build reads version 1)")]
    Version(u32),
    /// A chain id outside its charset or length
    /// ([`crate::config::check_chain_id`]).
    #[error("invalid chain id: {0}")]
    ChainId(String),
    /// Shape limits.
    #[error("invalid shape: {0}")]
    Shape(String),
    /// A value outside its documented bound.
    #[error("value out of bounds: {0}")]
    Bounds(String),
}

/// Why a batch was rejected: the first broken rule. The chain state is unchanged.
///
/// Serialized as `{index, type, rule, message}`; `index` is the position of the
/// offending transition in the batch (null for batch-level errors, whose `type`
/// is `"batch"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("transition {index:?} ({kind}): {rule}: {message}")]
pub struct BatchError {
    /// Index of the transition in the batch.
    pub index: Option<usize>,
    /// Transition type, e.g. `"withdraw"`, or `"batch"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Machine-readable rule name, e.g. `"initial_margin"`.
    pub rule: String,
    /// Human-readable explanation.
    pub message: String,
}

impl BatchError {
    /// A batch-level error.
    pub fn batch(rule: &str, message: impl Into<String>) -> Self {
        BatchError { index: None, kind: "batch".into(), rule: rule.into(), message: message.into() }
    }
}
