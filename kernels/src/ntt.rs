//! Host side of the NTT (kernels in cuda/ntt.cu and cuda/poly.cu): an
//! [`NttPlan`] per size holds the twiddles on the device; transforms work in
//! place on `batch` polynomials stored one after another. Generic over
//! [`Device`].

use halo2curves::bn256::Fr;
use halo2curves::ff::PrimeField;

use crate::device::{Arg, Buffer, Device, Launch};
use crate::poly;
use crate::registry::{constants, kernels};
use crate::repr::{self, FieldRepr};
use crate::{KernelError, Result};

/// log2 of the chunk `ntt_block` transforms in shared memory (SS_NTT_BLOCK_LOG).
const BLOCK_LOG: u32 = constants::NTT_BLOCK_LOG;
const BLOCK: u32 = 256;

/// Transform direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Coefficients to evaluations.
    Forward,
    /// Evaluations to coefficients (scaled by n^-1).
    Inverse,
}

/// The primitive 2^log_n-th root of unity halo2 uses for that size
/// (Fr::ROOT_OF_UNITY squared down from 2^S).
pub fn omega(log_n: u32) -> Result<Fr> {
    if log_n > Fr::S {
        return Err(KernelError::InvalidInput(format!("2^{log_n} exceeds Fr's 2-adicity {}", Fr::S)));
    }
    let mut w = Fr::ROOT_OF_UNITY;
    for _ in log_n..Fr::S {
        w = w.square();
    }
    Ok(w)
}

/// Transforms of size 2^log_n on one device: twiddle tables for omega and
/// omega^-1 resident there.
#[derive(Debug)]
pub struct NttPlan<D: Device> {
    log_n: u32,
    n_inv: Fr,
    forward: Buffer<D, FieldRepr>,
    inverse: Buffer<D, FieldRepr>,
}

impl<D: Device> NttPlan<D> {
    /// A plan for size 2^log_n, 1 <= log_n <= 28.
    pub fn new(dev: &D, log_n: u32) -> Result<Self> {
        if log_n == 0 || log_n > Fr::S {
            return Err(KernelError::InvalidInput(format!("NTT of size 2^{log_n} (1..={})", Fr::S)));
        }
        let w = omega(log_n)?;
        let w_inv = w.invert().expect("a root of unity is invertible");
        let n_inv = Fr::from(1u64 << log_n).invert().expect("n < r is invertible");
        let half = 1usize << (log_n - 1);
        let make = |root: Fr| -> Result<Buffer<D, FieldRepr>> {
            let tw = dev.zeros::<FieldRepr>(half)?;
            // SAFETY: (tw, half, omega) as ntt_twiddles takes them; tw holds half elements.
            unsafe {
                dev.launch(
                    kernels::NTT_TWIDDLES,
                    Launch::linear(half as u64, BLOCK)?,
                    &[tw.arg(), Arg::U32(half as u32), Arg::Field((&root).into())],
                )?;
            }
            Ok(tw)
        };
        Ok(NttPlan { log_n, n_inv, forward: make(w)?, inverse: make(w_inv)? })
    }

    /// log2 of the transform size.
    pub fn log_n(&self) -> u32 {
        self.log_n
    }

    fn check(&self, data: &Buffer<D, FieldRepr>, batch: u32) -> Result<()> {
        if data.len() != (batch as usize) << self.log_n || batch == 0 {
            return Err(KernelError::InvalidInput(format!(
                "{} elements for {batch} polynomials of 2^{}",
                data.len(),
                self.log_n
            )));
        }
        Ok(())
    }

    /// The transform without scaling: bit reversal, shared-memory stages,
    /// then one launch per remaining stage.
    fn transform(&self, dev: &D, data: &Buffer<D, FieldRepr>, batch: u32, tw: &Buffer<D, FieldRepr>) -> Result<()> {
        self.check(data, batch)?;
        let log_n = self.log_n;
        let total = (batch as u64) << log_n;
        // SAFETY: arguments in ntt.cu's parameter order and types; data holds
        // batch << log_n elements (checked), tw the n/2 twiddles of this plan;
        // ntt_block's blocks of 2^(s_max-1) threads each cover 2^s_max elements.
        unsafe {
            dev.launch(
                kernels::NTT_BIT_REVERSE,
                Launch::linear(total, BLOCK)?,
                &[data.arg(), Arg::U32(log_n), Arg::U32(batch)],
            )?;
            let s_max = log_n.min(BLOCK_LOG);
            let chunks = u32::try_from(total >> s_max)
                .map_err(|_| KernelError::InvalidInput("NTT batch too large for one launch".into()))?;
            dev.launch(
                kernels::NTT_BLOCK,
                Launch::blocks(chunks, 1 << (s_max - 1)),
                &[data.arg(), Arg::U32(log_n), tw.arg()],
            )?;
            for s in s_max + 1..=log_n {
                dev.launch(
                    kernels::NTT_STAGE,
                    Launch::linear(total / 2, BLOCK)?,
                    &[data.arg(), Arg::U32(log_n), Arg::U32(s), tw.arg(), Arg::U32(batch)],
                )?;
            }
        }
        Ok(())
    }

    /// In-place NTT of `batch` polynomials (`data.len() == batch << log_n`).
    pub fn run(&self, dev: &D, data: &Buffer<D, FieldRepr>, batch: u32, dir: Direction) -> Result<()> {
        match dir {
            Direction::Forward => self.transform(dev, data, batch, &self.forward),
            Direction::Inverse => {
                self.transform(dev, data, batch, &self.inverse)?;
                poly::scale_in_place(dev, data, &self.n_inv)
            }
        }
    }

    /// Coset transforms over g*H: forward multiplies coefficient i by g^i
    /// and transforms; inverse transforms back and multiplies by g^-i.
    pub fn run_coset(&self, dev: &D, data: &Buffer<D, FieldRepr>, batch: u32, dir: Direction, g: &Fr) -> Result<()> {
        self.check(data, batch)?;
        let n = 1u64 << self.log_n;
        match dir {
            Direction::Forward => {
                poly::distribute_powers(dev, data, g, n, batch)?;
                self.run(dev, data, batch, dir)
            }
            Direction::Inverse => {
                self.run(dev, data, batch, dir)?;
                let g_inv = Option::from(g.invert())
                    .ok_or_else(|| KernelError::InvalidInput("coset generator is zero".into()))?;
                poly::distribute_powers(dev, data, &g_inv, n, batch)
            }
        }
    }
}

/// One-shot transform of host data (length a power of two, >= 2) on `dev`;
/// `coset` Some(g) transforms over g*H.
pub fn ntt<D: Device>(dev: &D, data: &mut [Fr], dir: Direction, coset: Option<&Fr>) -> Result<()> {
    let n = data.len();
    if n < 2 || !n.is_power_of_two() {
        return Err(KernelError::InvalidInput(format!("NTT of length {n}: a power of two >= 2 is needed")));
    }
    let plan = NttPlan::new(dev, n.trailing_zeros())?;
    let buf = dev.upload(&repr::frs(data))?;
    match coset {
        Some(g) => plan.run_coset(dev, &buf, 1, dir, g)?,
        None => plan.run(dev, &buf, 1, dir)?,
    }
    repr::to_frs_into(&dev.download(&buf)?, data);
    Ok(())
}
