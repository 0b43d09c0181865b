//! `statesync-bench kernels`: the kernels' resource report. Every module's
//! embedded source is compiled for sm_90 by nvcc with `ptxas -v` (registers,
//! shared memory, stack, spills per kernel), and the SASS of `fr_mul` (one
//! Fr Montgomery multiplication per thread) is disassembled by cuobjdump to
//! count its integer multiply instructions. Needs nvcc, ptxas, cuobjdump and
//! nvdisasm: `eval "$(scripts/cuda-tools)"` puts PyPI's on PATH.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;
use statesync_kernels::registry::MODULES;

/// Architecture the report compiles for.
pub const ARCH: &str = "sm_90";
/// Goal of the kernels issue: at most this many multiply-family
/// instructions in one Fr multiplication.
pub const MUL_GOAL: usize = 300;

/// `statesync-bench kernels` options.
#[derive(Debug, clap::Args)]
pub struct KernelsArgs {
    /// Exit with status 1 unless the goals hold: no spills in the MSM and NTT
    /// kernels, at most 300 multiply-family instructions (IMAD/IMUL, moves
    /// and shifts included) in the kernel doing one Fr multiplication.
    #[arg(long)]
    pub check: bool,
}

/// ptxas figures of one kernel.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KernelResources {
    pub module: String,
    pub kernel: String,
    pub registers: u32,
    pub shared_bytes: u32,
    pub stack_bytes: u32,
    pub spill_store_bytes: u32,
    pub spill_load_bytes: u32,
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct KernelsReport {
    pub arch: String,
    pub nvcc: String,
    pub kernels: Vec<KernelResources>,
    /// SASS opcode -> count in `fr_mul` (IMAD/IMUL family only).
    pub fr_mul_opcodes: BTreeMap<String, usize>,
    /// All IMAD/IMUL-family instructions in `fr_mul` (an upper bound for one
    /// multiplication: it includes the kernel's index arithmetic and
    /// IMAD.MOV/IMAD.SHL, which ptxas uses as moves and shifts).
    pub fr_mul_multiply_family: usize,
    /// The same without the IMAD.MOV / IMAD.SHL / IMAD.IADD forms.
    pub fr_mul_multiplies: usize,
}

impl KernelsReport {
    /// Kernels of the MSM and NTT modules that spill.
    pub fn hot_spills(&self) -> Vec<&KernelResources> {
        self.kernels
            .iter()
            .filter(|k| (k.module == "msm" || k.module == "ntt") && k.spill_store_bytes + k.spill_load_bytes > 0)
            .collect()
    }
    /// Whether the goals hold.
    pub fn goals_met(&self) -> bool {
        self.hot_spills().is_empty() && self.fr_mul_multiply_family <= MUL_GOAL
    }
}

fn tool(name: &str, nvcc: &Path) -> PathBuf {
    let beside = nvcc.with_file_name(name);
    if beside.is_file() {
        beside
    } else {
        PathBuf::from(name)
    }
}

fn run(cmd: &mut Command) -> Result<std::process::Output, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd:?} failed:\n{}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok(out)
}

fn number_before(line: &str, unit: &str) -> Option<u32> {
    let idx = line.find(unit)?;
    line[..idx].split_whitespace().last()?.parse().ok()
}

/// Parses `ptxas -v` output into per-kernel figures.
pub fn parse_ptxas(module: &str, text: &str) -> Vec<KernelResources> {
    let mut out: Vec<KernelResources> = Vec::new();
    // "Function properties for X" precedes X's stack/spill line; X may be a
    // non-inlined device function rather than the kernel being compiled.
    let mut properties_of = String::new();
    for line in text.lines() {
        if let Some(rest) = line.split("Compiling entry function '").nth(1) {
            let name = rest.split('\'').next().unwrap_or_default();
            out.push(KernelResources { module: module.into(), kernel: name.into(), ..Default::default() });
        } else if let Some(rest) = line.split("Function properties for ").nth(1) {
            properties_of = rest.trim().to_string();
        } else if let Some(k) = out.last_mut() {
            if line.contains("bytes stack frame") && properties_of == k.kernel {
                k.stack_bytes = number_before(line, "bytes stack frame").unwrap_or(0);
                k.spill_store_bytes = number_before(line, "bytes spill stores").unwrap_or(0);
                k.spill_load_bytes = number_before(line, "bytes spill loads").unwrap_or(0);
            } else if line.contains("Used") && line.contains("registers") {
                k.registers = number_before(line, "registers").unwrap_or(0);
                k.shared_bytes = number_before(line, "bytes smem").unwrap_or(0);
            }
        }
    }
    out
}

/// Counts IMAD/IMUL-family opcodes in SASS text.
pub fn multiply_opcodes(sass: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in sass.lines() {
        // "        /*0120*/                   IMAD.WIDE.U32 R2, R3, R4, RZ ;"
        let Some(code) = line.split("*/").nth(1) else { continue };
        let mut words = code.split_whitespace();
        let mut op = words.next().unwrap_or_default();
        if op.starts_with('@') {
            op = words.next().unwrap_or_default();
        }
        if op.starts_with("IMAD") || op.starts_with("IMUL") {
            *counts.entry(op.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

/// One module's ptxas figures, and fr_mul's SASS if the module has it.
type Compiled = (Vec<KernelResources>, Option<String>);

/// Builds the report.
pub fn run_report() -> Result<KernelsReport, String> {
    let nvcc = std::env::var_os("NVCC").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("nvcc"));
    let version = run(Command::new(&nvcc).arg("--version"))
        .map_err(|e| format!("nvcc not usable ({e}); eval \"$(scripts/cuda-tools)\" installs it"))?;
    let version = String::from_utf8_lossy(&version.stdout).lines().last().unwrap_or_default().trim().to_string();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    // The modules compile side by side: each takes seconds.
    let compiled: Vec<Result<Compiled, String>> = std::thread::scope(|s| {
        let jobs: Vec<_> = MODULES
            .iter()
            .map(|m| {
                let (dir, nvcc) = (dir.path(), &nvcc);
                s.spawn(move || -> Result<Compiled, String> {
                    let src = dir.join(format!("{}.cu", m.name));
                    let cubin = dir.join(format!("{}.cubin", m.name));
                    std::fs::write(&src, m.source).map_err(|e| e.to_string())?;
                    let out = run(Command::new(nvcc)
                        .args(["-cubin", "-std=c++17", "-Xptxas", "-v"])
                        .arg(format!("-arch={ARCH}"))
                        .arg("-o")
                        .arg(&cubin)
                        .arg(&src))?;
                    let resources = parse_ptxas(m.name, &String::from_utf8_lossy(&out.stderr));
                    let sass = if m.kernels.contains(&"fr_mul") {
                        let out =
                            run(Command::new(tool("cuobjdump", nvcc)).args(["-sass", "-fun", "fr_mul"]).arg(&cubin))?;
                        Some(String::from_utf8_lossy(&out.stdout).into_owned())
                    } else {
                        None
                    };
                    Ok((resources, sass))
                })
            })
            .collect();
        jobs.into_iter().map(|j| j.join().unwrap_or_else(|_| Err("compile thread panicked".into()))).collect()
    });
    let mut kernels = Vec::new();
    let mut fr_mul_sass = String::new();
    for c in compiled {
        let (resources, sass) = c?;
        kernels.extend(resources);
        if let Some(sass) = sass {
            fr_mul_sass = sass;
        }
    }
    let fr_mul_opcodes = multiply_opcodes(&fr_mul_sass);
    if fr_mul_opcodes.is_empty() {
        return Err("no multiply instructions found in fr_mul's SASS".into());
    }
    let fr_mul_multiply_family = fr_mul_opcodes.values().sum();
    let fr_mul_multiplies = fr_mul_opcodes
        .iter()
        .filter(|(op, _)| !(op.starts_with("IMAD.MOV") || op.starts_with("IMAD.SHL") || op.starts_with("IMAD.IADD")))
        .map(|(_, n)| n)
        .sum();
    Ok(KernelsReport {
        arch: ARCH.into(),
        nvcc: version,
        kernels,
        fr_mul_opcodes,
        fr_mul_multiply_family,
        fr_mul_multiplies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ptxas_and_sass() {
        let ptxas = "ptxas info    : Compiling entry function 'msm_reduce' for 'sm_90'\n\
            ptxas info    : Function properties for msm_reduce\n\
            \x20   8 bytes stack frame, 4 bytes spill stores, 12 bytes spill loads\n\
            ptxas info    : Used 196 registers, used 1 barriers, 12288 bytes smem, 380 bytes cmem[0]\n";
        let k = &parse_ptxas("msm", ptxas)[0];
        assert_eq!((k.kernel.as_str(), k.registers, k.shared_bytes), ("msm_reduce", 196, 12288));
        assert_eq!((k.stack_bytes, k.spill_store_bytes, k.spill_load_bytes), (8, 4, 12));
        let sass = "        /*0070*/                   IMAD.WIDE.U32 R2, R3, R4, RZ ;\n\
            \x20       /*0080*/              @!P0 IMAD.MOV.U32 R5, RZ, RZ, R6 ;\n\
            \x20       /*0090*/                   IADD3 R1, R1, R2, RZ ;\n\
            \x20       /*00a0*/                   IMAD.WIDE.U32 R8, R3, R4, R8 ;\n";
        let c = multiply_opcodes(sass);
        assert_eq!(c.get("IMAD.WIDE.U32"), Some(&2));
        assert_eq!(c.get("IMAD.MOV.U32"), Some(&1));
        assert_eq!(c.len(), 2);
    }
}
