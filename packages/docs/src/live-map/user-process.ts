/**
 * A user process of the live memory map: the code a Web Worker runs. It attaches the kernel
 * once, finds its address space by id, and writes into its mapped pages through
 * `mm.segments(…, { write: true })` — zero-copy views straight into the frames, so the main
 * thread's picture of physical memory changes while it writes. Each page is written inside a read
 * section, so frames the main thread releases meanwhile wait for a grace period instead of being
 * reused under the views.
 *
 * Main thread and worker share only this protocol (as tinypool separates them): the worker file
 * (`.vitepress/theme/user-process.worker.ts`) wires {@link createUserProcess} to its message port.
 *
 * @module
 */
import {
  BusError,
  Kernel,
  PAGE_SIZE,
  SegmentationFault,
  type AddressSpace,
  type KernelHandle,
} from '@sabvm/core';

/** Messages from the main thread to a user process. */
export type ToUserProcess =
  | { readonly type: 'attach'; readonly handle: KernelHandle; readonly mmId: number }
  | {
      readonly type: 'write';
      readonly seq: number;
      readonly uaddr: number;
      readonly length: number;
      /** The byte written everywhere in the range (1…255, so the frames visibly fill). */
      readonly value: number;
      /** Pause after each page so a reader can watch the frames fill; 0 for none. */
      readonly delayMs: number;
    }
  /** Stop writing, detach from the kernel (its thread slot is given back), then `exited`. */
  | { readonly type: 'exit' };

/** Messages from a user process to the main thread. */
export type FromUserProcess =
  | { readonly type: 'attached'; readonly mmId: number; readonly tid: number }
  | { readonly type: 'progress'; readonly seq: number; readonly written: number }
  | { readonly type: 'done'; readonly seq: number; readonly written: number }
  | {
      readonly type: 'fault';
      readonly seq: number;
      readonly written: number;
      readonly code: string;
      readonly address: number;
    }
  /** A failure that is not a fault; `seq` 0 when it is not about a write. */
  | { readonly type: 'error'; readonly seq: number; readonly message: string }
  | { readonly type: 'exited' };

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const messageOf = (error: unknown): string =>
  error instanceof Error ? error.message : String(error);

/**
 * The message handler of one user process; `post` sends a message back to the main thread, and
 * `close` (default: nothing) ends the worker after an `exit`. The returned handler never rejects:
 * a write that touches a page with no PTE (or a read-only one) stops at that page and reports the
 * `SegmentationFault` or `BusError` as a `fault` message; any other failure is an `error` message.
 * Context: a worker thread (or any thread, in tests); never blocks, pauses with timers.
 */
export function createUserProcess(
  post: (message: FromUserProcess) => void,
  close: () => void = () => undefined,
): (message: ToUserProcess) => Promise<void> {
  let kernel: Kernel | null = null;
  let mm: AddressSpace | null = null;
  let exited = false;

  const write = async (
    seq: number,
    uaddr: number,
    length: number,
    value: number,
    delayMs: number,
  ): Promise<void> => {
    let written = 0;
    try {
      while (written < length && !exited) {
        const chunk = Math.min(PAGE_SIZE, length - written);
        const at = uaddr + written;
        if (kernel === null || mm === null) throw new Error('write before attach');
        const space = mm;
        kernel.readSection(() => {
          for (const view of space.segments(at, chunk, { write: true })) view.fill(value);
        });
        written += chunk;
        post({ type: 'progress', seq, written });
        if (delayMs > 0 && written < length) await pause(delayMs);
      }
      if (!exited) post({ type: 'done', seq, written });
    } catch (error) {
      if (exited) return;
      if (error instanceof SegmentationFault || error instanceof BusError) {
        post({ type: 'fault', seq, written, code: error.code, address: error.address });
      } else {
        post({ type: 'error', seq, message: messageOf(error) });
      }
    }
  };

  return async (message) => {
    switch (message.type) {
      case 'attach':
        try {
          kernel = Kernel.attach(message.handle);
          mm = kernel.addressSpace(message.mmId);
          post({ type: 'attached', mmId: message.mmId, tid: kernel.tid });
        } catch (error) {
          post({ type: 'error', seq: 0, message: `attach failed: ${messageOf(error)}` });
        }
        return;
      case 'write':
        await write(message.seq, message.uaddr, message.length, message.value, message.delayMs);
        return;
      case 'exit':
        exited = true;
        kernel?.detach();
        kernel = null;
        mm = null;
        post({ type: 'exited' });
        close();
        return;
    }
  };
}
