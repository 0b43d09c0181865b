//! `EmuDevice`: launches kernels on the CPU SIMT emulator (emu/emu.cpp),
//! which runs the very sources nvcc and NVRTC compile. Device memory is host
//! memory; a launch returns when every block has run.

use std::ffi::{c_char, c_int, c_uint, c_ulonglong, c_void, CStr, CString};
use std::fmt;
use std::sync::{Mutex, MutexGuard};

use crate::device::{Arg, Counters, Device, Launch, Traffic};
use crate::registry::Kernel;
use crate::{KernelError, Result};

extern "C" {
    fn ss_emu_kernel_params(name: *const c_char) -> c_int;
    fn ss_emu_launch(
        name: *const c_char,
        grid: *const c_uint,
        block: *const c_uint,
        params: *mut *mut c_void,
        nparams: c_uint,
        order: c_uint,
        seed: c_ulonglong,
        workers: c_uint,
        err: *mut c_char,
        errlen: usize,
    ) -> c_int;
}

/// The order in which the emulator runs the blocks of a grid and the
/// threads of each phase of a block (between two barriers). Results must
/// not depend on it: running the tests in every order is a race detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Forward,
    Reverse,
    /// A pseudo-random permutation from this seed, different per block and phase.
    Shuffle(u64),
}

/// The CPU SIMT emulator as a [`Device`].
pub struct EmuDevice {
    order: Order,
    workers: u32,
    counters: Counters,
}

impl fmt::Debug for EmuDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmuDevice").field("order", &self.order).field("workers", &self.workers).finish()
    }
}

impl Default for EmuDevice {
    fn default() -> Self {
        Self::new(Order::Forward)
    }
}

impl EmuDevice {
    /// An emulator running blocks on as many OS threads as the machine has cores.
    pub fn new(order: Order) -> Self {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        EmuDevice { order, workers, counters: Counters::default() }
    }
    /// The thread order of this device.
    pub fn order(&self) -> Order {
        self.order
    }
    /// Number of parameters the emulator's table has for `name`, if it has it.
    pub fn kernel_params(name: &str) -> Option<u32> {
        let c = CString::new(name).ok()?;
        // SAFETY: a valid NUL-terminated string; the callee only reads it.
        let n = unsafe { ss_emu_kernel_params(c.as_ptr()) };
        u32::try_from(n).ok()
    }
}

/// Emulated device memory: a host allocation, 8-byte aligned, that kernels
/// write through raw pointers (hence not a plain `Vec` behind `&`).
pub struct EmuMem {
    ptr: *mut u64,
    words: usize,
}

// SAFETY: EmuMem owns its allocation. Kernels write it through `&EmuMem`
// (as CUDA kernels write device memory passed by pointer), so every access —
// launches, reads, writes, on any EmuDevice — holds the process-wide
// EMULATOR lock: one emulated stream, as one CUDA stream orders its work.
unsafe impl Send for EmuMem {}
unsafe impl Sync for EmuMem {}

static EMULATOR: Mutex<()> = Mutex::new(());

fn serialize() -> MutexGuard<'static, ()> {
    EMULATOR.lock().unwrap_or_else(|p| p.into_inner())
}

impl fmt::Debug for EmuMem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmuMem({} bytes)", self.words * 8)
    }
}

impl EmuMem {
    fn bytes(&self) -> &[u8] {
        // SAFETY: ptr holds `words` initialized u64s for as long as self lives.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.words * 8) }
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, and &mut self excludes other access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr as *mut u8, self.words * 8) }
    }
}

impl Drop for EmuMem {
    fn drop(&mut self) {
        // SAFETY: ptr and words come from Box::into_raw of a boxed slice of that length.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.ptr, self.words)) });
    }
}

impl Device for EmuDevice {
    fn is_emulator(&self) -> bool {
        true
    }

    type Mem = EmuMem;

    fn name(&self) -> String {
        format!("CPU SIMT emulator ({:?} order, {} threads)", self.order, self.workers)
    }

    fn alloc_zeroed(&self, bytes: usize) -> Result<EmuMem> {
        let words = bytes.div_ceil(8);
        let boxed = vec![0u64; words].into_boxed_slice();
        Ok(EmuMem { ptr: Box::into_raw(boxed) as *mut u64, words })
    }

    fn write(&self, dst: &mut EmuMem, src: &[u8]) -> Result<()> {
        let _serial = serialize();
        let d = dst.bytes_mut();
        if src.len() > d.len() {
            return Err(KernelError::InvalidInput(format!("{} bytes into a {}-byte buffer", src.len(), d.len())));
        }
        d[..src.len()].copy_from_slice(src);
        self.counters.wrote(src.len());
        Ok(())
    }

    fn read(&self, src: &EmuMem, dst: &mut [u8]) -> Result<()> {
        let _serial = serialize();
        let s = src.bytes();
        if dst.len() > s.len() {
            return Err(KernelError::InvalidInput(format!("{} bytes from a {}-byte buffer", dst.len(), s.len())));
        }
        dst.copy_from_slice(&s[..dst.len()]);
        self.counters.read(dst.len());
        Ok(())
    }

    fn copy(&self, dst: &mut EmuMem, src: &EmuMem, bytes: usize) -> Result<()> {
        let _serial = serialize();
        let (s, d) = (src.bytes(), dst.bytes_mut());
        if bytes > s.len() || bytes > d.len() {
            return Err(KernelError::InvalidInput(format!(
                "{bytes} bytes from a {}-byte buffer into a {}-byte buffer",
                s.len(),
                d.len()
            )));
        }
        d[..bytes].copy_from_slice(&s[..bytes]);
        Ok(())
    }

    unsafe fn launch(&self, kernel: Kernel, shape: Launch, args: &[Arg<'_, EmuMem>]) -> Result<()> {
        let _serial = serialize();
        // CUDA's convention: params[i] points to the value of argument i.
        let mut ptrs: Vec<*mut u64> = Vec::with_capacity(args.len());
        let mut u32s: Vec<u32> = Vec::with_capacity(args.len());
        let mut u64s: Vec<u64> = Vec::with_capacity(args.len());
        let mut fields = Vec::with_capacity(args.len());
        let mut params: Vec<*mut c_void> = Vec::with_capacity(args.len());
        for a in args {
            // The vectors never grow past their capacity, so these addresses stay valid.
            let p: *mut c_void = match a {
                Arg::Mem(m) => {
                    ptrs.push(m.ptr);
                    ptrs.last_mut().map(|x| x as *mut *mut u64 as *mut c_void)
                }
                Arg::U32(v) => {
                    u32s.push(*v);
                    u32s.last_mut().map(|x| x as *mut u32 as *mut c_void)
                }
                Arg::U64(v) => {
                    u64s.push(*v);
                    u64s.last_mut().map(|x| x as *mut u64 as *mut c_void)
                }
                Arg::Field(f) => {
                    fields.push(*f);
                    fields.last_mut().map(|x| x as *mut _ as *mut c_void)
                }
            }
            .expect("just pushed");
            params.push(p);
        }
        let name = CString::new(kernel.name).map_err(|e| KernelError::InvalidInput(e.to_string()))?;
        let (order, seed) = match self.order {
            Order::Forward => (0, 0),
            Order::Reverse => (1, 0),
            Order::Shuffle(s) => (2, s),
        };
        let mut err = vec![0 as c_char; 512];
        // SAFETY: every pointer is valid for the call: name and err are owned
        // buffers, grid/block are 3-element arrays, params point to values
        // that outlive the call, and buffer pointers point to live EmuMem
        // allocations borrowed by `args`. That the arguments fit the kernel
        // is this function's own safety contract.
        let rc = unsafe {
            ss_emu_launch(
                name.as_ptr(),
                shape.grid.as_ptr(),
                shape.block.as_ptr(),
                params.as_mut_ptr(),
                params.len() as c_uint,
                order,
                seed,
                self.workers,
                err.as_mut_ptr(),
                err.len(),
            )
        };
        if rc != 0 {
            // SAFETY: the emulator writes a NUL-terminated message into err.
            let msg = unsafe { CStr::from_ptr(err.as_ptr()) }.to_string_lossy().into_owned();
            return Err(KernelError::Emulator(msg));
        }
        self.counters.launched();
        Ok(())
    }

    fn synchronize(&self) -> Result<()> {
        Ok(())
    }

    fn traffic(&self) -> Traffic {
        self.counters.traffic()
    }
}
