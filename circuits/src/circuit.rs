//! The batch circuit.
