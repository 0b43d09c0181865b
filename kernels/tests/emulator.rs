//! The emulator itself and the device layer: kernel tables, launch errors,
//! the thread-order race detector, and the GPU paths on a host without one.

use statesync_kernels::registry::{kernels, Kernel, MODULES, SELFTEST};
use statesync_kernels::{Arg, CudaDevice, Device, EmuDevice, KernelError, Launch, Order};

#[test]
fn every_registered_kernel_is_in_the_emulator_table() {
    for m in MODULES {
        for k in m.kernels {
            assert!(EmuDevice::kernel_params(k).is_some(), "{}::{k} missing from emu/emu.cpp's table", m.name);
        }
    }
    assert_eq!(EmuDevice::kernel_params("no_such_kernel"), None);
}

fn shift(dev: &EmuDevice, name: &'static str, n: u32, salt: u32) -> Vec<u32> {
    let out = dev.zeros::<u32>(n as usize).unwrap();
    // SAFETY: (out, n, salt) as shift_racy/shift_synced take them; one block of n threads, out holds n.
    unsafe {
        dev.launch(Kernel::new(&SELFTEST, name), Launch::blocks(1, n), &[out.arg(), Arg::U32(n), Arg::U32(salt)])
    }
    .unwrap();
    dev.download(&out).unwrap()
}

#[test]
fn thread_order_exposes_a_missing_barrier() {
    let n = 64;
    let expected: Vec<u32> = (0..n).map(|t| (t + 1) % n + 1000).collect();
    let orders = [Order::Forward, Order::Reverse, Order::Shuffle(1), Order::Shuffle(2)];
    // With the barrier: the same (right) result in every order.
    for o in orders {
        assert_eq!(shift(&EmuDevice::new(o), "shift_synced", n, 1000), expected, "{o:?}");
    }
    // Without it: the orders disagree, and at least one is wrong.
    let results: Vec<Vec<u32>> =
        orders.iter().enumerate().map(|(i, o)| shift(&EmuDevice::new(*o), "shift_racy", n, 2000 + i as u32)).collect();
    let normalized: Vec<Vec<u32>> =
        results.iter().enumerate().map(|(i, r)| r.iter().map(|v| v.wrapping_sub(1000 + i as u32)).collect()).collect();
    assert!(normalized.iter().any(|r| *r != expected), "the race went unnoticed in every order");
    assert_ne!(normalized[0], normalized[1], "forward and reverse order agree on a racy kernel");
}

#[test]
fn bad_launches_are_errors() {
    let dev = EmuDevice::default();
    let out = dev.zeros::<u32>(4).unwrap();
    // The emulator checks what it can even though launch's contract is the
    // caller's (these launches break it on purpose and must be refused
    // before any kernel code runs).
    // SAFETY: refused by the emulator before the kernel runs (wrong arity,
    // unknown name, bad shape), as asserted.
    // Wrong number of arguments.
    let e = unsafe { dev.launch(kernels::SHIFT_SYNCED, Launch::blocks(1, 4), &[out.arg()]) }.unwrap_err();
    assert!(matches!(e, KernelError::Emulator(ref m) if m.contains("takes 3 parameters")), "{e}");
    // Unknown kernel.
    // SAFETY: as above.
    let e = unsafe { dev.launch(Kernel::new(&SELFTEST, "nope"), Launch::blocks(1, 1), &[]) }.unwrap_err();
    assert!(matches!(e, KernelError::Emulator(ref m) if m.contains("no kernel named nope")), "{e}");
    // More than 1024 threads per block.
    // SAFETY: as above.
    let e =
        unsafe { dev.launch(kernels::SHIFT_SYNCED, Launch::blocks(1, 2048), &[out.arg(), Arg::U32(4), Arg::U32(0)]) }
            .unwrap_err();
    assert!(matches!(e, KernelError::Emulator(ref m) if m.contains("invalid launch shape")), "{e}");
    // A grid beyond CUDA's 2^31 - 1 blocks.
    // SAFETY: as above.
    let e = unsafe {
        dev.launch(kernels::SHIFT_SYNCED, Launch::blocks(u32::MAX, 4), &[out.arg(), Arg::U32(4), Arg::U32(0)])
    }
    .unwrap_err();
    assert!(matches!(e, KernelError::Emulator(ref m) if m.contains("invalid launch shape")), "{e}");
    // Launch shapes CUDA cannot run.
    assert!(Launch::linear(10, 0).is_err());
    assert!(Launch::linear(10, 2048).is_err());
    assert!(Launch::linear(u64::MAX, 1024).is_err());
    // Reading more than a buffer holds.
    let mut big = vec![0u8; 64];
    assert!(dev.read(&dev.alloc_zeroed(16).unwrap(), &mut big).is_err());
}

#[test]
fn no_gpu_is_a_clean_error_not_a_panic() {
    match CudaDevice::new(0) {
        Ok(dev) => assert!(!dev.name().is_empty()),
        Err(KernelError::NoGpu(msg)) => assert!(!msg.is_empty()),
        Err(e) => panic!("expected NoGpu, got {e}"),
    }
    assert!(matches!(CudaDevice::new(usize::MAX), Err(KernelError::NoGpu(_))));
}

/// NVRTC (libnvrtc.so.12, installed by scripts/cuda-tools and put on the
/// library path by scripts/test) compiles every module for sm_80 and sm_90
/// without a single warning, and the PTX has every registered entry point.
#[test]
fn nvrtc_compiles_every_module_without_warnings() {
    assert!(
        statesync_kernels::nvrtc_available(),
        "libnvrtc.so.12 not found: run through scripts/test, or eval \"$(scripts/cuda-tools)\" first"
    );
    // One thread per architecture: each compile takes seconds.
    std::thread::scope(|s| {
        for arch in ["compute_80", "compute_90"] {
            s.spawn(move || {
                for m in MODULES {
                    let out = statesync_kernels::nvrtc_compile(m, arch).unwrap_or_else(|e| panic!("{}: {e}", m.name));
                    assert!(out.log.is_empty(), "{} for {arch}: NVRTC said:\n{}", m.name, out.log);
                    for k in m.kernels {
                        assert!(out.ptx.contains(&format!(".entry {k}(")), "{}::{k} not in the PTX for {arch}", m.name);
                    }
                }
            });
        }
    });
}

/// Under feature `cuda`, build.rs embedded nvcc's PTX for both architectures.
#[cfg(feature = "cuda")]
#[test]
fn nvcc_ptx_is_embedded_for_every_module() {
    for m in MODULES {
        for arch in statesync_kernels::registry::PTX_ARCHS {
            let ptx = m.ptx(arch).unwrap_or_else(|| panic!("{}: no {arch} PTX (was nvcc found?)", m.name));
            assert!(ptx.contains(&format!(".target {arch}")), "{}: {arch}", m.name);
            for k in m.kernels {
                assert!(ptx.contains(&format!(".entry {k}(")), "{}::{k} not in the {arch} PTX", m.name);
            }
        }
    }
}

/// Under feature `cuda`, build.rs embedded the SASS of both architectures:
/// a CUDA ELF (machine 190) with every entry point's code section, one per
/// architecture.
#[cfg(feature = "cuda")]
#[test]
fn sass_is_embedded_for_every_module_and_architecture() {
    for m in MODULES {
        let [sm80, sm90] = statesync_kernels::registry::PTX_ARCHS
            .map(|arch| m.sass(arch).unwrap_or_else(|| panic!("{}: no {arch} SASS (was nvcc found?)", m.name)));
        for (arch, elf) in [("sm_80", sm80), ("sm_90", sm90)] {
            assert_eq!(&elf[..4], b"\x7fELF", "{}: the {arch} SASS is an ELF file", m.name);
            assert_eq!(u16::from_le_bytes([elf[18], elf[19]]), 190, "{}: the {arch} ELF is CUDA's (EM_CUDA)", m.name);
            for k in m.kernels {
                let section = format!(".text.{k}\0");
                assert!(
                    elf.windows(section.len()).any(|w| w == section.as_bytes()),
                    "{}::{k}: no code section in the {arch} SASS",
                    m.name
                );
            }
        }
        assert_ne!(sm80, sm90, "{}: one SASS per architecture", m.name);
    }
}

#[test]
fn a_device_counts_its_launches_and_copies() {
    use halo2curves::bn256::{Fr, G1Affine};
    use statesync_kernels::{msm, Traffic};

    let dev = EmuDevice::default();
    let start = dev.traffic();
    let n = 10;
    msm::msm(&dev, &vec![Fr::from(3); n], &vec![G1Affine::generator(); n], Some(4)).unwrap();
    // Up: n scalars (32 B) and n affine points (64 B); down: one Jacobian
    // point (96 B); the nine launches of an MSM whose buckets fit one chunk
    // (no merge rounds).
    let msm_traffic = Traffic { launches: 9, host_to_device: n as u64 * 96, device_to_host: 96 };
    assert_eq!(dev.traffic().since(start), msm_traffic);
    // Allocation is not a copy; a launch the emulator refuses is not counted.
    let before = dev.traffic();
    let small = dev.zeros::<u32>(1).unwrap();
    assert_eq!(dev.download(&small).unwrap(), [0]);
    // SAFETY: refused before any kernel code runs (none of fr_mul's four
    // arguments), as asserted.
    let refused = unsafe { dev.launch(kernels::FR_MUL, Launch::blocks(1, 32), &[]) };
    assert!(refused.is_err());
    assert_eq!(dev.traffic().since(before), Traffic { launches: 0, host_to_device: 0, device_to_host: 4 });
    // A copy on the device moves nothing between host and device.
    let src = dev.upload(&[7u32, 8, 9]).unwrap();
    let before = dev.traffic();
    let copy = dev.duplicate(&src).unwrap();
    assert_eq!(dev.traffic().since(before), Traffic::default());
    assert_eq!(dev.download(&copy).unwrap(), [7, 8, 9]);
}
