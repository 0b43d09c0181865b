//! Host side of the Pippenger MSM (kernels in cuda/msm.cu): buffers, window
//! size, launch order. Generic over [`Device`].

use halo2curves::bn256::{Fr, G1Affine, G1};

use crate::device::{Arg, Buffer, Device, Launch};
use crate::registry::{Kernel, MSM};
use crate::repr::{self, AffineRepr, FieldRepr, JacobianRepr};
use crate::{KernelError, Result};

const DIGITS: Kernel = Kernel::new(&MSM, "msm_digits");
const SCAN: Kernel = Kernel::new(&MSM, "scan_u32");
const SCATTER: Kernel = Kernel::new(&MSM, "msm_scatter");
const ACCUMULATE: Kernel = Kernel::new(&MSM, "msm_accumulate");
const REDUCE: Kernel = Kernel::new(&MSM, "msm_reduce");
const COMBINE: Kernel = Kernel::new(&MSM, "msm_combine");

/// Threads per block of the scan and reduce kernels (SS_SCAN_THREADS,
/// SS_REDUCE_THREADS in msm.cu).
const SCAN_THREADS: u32 = 256;
const REDUCE_THREADS: u32 = 128;
/// Threads per block of the one-thread-per-item kernels.
const BLOCK: u32 = 256;
/// Bits of an Fr scalar (r < 2^254).
const SCALAR_BITS: u32 = 254;
/// Largest window: 2^16 buckets per window.
pub const MAX_WINDOW_BITS: u32 = 16;

/// The window size for `n` points when the caller does not choose one:
/// about log2(n) - 3 bits, between 3 and 16.
pub fn default_window_bits(n: usize) -> u32 {
    let log = usize::BITS - n.max(1).leading_zeros();
    log.saturating_sub(3).clamp(3, MAX_WINDOW_BITS)
}

/// `sum_i scalars[i] * bases[i]` on `dev`; `window_bits` None picks
/// [`default_window_bits`].
pub fn msm<D: Device>(dev: &D, scalars: &[Fr], bases: &[G1Affine], window_bits: Option<u32>) -> Result<G1> {
    if scalars.len() != bases.len() {
        return Err(KernelError::InvalidInput(format!("{} scalars for {} bases", scalars.len(), bases.len())));
    }
    if scalars.is_empty() {
        return Ok(G1::default());
    }
    let s = dev.upload(&repr::frs(scalars))?;
    let p = dev.upload(&repr::affines(bases))?;
    let c = window_bits.unwrap_or_else(|| default_window_bits(scalars.len()));
    msm_buffers(dev, &s, &p, c)?.to_curve()
}

/// The MSM over scalars and bases already on the device (equal lengths),
/// with windows of `c` bits; the result in Jacobian coordinates.
pub fn msm_buffers<D: Device>(
    dev: &D,
    scalars: &Buffer<D, FieldRepr>,
    bases: &Buffer<D, AffineRepr>,
    c: u32,
) -> Result<JacobianRepr> {
    if scalars.len() != bases.len() {
        return Err(KernelError::InvalidInput(format!("{} scalars for {} bases", scalars.len(), bases.len())));
    }
    if !(1..=MAX_WINDOW_BITS).contains(&c) {
        return Err(KernelError::InvalidInput(format!("window of {c} bits (1..={MAX_WINDOW_BITS})")));
    }
    let n = u32::try_from(scalars.len())
        .map_err(|_| KernelError::InvalidInput(format!("{} points exceed one MSM launch", scalars.len())))?;
    if n == 0 {
        return Ok(JacobianRepr::default());
    }
    let windows = SCALAR_BITS.div_ceil(c);
    let buckets = (windows as usize) << c;
    let slots = windows as usize * n as usize;
    // Bucket offsets and sorted positions are u32 on the device.
    if slots > u32::MAX as usize || buckets >= u32::MAX as usize {
        return Err(KernelError::InvalidInput(format!(
            "{n} points with {c}-bit windows exceed one MSM launch; split the MSM"
        )));
    }

    let digits = dev.zeros::<u32>(slots)?;
    let counts = dev.zeros::<u32>(buckets)?;
    let offsets = dev.zeros::<u32>(buckets + 1)?;
    let cursor = dev.zeros::<u32>(buckets)?;
    let sorted = dev.zeros::<u32>(slots)?;
    let sums = dev.zeros::<JacobianRepr>(buckets)?;
    let window_sums = dev.zeros::<JacobianRepr>(windows as usize)?;
    let result = dev.zeros::<JacobianRepr>(1)?;
    let (nn, cc, ww) = (Arg::U32(n), Arg::U32(c), Arg::U32(windows));

    // SAFETY: arguments in each kernel's parameter order and types (msm.cu);
    // buffer sizes: digits/sorted windows*n, counts/cursor/sums windows<<c,
    // offsets one more, window_sums windows, result 1, as allocated above;
    // positions fit u32 (checked above).
    unsafe {
        dev.launch(
            DIGITS,
            Launch::linear(u64::from(n), BLOCK)?,
            &[scalars.arg(), nn, cc, ww, digits.arg(), counts.arg()],
        )?;
        dev.launch(
            SCAN,
            Launch::blocks(1, SCAN_THREADS),
            &[counts.arg(), Arg::U32(buckets as u32), offsets.arg(), cursor.arg()],
        )?;
        dev.launch(
            SCATTER,
            Launch::linear(slots as u64, BLOCK)?,
            &[digits.arg(), nn, cc, ww, cursor.arg(), sorted.arg()],
        )?;
        dev.launch(
            ACCUMULATE,
            Launch::linear(buckets as u64, BLOCK)?,
            &[bases.arg(), sorted.arg(), offsets.arg(), cc, ww, sums.arg()],
        )?;
        dev.launch(REDUCE, Launch::blocks(windows, REDUCE_THREADS), &[sums.arg(), cc, window_sums.arg()])?;
        dev.launch(COMBINE, Launch::blocks(1, 1), &[window_sums.arg(), cc, ww, result.arg()])?;
    }
    Ok(dev.download(&result)?[0])
}
