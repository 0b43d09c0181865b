//! `CudaDevice`: the kernels on a real GPU through cudarc (dynamic loading:
//! one binary starts on hosts with or without CUDA). cudarc's loader panics
//! when a library is missing (DESIGN.md §10), so the driver and NVRTC
//! libraries are probed with libloading first and every cudarc entry is
//! guarded: no GPU is an `Err`, never a panic.
//!
//! Modules come from the SASS nvcc embedded at build time (feature `cuda`)
//! for the device's architecture, else from the embedded PTX when the
//! driver can JIT it, else from NVRTC compiling the embedded source for the
//! device's own architecture; [`CudaDevice::module_loads`] tells which, and
//! why the earlier ones were passed over.

use std::collections::HashMap;
use std::ffi::CString;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, LaunchConfig, PushKernelArg};
use cudarc::nvrtc::Ptx;

use crate::device::{Arg, Counters, Device, Launch, Traffic};
use crate::registry::{Kernel, Module, MODULES};
use crate::{KernelError, Result};

const DRIVER_LIBS: &[&str] = &["libcuda.so", "libcuda.so.1"];
const NVRTC_LIBS: &[&str] = &["libnvrtc.so", "libnvrtc.so.12"];

fn probe(names: &[&str]) -> std::result::Result<(), String> {
    for n in names {
        // SAFETY: loading a system library runs its initializers; these are
        // the CUDA libraries cudarc itself would load next.
        if unsafe { libloading::Library::new(n) }.is_ok() {
            return Ok(());
        }
    }
    Err(format!("none of {names:?} could be loaded"))
}

fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|_| format!("{what} panicked in cudarc"))
}

/// Whether NVRTC can be loaded (libnvrtc.so.12 on the library path).
pub fn nvrtc_available() -> bool {
    probe(NVRTC_LIBS).is_ok()
}

/// What NVRTC made of a module.
#[derive(Debug, Clone)]
pub struct NvrtcOutput {
    pub ptx: String,
    /// Compiler messages (warnings); empty for a clean compile.
    pub log: String,
}

/// Compiles `module`'s embedded source with NVRTC for `arch` (e.g.
/// "compute_80"), keeping the log so callers can insist on no warnings.
pub fn nvrtc_compile(module: &'static Module, arch: &str) -> Result<NvrtcOutput> {
    use cudarc::nvrtc::result;
    probe(NVRTC_LIBS).map_err(KernelError::NoNvrtc)?;
    let src = CString::new(module.source).map_err(|e| KernelError::InvalidInput(e.to_string()))?;
    let name = CString::new(format!("{}.cu", module.name)).map_err(|e| KernelError::InvalidInput(e.to_string()))?;
    let opts = vec![format!("--gpu-architecture={arch}"), "--std=c++17".to_string()];
    let compiled = guarded("nvrtc", || -> std::result::Result<NvrtcOutput, String> {
        let prog = result::create_program(&src, Some(&name)).map_err(|e| e.to_string())?;
        // SAFETY: prog is a live program created above, destroyed once below.
        unsafe {
            let status = result::compile_program(prog, &opts);
            let log_raw = result::get_program_log(prog).map_err(|e| e.to_string())?;
            let log: String = log_raw
                .iter()
                .take_while(|c| **c != 0)
                .map(|c| *c as u8 as char)
                .collect::<String>()
                .trim()
                .to_string();
            let out = match status {
                Ok(()) => {
                    let ptx = result::get_ptx(prog).map_err(|e| e.to_string())?;
                    Ok(NvrtcOutput {
                        ptx: ptx.iter().take_while(|c| **c != 0).map(|c| *c as u8 as char).collect(),
                        log,
                    })
                }
                Err(_) => Err(log),
            };
            let _ = result::destroy_program(prog);
            out
        }
    })
    .map_err(KernelError::NoNvrtc)?;
    compiled.map_err(|log| KernelError::Compile { module: module.name, log })
}

/// How one module was loaded onto a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleLoad {
    /// The module.
    pub module: &'static str,
    /// What the driver loaded: `sass sm_90`, `ptx sm_90` or `nvrtc compute_90`.
    pub from: String,
    /// Why each earlier choice was not taken, in order (empty when the first
    /// choice, the SASS of the device's architecture, loaded).
    pub passed_over: Vec<String>,
}

/// One CUDA GPU as a [`Device`]; every operation goes to its default stream.
pub struct CudaDevice {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    name: String,
    compute: (i32, i32),
    modules: Mutex<HashMap<&'static str, (Arc<CudaModule>, ModuleLoad)>>,
    functions: Mutex<HashMap<&'static str, CudaFunction>>,
    counters: Counters,
}

impl fmt::Debug for CudaDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CudaDevice").field("name", &self.name).field("compute", &self.compute).finish()
    }
}

fn driver(e: impl fmt::Display) -> KernelError {
    KernelError::Driver(e.to_string())
}

impl CudaDevice {
    /// Number of CUDA devices; `NoGpu` when the driver is absent.
    pub fn count() -> Result<usize> {
        probe(DRIVER_LIBS).map_err(KernelError::NoGpu)?;
        let n = guarded("device count", CudaContext::device_count)
            .map_err(KernelError::NoGpu)?
            .map_err(|e| KernelError::NoGpu(e.to_string()))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// The GPU with this ordinal; `NoGpu` (never a panic) when there is none.
    pub fn new(ordinal: usize) -> Result<Self> {
        let count = Self::count()?;
        if ordinal >= count {
            return Err(KernelError::NoGpu(format!("device {ordinal} requested, {count} present")));
        }
        let ctx = guarded("context creation", || CudaContext::new(ordinal))
            .map_err(KernelError::NoGpu)?
            .map_err(|e| KernelError::NoGpu(e.to_string()))?;
        let name = ctx.name().map_err(driver)?;
        let compute = ctx.compute_capability().map_err(driver)?;
        let stream = ctx.default_stream();
        Ok(CudaDevice {
            ctx,
            stream,
            name,
            compute,
            modules: Mutex::new(HashMap::new()),
            functions: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        })
    }

    /// Compute capability (major, minor).
    pub fn compute_capability(&self) -> (i32, i32) {
        self.compute
    }

    /// (free, total) device memory in bytes.
    pub fn memory(&self) -> Result<(usize, usize)> {
        self.ctx.mem_get_info().map_err(driver)
    }

    /// Loads a module, the first of these that the device and its driver
    /// take: the embedded SASS of the device's architecture (sm_90 on 9.x,
    /// sm_80 on 8.x; no JIT, so any driver of the toolkit's major version
    /// runs it); nvcc's embedded PTX (JIT, refused by a driver older than
    /// the nvcc that made it); NVRTC's compile of the embedded source for
    /// this device. A module no path loads is an error telling all three.
    fn load(&self, module: &'static Module) -> Result<(Arc<CudaModule>, ModuleLoad)> {
        let (major, minor) = self.compute;
        let arch = match major {
            9.. => "sm_90",
            8 => "sm_80",
            _ => "",
        };
        let mut passed_over = vec![];
        let loaded = |m: Arc<CudaModule>, from: String, passed_over: Vec<String>| {
            Ok((m, ModuleLoad { module: module.name, from, passed_over }))
        };
        // SASS runs on the major version it was built for (sm_90 on 9.x).
        match module.sass(arch).filter(|_| major <= 9) {
            Some(cubin) => match self.ctx.load_module(Ptx::from_binary(cubin.to_vec())) {
                Ok(m) => return loaded(m, format!("sass {arch}"), passed_over),
                Err(e) => passed_over.push(format!("sass {arch}: {e}")),
            },
            None => passed_over.push(format!("sass: none embedded for sm_{major}{minor}")),
        }
        match module.ptx(arch) {
            Some(ptx) => match self.ctx.load_module(Ptx::from_src(ptx)) {
                Ok(m) => return loaded(m, format!("ptx {arch}"), passed_over),
                Err(e) => passed_over.push(format!("ptx {arch}: {e}")),
            },
            None => passed_over.push(format!("ptx: none embedded for sm_{major}{minor}")),
        }
        let target = format!("compute_{major}{minor}");
        let story = |e: &dyn fmt::Display| {
            KernelError::Driver(format!("module {}: {}; nvrtc {target}: {e}", module.name, passed_over.join("; ")))
        };
        let out = nvrtc_compile(module, &target).map_err(|e| story(&e))?;
        let m = self.ctx.load_module(Ptx::from_src(out.ptx)).map_err(|e| story(&e))?;
        loaded(m, format!("nvrtc {target}"), passed_over)
    }

    fn module(&self, module: &'static Module) -> Result<Arc<CudaModule>> {
        let mut modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((m, _)) = modules.get(module.name) {
            return Ok(m.clone());
        }
        let (m, how) = self.load(module)?;
        modules.insert(module.name, (m.clone(), how));
        Ok(m)
    }

    /// Loads every module of the registry (each once per device) and says
    /// where each one's code came from.
    pub fn load_every_module(&self) -> Result<Vec<ModuleLoad>> {
        for m in MODULES {
            self.module(m)?;
        }
        Ok(self.module_loads())
    }

    /// How each module loaded so far was loaded, by module name.
    pub fn module_loads(&self) -> Vec<ModuleLoad> {
        let modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<ModuleLoad> = modules.values().map(|(_, how)| how.clone()).collect();
        out.sort_by_key(|l| l.module);
        out
    }

    fn function(&self, kernel: Kernel) -> Result<CudaFunction> {
        let mut functions = self.functions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = functions.get(kernel.name) {
            return Ok(f.clone());
        }
        let f = self.module(kernel.module)?.load_function(kernel.name).map_err(driver)?;
        functions.insert(kernel.name, f.clone());
        Ok(f)
    }
}

impl Device for CudaDevice {
    type Mem = CudaSlice<u8>;

    fn free_memory(&self) -> Option<usize> {
        self.memory().ok().map(|(free, _)| free)
    }

    fn name(&self) -> String {
        format!("{} (sm_{}{})", self.name, self.compute.0, self.compute.1)
    }

    fn alloc_zeroed(&self, bytes: usize) -> Result<CudaSlice<u8>> {
        // CUDA refuses empty allocations; an empty buffer still gets a pointer.
        self.stream.alloc_zeros::<u8>(bytes.max(1)).map_err(driver)
    }

    fn write(&self, dst: &mut CudaSlice<u8>, src: &[u8]) -> Result<()> {
        if src.len() > dst.len() {
            return Err(KernelError::InvalidInput(format!("{} bytes into a {}-byte buffer", src.len(), dst.len())));
        }
        let mut view = dst.slice_mut(..src.len());
        self.stream.memcpy_htod(src, &mut view).map_err(driver)?;
        self.counters.wrote(src.len());
        Ok(())
    }

    fn read(&self, src: &CudaSlice<u8>, dst: &mut [u8]) -> Result<()> {
        if dst.len() > src.len() {
            return Err(KernelError::InvalidInput(format!("{} bytes from a {}-byte buffer", dst.len(), src.len())));
        }
        let view = src.slice(..dst.len());
        self.stream.memcpy_dtoh(&view, dst).map_err(driver)?;
        self.stream.synchronize().map_err(driver)?;
        self.counters.read(dst.len());
        Ok(())
    }

    fn copy(&self, dst: &mut CudaSlice<u8>, src: &CudaSlice<u8>, bytes: usize) -> Result<()> {
        if bytes > src.len() || bytes > dst.len() {
            return Err(KernelError::InvalidInput(format!(
                "{bytes} bytes from a {}-byte buffer into a {}-byte buffer",
                src.len(),
                dst.len()
            )));
        }
        let from = src.slice(..bytes);
        let mut to = dst.slice_mut(..bytes);
        self.stream.memcpy_dtod(&from, &mut to).map_err(driver)
    }

    unsafe fn launch(&self, kernel: Kernel, shape: Launch, args: &[Arg<'_, CudaSlice<u8>>]) -> Result<()> {
        let f = self.function(kernel)?;
        let u32s: Vec<u32> = args.iter().filter_map(|a| if let Arg::U32(v) = a { Some(*v) } else { None }).collect();
        let u64s: Vec<u64> = args.iter().filter_map(|a| if let Arg::U64(v) = a { Some(*v) } else { None }).collect();
        let fields: Vec<_> = args.iter().filter_map(|a| if let Arg::Field(v) = a { Some(*v) } else { None }).collect();
        let (mut i32_, mut i64_, mut ifl) = (0, 0, 0);
        let mut b = self.stream.launch_builder(&f);
        for a in args {
            match a {
                Arg::Mem(m) => {
                    b.arg(*m);
                }
                Arg::U32(_) => {
                    b.arg(&u32s[i32_]);
                    i32_ += 1;
                }
                Arg::U64(_) => {
                    b.arg(&u64s[i64_]);
                    i64_ += 1;
                }
                Arg::Field(_) => {
                    b.arg(&fields[ifl]);
                    ifl += 1;
                }
            }
        }
        let cfg = LaunchConfig {
            grid_dim: (shape.grid[0], shape.grid[1], shape.grid[2]),
            block_dim: (shape.block[0], shape.block[1], shape.block[2]),
            shared_mem_bytes: 0,
        };
        // SAFETY: that the arguments match the kernel's parameters is this
        // function's own contract; the scalar copies live until the launch is
        // enqueued, and cudarc keeps buffers alive until the stream is done.
        unsafe { b.launch(cfg) }.map_err(driver)?;
        self.counters.launched();
        Ok(())
    }

    fn synchronize(&self) -> Result<()> {
        self.stream.synchronize().map_err(driver)
    }

    fn traffic(&self) -> Traffic {
        self.counters.traffic()
    }
}
