/**
 * The spin-wait hint.
 *
 * Kernel counterpart: `cpu_relax()` (`arch/x86/include/asm/vdso/processor.h`, the x86 `pause`
 * instruction). `Atomics.pause` (ES2026; Node 24+, Chrome 133+) tells the CPU that this thread
 * is spinning on a shared word: the core backs off briefly instead of flooding the memory system
 * with loads, and a sibling hyperthread gets the execution units. Where the runtime lacks it (Node
 * 20 and 22) the hint is a no-op, and the spin loops behave as before.
 *
 * @module
 */

/** `Atomics` with the ES2026 method this module feature-detects (the ES2023 lib lacks it). */
type AtomicsWithPause = typeof Atomics & { readonly pause?: (iterationNumber?: number) => void };

const atomicsPause = (Atomics as AtomicsWithPause).pause;

/**
 * One iteration's spin-wait hint (`cpu_relax`): `Atomics.pause()` where the runtime has it, else
 * nothing. Resolved once, when the module loads. Context: any thread; never blocks.
 */
export const cpuRelax: () => void =
  typeof atomicsPause === 'function' ? atomicsPause : () => undefined;
