//! The launch layer: what a device offers to the host code of every kernel
//! (allocation, transfers, launches), implemented by `EmuDevice` and
//! `CudaDevice`. Host code is written once, generic over [`Device`].

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};

use bytemuck::Pod;

use crate::registry::Kernel;
use crate::repr::FieldRepr;
use crate::{KernelError, Result};

/// CUDA's limits: threads per block, blocks in a grid's x dimension.
pub const MAX_BLOCK: u32 = 1024;
pub const MAX_GRID: u64 = (1 << 31) - 1;

/// Grid and block shape of one launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Launch {
    pub grid: [u32; 3],
    pub block: [u32; 3],
}

impl Launch {
    /// Enough blocks of `block` threads (1..=1024) for `threads` threads (at
    /// least one block, at most CUDA's 2^31 - 1).
    pub fn linear(threads: u64, block: u32) -> Result<Self> {
        if !(1..=MAX_BLOCK).contains(&block) {
            return Err(KernelError::InvalidInput(format!("{block} threads per block (1..={MAX_BLOCK})")));
        }
        let blocks = threads.div_ceil(u64::from(block)).max(1);
        if blocks > MAX_GRID {
            return Err(KernelError::InvalidInput(format!("{threads} threads exceed one launch")));
        }
        Ok(Launch { grid: [blocks as u32, 1, 1], block: [block, 1, 1] })
    }
    /// `blocks` blocks of `threads` threads.
    pub fn blocks(blocks: u32, threads: u32) -> Self {
        Launch { grid: [blocks, 1, 1], block: [threads, 1, 1] }
    }
}

/// One kernel argument, passed by value as CUDA does (a buffer is passed as
/// its device pointer).
#[derive(Debug)]
pub enum Arg<'a, M> {
    Mem(&'a M),
    U32(u32),
    U64(u64),
    Field(FieldRepr),
}

// Manual impls: `M` itself need not be Copy, the argument holds `&M`.
impl<M> Clone for Arg<'_, M> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<M> Copy for Arg<'_, M> {}

impl<'a, D: Device, T> From<&'a Buffer<D, T>> for Arg<'a, D::Mem> {
    fn from(b: &'a Buffer<D, T>) -> Self {
        Arg::Mem(&b.mem)
    }
}

/// What a device has done: kernel launches and bytes copied each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Kernel launches.
    pub launches: u64,
    /// Bytes copied from the host to the device.
    pub host_to_device: u64,
    /// Bytes copied from the device to the host.
    pub device_to_host: u64,
}

impl Traffic {
    /// What was done between `earlier` and `self` (two readings of one
    /// device's [`Device::traffic`]).
    pub fn since(self, earlier: Traffic) -> Traffic {
        Traffic {
            launches: self.launches.saturating_sub(earlier.launches),
            host_to_device: self.host_to_device.saturating_sub(earlier.host_to_device),
            device_to_host: self.device_to_host.saturating_sub(earlier.device_to_host),
        }
    }
}

/// A device's running [`Traffic`] counts, shared by every thread using it.
#[derive(Debug, Default)]
pub struct Counters {
    launches: AtomicU64,
    host_to_device: AtomicU64,
    device_to_host: AtomicU64,
}

impl Counters {
    /// One launch.
    pub fn launched(&self) {
        self.launches.fetch_add(1, Ordering::Relaxed);
    }
    /// `bytes` copied to the device.
    pub fn wrote(&self, bytes: usize) {
        self.host_to_device.fetch_add(bytes as u64, Ordering::Relaxed);
    }
    /// `bytes` copied to the host.
    pub fn read(&self, bytes: usize) {
        self.device_to_host.fetch_add(bytes as u64, Ordering::Relaxed);
    }
    /// The counts so far.
    pub fn traffic(&self) -> Traffic {
        Traffic {
            launches: self.launches.load(Ordering::Relaxed),
            host_to_device: self.host_to_device.load(Ordering::Relaxed),
            device_to_host: self.device_to_host.load(Ordering::Relaxed),
        }
    }
}

/// A device: memory, copies and kernel launches, in call order.
pub trait Device: Send + Sync + fmt::Debug {
    /// One allocation of device memory.
    type Mem: Send + Sync + fmt::Debug;

    /// Human-readable name (model, or emulator and its thread order).
    fn name(&self) -> String;
    /// `bytes` bytes of zeroed device memory.
    fn alloc_zeroed(&self, bytes: usize) -> Result<Self::Mem>;
    /// Copies `src` to the start of `dst` (`src` fits).
    fn write(&self, dst: &mut Self::Mem, src: &[u8]) -> Result<()>;
    /// Copies the start of `src` into `dst`, waiting for earlier work.
    fn read(&self, src: &Self::Mem, dst: &mut [u8]) -> Result<()>;
    /// Copies the first `bytes` bytes of `src` to the start of `dst`, on
    /// the device (no host traffic).
    fn copy(&self, dst: &mut Self::Mem, src: &Self::Mem, bytes: usize) -> Result<()>;
    /// Launches `kernel`; arguments in the kernel's parameter order.
    ///
    /// # Safety
    ///
    /// The arguments must match the kernel's parameters in number and type
    /// (a buffer for a pointer, `U32` for `u32`, ...), and every buffer must
    /// be large enough for what the kernel reads and writes given the other
    /// arguments and `shape`; the kernel runs unchecked, on the device or (for
    /// the emulator) in this process. The typed wrappers of this crate
    /// (`msm`, `ntt`, `poly`) uphold this and are the safe API.
    unsafe fn launch(&self, kernel: Kernel, shape: Launch, args: &[Arg<'_, Self::Mem>]) -> Result<()>;
    /// Waits for all issued work.
    fn synchronize(&self) -> Result<()>;
    /// Launches made and bytes copied each way since the device was opened
    /// (copies and launches that succeeded).
    fn traffic(&self) -> Traffic;
    /// Whether this is the CPU SIMT emulator rather than a GPU.
    fn is_emulator(&self) -> bool {
        false
    }
    /// Free device memory in bytes, when the device can tell (the emulator's
    /// memory is the host's: None).
    fn free_memory(&self) -> Option<usize> {
        None
    }

    /// A zeroed buffer of `len` elements.
    fn zeros<T: Pod>(&self, len: usize) -> Result<Buffer<Self, T>>
    where
        Self: Sized,
    {
        let bytes = len
            .checked_mul(size_of::<T>())
            .ok_or_else(|| KernelError::InvalidInput(format!("a buffer of {len} elements")))?;
        let mem = self.alloc_zeroed(bytes)?;
        Ok(Buffer { mem, len, _t: PhantomData })
    }
    /// A buffer holding a copy of `data`.
    fn upload<T: Pod>(&self, data: &[T]) -> Result<Buffer<Self, T>>
    where
        Self: Sized,
    {
        let mut b = self.zeros::<T>(data.len())?;
        self.write(&mut b.mem, bytemuck::cast_slice(data))?;
        Ok(b)
    }
    /// A new buffer holding a copy of `src`, copied on the device.
    fn duplicate<T: Pod>(&self, src: &Buffer<Self, T>) -> Result<Buffer<Self, T>>
    where
        Self: Sized,
    {
        let mut b = self.zeros::<T>(src.len)?;
        self.copy(&mut b.mem, &src.mem, src.len * size_of::<T>())?;
        Ok(b)
    }
    /// The buffer's contents.
    fn download<T: Pod>(&self, b: &Buffer<Self, T>) -> Result<Vec<T>>
    where
        Self: Sized,
    {
        let mut out = vec![T::zeroed(); b.len];
        self.read(&b.mem, bytemuck::cast_slice_mut(&mut out))?;
        Ok(out)
    }
}

/// `len` elements of `T` in the memory of device `D`; freed on drop.
#[derive(Debug)]
pub struct Buffer<D: Device, T> {
    mem: D::Mem,
    len: usize,
    _t: PhantomData<T>,
}

impl<D: Device, T> Buffer<D, T> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether it holds no element.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// As a kernel argument.
    pub fn arg(&self) -> Arg<'_, D::Mem> {
        Arg::Mem(&self.mem)
    }
}
