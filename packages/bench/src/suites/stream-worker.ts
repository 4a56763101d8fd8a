/**
 * The worker of the `ring` suite's fresh-worker stream: started for one run, it writes `count`
 * records the run's way (stream-protocol.ts), as the user's program would, then exits.
 *
 * @module
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Kernel, ringbufRecordBytes } from '@sabvm/core';
import {
  RAW_HEAD,
  RAW_PUBLISH,
  RAW_SLOTS,
  RAW_SLOTS_AT,
  RAW_TAIL,
  STREAM_BATCH,
  STREAM_BULK,
  STREAM_RECORD,
  StreamMode,
  type StreamWorkerData,
} from './stream-protocol.js';

const { mode, count, times, handle, ring, raw } = workerData as StreamWorkerData;
const started = new Float64Array(times);
const port = parentPort!;

/** sabvm: each record written in place where batchReserve says; the detach publishes the last. */
function sabvm(): void {
  const kernel = Kernel.attach(handle!);
  const rb = kernel.ringbuf(ring!)!;
  const out = new DataView(rb.batchBuffer);
  started[0] = performance.timeOrigin + performance.now();
  for (let i = 0; i < count; i++) {
    const at = rb.batchReserveWait(STREAM_RECORD, 0, 10_000); // waits only for room
    if (at < 0) throw new Error(`stream: batchReserveWait returned ${at}`);
    out.setUint32(at, i, true);
    out.setFloat64(at + 8, i, true);
  }
  kernel.detach();
}

/**
 * sabvm, a run of records at a time: batchReserveBulk takes room for STREAM_BULK records in one
 * call, and each record is written in place at its stride.
 */
function sabvmBulk(): void {
  const kernel = Kernel.attach(handle!);
  const rb = kernel.ringbuf(ring!)!;
  const out = new DataView(rb.batchBuffer);
  const stride = ringbufRecordBytes(STREAM_RECORD);
  started[0] = performance.timeOrigin + performance.now();
  for (let i = 0; i < count;) {
    const n = Math.min(STREAM_BULK, count - i);
    let at = rb.batchReserveBulkWait(STREAM_RECORD, n, 0, 10_000); // waits only for room
    if (at < 0) throw new Error(`stream: batchReserveBulkWait returned ${at}`);
    for (const end = i + n; i < end; i++, at += stride) {
      out.setUint32(at, i, true);
      out.setFloat64(at + 8, i, true);
    }
  }
  kernel.detach();
}

/** The hand-written ring: fixed slots, the head published every RAW_PUBLISH records. */
function rawRing(): void {
  const ctl = new Int32Array(raw!, 0, 32);
  const dv = new DataView(raw!, RAW_SLOTS_AT);
  let head = 0;
  let tail = 0;
  started[0] = performance.timeOrigin + performance.now();
  for (let i = 0; i < count; i++) {
    while (head - tail >= RAW_SLOTS) {
      tail = Atomics.load(ctl, RAW_TAIL);
      if (head - tail >= RAW_SLOTS) Atomics.wait(ctl, RAW_TAIL, tail, 10);
    }
    const o = (head % RAW_SLOTS) * STREAM_RECORD;
    dv.setUint32(o, i, true);
    dv.setFloat64(o + 8, i, true);
    head++;
    if (head % RAW_PUBLISH === 0) Atomics.store(ctl, RAW_HEAD, head);
  }
  Atomics.store(ctl, RAW_HEAD, head);
}

/** Batches of STREAM_BATCH records, each a new ArrayBuffer moved with a transfer list. */
function transfer(): void {
  started[0] = performance.timeOrigin + performance.now();
  for (let i = 0; i < count;) {
    const n = Math.min(STREAM_BATCH, count - i);
    const buf = new ArrayBuffer(n * STREAM_RECORD);
    const dv = new DataView(buf);
    for (let j = 0; j < n; j++, i++) {
      dv.setUint32(j * STREAM_RECORD, i, true);
      dv.setFloat64(j * STREAM_RECORD + 8, i, true);
    }
    port.postMessage(buf, [buf]);
  }
}

if (mode === StreamMode.SABVM) sabvm();
else if (mode === StreamMode.SABVM_BULK) sabvmBulk();
else if (mode === StreamMode.RAW) rawRing();
else transfer();
