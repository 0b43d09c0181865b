//! Host side of the Pippenger MSM (kernels in cuda/msm.cu): buffers, window
//! size, launch order. Generic over [`Device`].

use halo2curves::bn256::{Fr, G1Affine, G1};
use halo2curves::ff::PrimeField;

use crate::device::{Arg, Buffer, Device, Launch};
use crate::registry::{constants, kernels};
use crate::repr::{self, AffineRepr, FieldRepr, JacobianRepr};
use crate::{KernelError, Result};

/// Threads per block of the scan and reduce kernels (the sources' own).
const SCAN_THREADS: u32 = constants::SCAN_THREADS;
const REDUCE_THREADS: u32 = constants::REDUCE_THREADS;
/// Threads per block of the one-thread-per-item kernels.
const BLOCK: u32 = 256;
/// Blocks of the window reduction, at least: windows are split into
/// segments of their buckets until there are this many (two per SM of an
/// H100/H200).
const REDUCE_BLOCKS: u32 = 264;
/// Bits of an Fr scalar (r < 2^254).
const SCALAR_BITS: u32 = 254;
/// Most points, or partial sums, one thread adds (SS_CHUNK in msm.cuh).
pub const CHUNK: usize = constants::CHUNK as usize;
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
    let layout = Layout::new(n as usize, c);
    let (windows, buckets, slots) = (layout.windows, layout.buckets, layout.slots);
    // Bucket offsets and sorted positions are u32 on the device; bit 31 of
    // a sorted entry is the digit's sign.
    if n >= 1 << 31 || slots > u32::MAX as usize || buckets >= u32::MAX as usize {
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
    let segments = layout.segments();
    let window_shares = dev.zeros::<JacobianRepr>((windows * segments) as usize)?;
    let result = dev.zeros::<JacobianRepr>(1)?;
    let (nn, cc, ww, bb) = (Arg::U32(n), Arg::U32(c), Arg::U32(windows), Arg::U32(buckets as u32));
    let ss = Arg::U32(segments);

    // Chunk counts and their offsets for entries grouped by bucket.
    let starts_of = |of: &Buffer<D, u32>| -> Result<Buffer<D, u32>> {
        let chunks = dev.zeros::<u32>(buckets)?;
        let starts = dev.zeros::<u32>(buckets + 1)?;
        // SAFETY: (offsets, buckets, chunks) and (counts, len, offsets,
        // cursor) as msm_chunks and scan_u32 take them; `of` and `starts`
        // hold buckets + 1 entries, `chunks` and `cursor` buckets.
        unsafe {
            dev.launch(kernels::MSM_CHUNKS, Launch::linear(buckets as u64, BLOCK)?, &[of.arg(), bb, chunks.arg()])?;
            dev.launch(
                kernels::SCAN_U32,
                Launch::blocks(1, SCAN_THREADS),
                &[chunks.arg(), bb, starts.arg(), cursor.arg()],
            )?;
        }
        Ok(starts)
    };

    // SAFETY: arguments in each kernel's parameter order and types (msm.cu);
    // buffer sizes: digits/sorted windows*n, counts/cursor/sums `buckets`,
    // offsets and chunk starts one more, partials at least the chunks their
    // starts count (bounded by `Layout::chunks`), window_shares windows *
    // segments, result 1, as allocated; positions fit u32 (checked above).
    unsafe {
        dev.launch(
            kernels::MSM_DIGITS,
            Launch::linear(u64::from(n), BLOCK)?,
            &[scalars.arg(), nn, cc, ww, digits.arg(), counts.arg()],
        )?;
        dev.launch(
            kernels::SCAN_U32,
            Launch::blocks(1, SCAN_THREADS),
            &[counts.arg(), bb, offsets.arg(), cursor.arg()],
        )?;
        dev.launch(
            kernels::MSM_SCATTER,
            Launch::linear(slots as u64, BLOCK)?,
            &[digits.arg(), nn, cc, ww, cursor.arg(), sorted.arg()],
        )?;
        let mut starts = starts_of(&offsets)?;
        let mut most = layout.chunks(slots);
        let mut partials = dev.zeros::<JacobianRepr>(most)?;
        dev.launch(
            kernels::MSM_ACCUMULATE,
            Launch::linear(most as u64, BLOCK)?,
            &[bases.arg(), sorted.arg(), offsets.arg(), starts.arg(), bb, Arg::U32(most as u32), partials.arg()],
        )?;
        for _ in 0..layout.merge_rounds() {
            let next = starts_of(&starts)?;
            let next_most = layout.chunks(most);
            let merged = dev.zeros::<JacobianRepr>(next_most)?;
            dev.launch(
                kernels::MSM_MERGE,
                Launch::linear(next_most as u64, BLOCK)?,
                &[partials.arg(), starts.arg(), next.arg(), bb, Arg::U32(next_most as u32), merged.arg()],
            )?;
            (starts, most, partials) = (next, next_most, merged);
        }
        dev.launch(
            kernels::MSM_GATHER,
            Launch::linear(buckets as u64, BLOCK)?,
            &[partials.arg(), starts.arg(), bb, sums.arg()],
        )?;
        dev.launch(
            kernels::MSM_REDUCE,
            Launch::blocks(windows * segments, REDUCE_THREADS),
            &[sums.arg(), cc, ss, window_shares.arg()],
        )?;
        dev.launch(kernels::MSM_COMBINE, Launch::blocks(1, 1), &[window_shares.arg(), cc, ww, ss, result.arg()])?;
    }
    Ok(dev.download(&result)?[0])
}

/// The shape of one MSM of `n` points with `c`-bit signed windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Points.
    pub n: usize,
    /// Window bits.
    pub c: u32,
    /// Windows: the 254 bits' and one more for the last carry.
    pub windows: u32,
    /// Buckets, `2^(c-1) + 1` per window (index 0 unused).
    pub buckets: usize,
    /// (window, point) pairs.
    pub slots: usize,
}

impl Layout {
    /// The layout of `n` points in `c`-bit windows (1..=16).
    pub fn new(n: usize, c: u32) -> Self {
        let windows = SCALAR_BITS.div_ceil(c) + 1;
        let buckets = windows as usize * ((1usize << (c - 1)) + 1);
        Layout { n, c, windows, buckets, slots: windows as usize * n }
    }

    /// An upper bound on the chunks of at most [`CHUNK`] that `entries`
    /// entries grouped by bucket make: one partial chunk per bucket at most.
    pub fn chunks(&self, entries: usize) -> usize {
        (entries.div_ceil(CHUNK) + self.buckets).min(entries.max(1))
    }

    /// Blocks per window of the reduction: enough for [`REDUCE_BLOCKS`] in
    /// all, no more than a window has buckets.
    pub fn segments(&self) -> u32 {
        REDUCE_BLOCKS.div_ceil(self.windows).clamp(1, 1 << (self.c - 1))
    }

    /// Merge rounds until every bucket has one partial sum: a bucket holds
    /// at most `n` entries (one per point), each round divides its partial
    /// sums by [`CHUNK`].
    pub fn merge_rounds(&self) -> u32 {
        let mut per_bucket = self.n.div_ceil(CHUNK);
        let mut rounds = 0;
        while per_bucket > 1 {
            per_bucket = per_bucket.div_ceil(CHUNK);
            rounds += 1;
        }
        rounds
    }
}

/// What the schedule asks of its busiest thread for given scalars: the
/// longest chain of additions one thread makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chains {
    /// Entries of the largest bucket with unsigned digits: what one thread
    /// per bucket (the schedule before signed digits and chunks) added.
    pub unsigned_bucket: usize,
    /// Entries of the largest bucket with signed digits.
    pub signed_bucket: usize,
    /// Most points one `msm_accumulate` thread adds.
    pub accumulate: usize,
    /// Most partial sums one `msm_merge` thread adds (0: no merge round).
    pub merge: usize,
    /// Merge rounds the largest bucket takes.
    pub rounds: u32,
}

/// The additions per thread that [`msm_buffers`] makes for `scalars` in
/// `c`-bit windows: the digits as `msm_digits` computes them (signed) and as
/// unsigned windows would be, the largest bucket of each, and what the
/// chunked accumulation and merge rounds leave to one thread.
pub fn chains(scalars: &[Fr], c: u32) -> Chains {
    let layout = Layout::new(scalars.len(), c);
    let (half, per_window) = (1u32 << (c - 1), (1usize << (c - 1)) + 1);
    let mut signed = vec![0usize; layout.buckets];
    let mut unsigned = vec![0usize; (layout.windows as usize) << c];
    for s in scalars {
        let bytes = s.to_repr();
        let bits = |bit: u32| -> u32 {
            (0..c)
                .map(|j| bit + j)
                .filter(|&b| b < 256)
                .map(|b| u32::from(bytes.as_ref()[(b / 8) as usize] >> (b % 8) & 1) << (b - bit))
                .sum()
        };
        let mut carry = 0;
        for w in 0..layout.windows {
            let raw = bits(w * c);
            unsigned[((w as usize) << c) + raw as usize] += usize::from(raw != 0);
            let v = raw + carry;
            let d = if w + 1 < layout.windows && v > half {
                carry = 1;
                (1 << c) - v
            } else {
                carry = 0;
                v
            };
            signed[w as usize * per_window + d as usize] += usize::from(d != 0);
        }
    }
    let signed_bucket = signed.iter().copied().max().unwrap_or(0);
    let mut rounds = 0;
    let mut merge = 0;
    let mut partials = signed_bucket.div_ceil(CHUNK);
    while partials > 1 {
        merge = merge.max(partials.min(CHUNK));
        partials = partials.div_ceil(CHUNK);
        rounds += 1;
    }
    Chains {
        unsigned_bucket: unsigned.iter().copied().max().unwrap_or(0),
        signed_bucket,
        accumulate: signed_bucket.min(CHUNK),
        merge,
        rounds,
    }
}
