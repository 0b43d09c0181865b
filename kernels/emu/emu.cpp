// The CPU SIMT emulator's runtime and its launch table (see emu.h). Compiles
// the very kernel sources of kernels/cuda with the host compiler and exposes
// one C entry point, ss_emu_launch, to the Rust EmuDevice.
#include <ucontext.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "emu.h"

// The kernels, exactly as nvcc and NVRTC see them.
#include "msm.cu"
#include "ntt.cu"
#include "poly.cu"
#include "selftest.cu"

namespace ss_emu {
namespace {

// Thrown by __syncthreads() in a kernel the table registers without
// barriers (its threads run as plain calls, which cannot be suspended).
struct BarrierInPlainKernel {};

constexpr size_t kFiberStack = 256 * 1024;

struct Fiber {
    ucontext_t ctx;
    ThreadState state;
    bool done;
};

struct Block {
    ucontext_t scheduler;
    Fiber* running = nullptr;
    void (*call)(void**) = nullptr;
    void** params = nullptr;
};

thread_local ThreadState* t_state = nullptr;
thread_local Block* t_block = nullptr;  // non-null while a barrier kernel's block runs

void fiber_entry() {
    Block* b = t_block;
    b->call(b->params);
    b->running->done = true;
    // Returning resumes uc_link: the block's scheduler.
}

uint64_t splitmix64(uint64_t& s) {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

enum Order : unsigned { kForward = 0, kReverse = 1, kShuffle = 2 };

// The order in which `n` items (threads of a phase, blocks of a grid) run.
void arrange(std::vector<unsigned>& idx, unsigned n, unsigned order, uint64_t seed) {
    idx.resize(n);
    for (unsigned i = 0; i < n; i++) idx[i] = order == kReverse ? n - 1 - i : i;
    if (order == kShuffle) {
        for (unsigned i = n; i > 1; i--) {
            unsigned j = (unsigned)(splitmix64(seed) % i);
            std::swap(idx[i - 1], idx[j]);
        }
    }
}

dim3 unflatten(unsigned i, dim3 d) { return dim3{i % d.x, (i / d.x) % d.y, i / (d.x * d.y)}; }

struct KernelEntry {
    const char* name;
    void (*call)(void**);
    unsigned params;
    bool barrier;
};

template <class... A, size_t... I>
void invoke_with(void (*f)(A...), void** p, std::index_sequence<I...>) {
    f(*static_cast<std::remove_cv_t<std::remove_reference_t<A>>*>(p[I])...);
}
template <class... A>
void invoke(void (*f)(A...), void** p) {
    invoke_with(f, p, std::index_sequence_for<A...>{});
}
template <class... A>
constexpr unsigned arity(void (*)(A...)) {
    return sizeof...(A);
}

#define SS_EMU_KERNEL(name, barrier) {#name, [](void** p) { invoke(&name, p); }, arity(&name), barrier}

// Every kernel of kernels/cuda. `barrier`: the kernel calls __syncthreads()
// and its threads run as fibers.
const KernelEntry kKernels[] = {
    SS_EMU_KERNEL(msm_digits, false),
    SS_EMU_KERNEL(scan_u32, true),
    SS_EMU_KERNEL(msm_scatter, false),
    SS_EMU_KERNEL(msm_chunks, false),
    SS_EMU_KERNEL(msm_accumulate, false),
    SS_EMU_KERNEL(msm_merge, false),
    SS_EMU_KERNEL(msm_gather, false),
    SS_EMU_KERNEL(msm_reduce, true),
    SS_EMU_KERNEL(msm_combine, false),
    SS_EMU_KERNEL(ntt_twiddles, false),
    SS_EMU_KERNEL(ntt_bit_reverse, false),
    SS_EMU_KERNEL(ntt_block, true),
    SS_EMU_KERNEL(ntt_stage, false),
    SS_EMU_KERNEL(poly_add, false),
    SS_EMU_KERNEL(poly_sub, false),
    SS_EMU_KERNEL(poly_mul, false),
    SS_EMU_KERNEL(poly_scale, false),
    SS_EMU_KERNEL(poly_distribute_powers, false),
    SS_EMU_KERNEL(poly_batch_invert, false),
    SS_EMU_KERNEL(fr_mul, false),
    SS_EMU_KERNEL(fr_ops, false),
    SS_EMU_KERNEL(fq_ops, false),
    SS_EMU_KERNEL(g1_ops, false),
    SS_EMU_KERNEL(shift_racy, false),
    SS_EMU_KERNEL(shift_synced, true),
};

const KernelEntry* find_kernel(const char* name) {
    for (const KernelEntry& k : kKernels)
        if (std::strcmp(k.name, name) == 0) return &k;
    return nullptr;
}

// One OS worker's fiber stacks, allocated once and reused by every block.
struct StackPool {
    std::vector<std::unique_ptr<char[]>> stacks;
    char* get(size_t i) {
        while (stacks.size() <= i) stacks.emplace_back(new char[kFiberStack]);
        return stacks[i].get();
    }
};

// Runs one block whose kernel uses barriers: each phase (the stretch between
// two barriers) resumes every live fiber once, in the launch's order.
void run_barrier_block(const KernelEntry& k, void** params, dim3 grid, dim3 block, unsigned block_linear,
                       unsigned order, uint64_t seed, StackPool& pool) {
    unsigned threads = block.x * block.y * block.z;
    std::vector<Fiber> fibers(threads);
    Block b;
    b.call = k.call;
    b.params = params;
    for (unsigned i = 0; i < threads; i++) {
        Fiber& f = fibers[i];
        f.state = ThreadState{unflatten(i, block), unflatten(block_linear, grid), block, grid};
        f.done = false;
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = pool.get(i);
        f.ctx.uc_stack.ss_size = kFiberStack;
        f.ctx.uc_link = &b.scheduler;
        makecontext(&f.ctx, fiber_entry, 0);
    }
    t_block = &b;
    std::vector<unsigned> idx;
    for (uint64_t phase = 0;; phase++) {
        arrange(idx, threads, order, seed ^ (uint64_t(block_linear) << 32) ^ (phase * 0x2545f4914f6cdd1dull));
        bool live = false;
        for (unsigned i : idx) {
            Fiber& f = fibers[i];
            if (f.done) continue;
            b.running = &f;
            t_state = &f.state;
            swapcontext(&b.scheduler, &f.ctx);
            live |= !f.done;
        }
        if (!live) break;
    }
    t_block = nullptr;
}

void run_plain_block(const KernelEntry& k, void** params, dim3 grid, dim3 block, unsigned block_linear,
                     unsigned order, uint64_t seed) {
    unsigned threads = block.x * block.y * block.z;
    std::vector<unsigned> idx;
    arrange(idx, threads, order, seed ^ (uint64_t(block_linear) << 32));
    ThreadState st{dim3{0, 0, 0}, unflatten(block_linear, grid), block, grid};
    t_state = &st;
    for (unsigned i : idx) {
        st.thread_idx = unflatten(i, block);
        k.call(params);
    }
}

}  // namespace

ThreadState& current() { return *t_state; }

void syncthreads() {
    Block* b = t_block;
    if (b == nullptr) throw BarrierInPlainKernel{};
    swapcontext(&b->running->ctx, &b->scheduler);
}

}  // namespace ss_emu

using namespace ss_emu;

static void set_error(char* err, size_t len, const std::string& msg) {
    if (len == 0) return;
    std::snprintf(err, len, "%s", msg.c_str());
}

// Number of parameters of a kernel, or -1 if the emulator has no such kernel.
extern "C" int ss_emu_kernel_params(const char* name) {
    const KernelEntry* k = find_kernel(name);
    return k ? (int)k->params : -1;
}

// Launches `name` over grid x block with the given parameters (pointers to
// each argument's value, as cuLaunchKernel takes them). order: 0 forward,
// 1 reverse, 2 shuffled by `seed`, applied to the order in which blocks are
// picked up by the workers (with several workers, blocks also run at the same
// time) and to the order of the threads in every phase of a block. Returns 0,
// or -1 with a message in err.
extern "C" int ss_emu_launch(const char* name, const unsigned grid_in[3], const unsigned block_in[3], void** params,
                             unsigned nparams, unsigned order, unsigned long long seed, unsigned workers, char* err,
                             size_t errlen) {
    const KernelEntry* k = find_kernel(name);
    if (k == nullptr) {
        set_error(err, errlen, std::string("the emulator has no kernel named ") + name);
        return -1;
    }
    if (nparams != k->params) {
        set_error(err, errlen, std::string(name) + " takes " + std::to_string(k->params) + " parameters, got " +
                                   std::to_string(nparams));
        return -1;
    }
    dim3 grid{grid_in[0], grid_in[1], grid_in[2]}, block{block_in[0], block_in[1], block_in[2]};
    uint64_t blocks = uint64_t(grid.x) * grid.y * grid.z;
    uint64_t threads = uint64_t(block.x) * block.y * block.z;
    // CUDA's limits: 1024 threads per block, 2^31 - 1 blocks in x, 65535 in y and z.
    if (blocks == 0 || threads == 0 || threads > 1024 || grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535) {
        set_error(err, errlen, std::string(name) + ": invalid launch shape");
        return -1;
    }
    std::vector<unsigned> block_order;
    arrange(block_order, (unsigned)blocks, order, seed);
    if (workers == 0) workers = 1;
    if (workers > blocks) workers = (unsigned)blocks;

    std::atomic<uint64_t> next{0};
    std::atomic<bool> failed{false};
    std::mutex error_lock;
    std::string error;
    auto work = [&]() {
        StackPool pool;
        try {
            for (;;) {
                uint64_t i = next.fetch_add(1);
                if (i >= blocks || failed.load()) break;
                unsigned b = block_order[i];
                if (k->barrier)
                    run_barrier_block(*k, params, grid, block, b, order, seed, pool);
                else
                    run_plain_block(*k, params, grid, block, b, order, seed);
            }
        } catch (const BarrierInPlainKernel&) {
            std::lock_guard<std::mutex> g(error_lock);
            failed = true;
            error = std::string(name) + " called __syncthreads() but the emulator's table registers it without barriers";
        } catch (const std::exception& e) {
            std::lock_guard<std::mutex> g(error_lock);
            failed = true;
            error = std::string(name) + ": " + e.what();
        }
    };
    if (workers == 1) {
        work();
    } else {
        std::vector<std::thread> pool;
        for (unsigned w = 0; w < workers; w++) pool.emplace_back(work);
        for (std::thread& t : pool) t.join();
    }
    if (failed) {
        set_error(err, errlen, error);
        return -1;
    }
    return 0;
}
