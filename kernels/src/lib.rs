//! statesync-kernels: the CUDA kernels (BN254 MSM and NTT), their builds
//! (nvcc, NVRTC, CPU SIMT emulator) and the `Device` launch layer
//! (DESIGN.md §5). Nothing is implemented yet: the kernels issue fills this
//! crate, and no other crate depends on it until then.
