//! Host side of the element-wise kernels (cuda/poly.cu). Generic over
//! [`Device`]; all vectors are Fr in device layout.

use halo2curves::bn256::Fr;

use crate::device::{Arg, Buffer, Device, Launch};
use crate::registry::kernels;
use crate::repr::FieldRepr;
use crate::{KernelError, Result};

const BLOCK: u32 = 256;
/// Elements per thread of the batch inversion (one Fermat inversion each).
pub const INVERT_CHUNK: u32 = 64;

/// An element-wise binary operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
}

fn same_len<D: Device>(a: &Buffer<D, FieldRepr>, b: &Buffer<D, FieldRepr>) -> Result<u64> {
    if a.len() != b.len() {
        return Err(KernelError::InvalidInput(format!("lengths {} and {}", a.len(), b.len())));
    }
    Ok(a.len() as u64)
}

/// out = a op b, element by element (out may be a or b).
pub fn binary<D: Device>(
    dev: &D,
    op: BinaryOp,
    out: &Buffer<D, FieldRepr>,
    a: &Buffer<D, FieldRepr>,
    b: &Buffer<D, FieldRepr>,
) -> Result<()> {
    let n = same_len(a, b)?;
    same_len(out, a)?;
    let k = match op {
        BinaryOp::Add => kernels::POLY_ADD,
        BinaryOp::Sub => kernels::POLY_SUB,
        BinaryOp::Mul => kernels::POLY_MUL,
    };
    // SAFETY: (out, a, b, n) as poly.cu's element-wise kernels take them; all
    // three buffers hold n elements (checked above).
    unsafe { dev.launch(k, Launch::linear(n, BLOCK)?, &[out.arg(), a.arg(), b.arg(), Arg::U64(n)]) }
}

/// out = a * s (out may be a).
pub fn scale<D: Device>(dev: &D, out: &Buffer<D, FieldRepr>, a: &Buffer<D, FieldRepr>, s: &Fr) -> Result<()> {
    let n = same_len(out, a)?;
    // SAFETY: (out, a, s, n) as poly_scale takes them; both hold n elements.
    unsafe {
        dev.launch(
            kernels::POLY_SCALE,
            Launch::linear(n, BLOCK)?,
            &[out.arg(), a.arg(), Arg::Field(s.into()), Arg::U64(n)],
        )
    }
}

/// a *= s.
pub fn scale_in_place<D: Device>(dev: &D, a: &Buffer<D, FieldRepr>, s: &Fr) -> Result<()> {
    scale(dev, a, a, s)
}

/// a[k] *= g^(k mod n) over `batch` polynomials of n coefficients.
pub fn distribute_powers<D: Device>(dev: &D, a: &Buffer<D, FieldRepr>, g: &Fr, n: u64, batch: u32) -> Result<()> {
    if n.checked_mul(u64::from(batch)) != Some(a.len() as u64) {
        return Err(KernelError::InvalidInput(format!("{} elements for {batch} x {n}", a.len())));
    }
    // SAFETY: (a, g, n, batch) as poly_distribute_powers takes them; a holds
    // n * batch elements (checked above).
    unsafe {
        dev.launch(
            kernels::POLY_DISTRIBUTE_POWERS,
            Launch::linear(a.len() as u64, BLOCK)?,
            &[a.arg(), Arg::Field(g.into()), Arg::U64(n), Arg::U32(batch)],
        )
    }
}

/// out = a^-1 element-wise (zeros stay zero); out and a must be distinct.
pub fn batch_invert<D: Device>(dev: &D, out: &Buffer<D, FieldRepr>, a: &Buffer<D, FieldRepr>) -> Result<()> {
    if std::ptr::eq(out, a) {
        return Err(KernelError::InvalidInput("batch inversion needs distinct input and output buffers".into()));
    }
    let n = same_len(out, a)?;
    let threads = n.div_ceil(u64::from(INVERT_CHUNK));
    // SAFETY: (out, a, n, chunk) as poly_batch_invert takes them; both hold n
    // elements and are distinct allocations (two Buffers never overlap).
    unsafe {
        dev.launch(
            kernels::POLY_BATCH_INVERT,
            Launch::linear(threads, BLOCK)?,
            &[out.arg(), a.arg(), Arg::U64(n), Arg::U32(INVERT_CHUNK)],
        )
    }
}
