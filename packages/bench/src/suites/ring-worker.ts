/**
 * Producer thread of the `ring` suite: attaches the kernel, opens the suite's ring and its own
 * ringbuf.js ring, and each round sends OPS records of SIZE bytes to the main thread the round's
 * way (ring-protocol.ts).
 *
 * @module
 */
import { parentPort, workerData } from 'node:worker_threads';
import { EAGAIN, Kernel, RB_BATCH } from '@sabvm/core';
import { RingBuffer } from 'ringbuf.js';
import { Ctl } from './crew-protocol.js';
import { serveRounds } from './crew-worker.js';
import {
  POST_BATCH,
  RCtl,
  RMode,
  ROOM_TIMEOUT_MS,
  stampRecord,
  type RingWorkerData,
} from './ring-protocol.js';

const data = workerData as RingWorkerData;
const kernel = Kernel.attach(data.handle);
const ring = kernel.ringbuf(data.ring);
if (ring === null) throw new Error('ring worker: the suite ring is gone');
const ctl = new Int32Array(data.ctl);
const jsRing = new RingBuffer(data.ringbufjs, Uint8Array);
const port = parentPort;
if (port === null) throw new Error('ring worker: no parent port');

/** `ring.output` per record, waiting for room (back-pressure) when the ring is full. */
function output(rec: Uint8Array, ops: number, flags = 0): number {
  for (let i = 0; i < ops; i++) {
    stampRecord(rec, data.index, i);
    let rc = ring!.output(rec, flags);
    if (rc === -EAGAIN) rc = ring!.outputWait(rec, flags, ROOM_TIMEOUT_MS);
    if (rc !== 0) return rc;
  }
  // the round's last batch now, not at the end of this job (waiting for room, as outputWait)
  return ring!.flush(ROOM_TIMEOUT_MS);
}

/** `ring.reserve` + a copy into the record + `submit`, per record. */
function reserve(rec: Uint8Array, ops: number): number {
  const size = rec.length;
  for (let i = 0; i < ops; i++) {
    stampRecord(rec, data.index, i);
    const r = ring!.reserve(size) ?? ring!.reserveWait(size, ROOM_TIMEOUT_MS);
    if (r === null) return -EAGAIN;
    r.data.set(rec);
    r.submit();
  }
  return 0;
}

/** One `postMessage` per record (a structured clone of its bytes). */
function post(rec: Uint8Array, ops: number): number {
  for (let i = 0; i < ops; i++) {
    stampRecord(rec, data.index, i);
    port!.postMessage(rec);
  }
  return 0;
}

/** Records copied into a batch, one `postMessage` per {@link POST_BATCH} records. */
function postBatches(rec: Uint8Array, ops: number): number {
  const size = rec.length;
  const batch = new Uint8Array(POST_BATCH * size);
  let n = 0;
  for (let i = 0; i < ops; i++) {
    stampRecord(rec, data.index, i);
    batch.set(rec, n * size);
    if (++n === POST_BATCH) {
      port!.postMessage(batch);
      n = 0;
    }
  }
  if (n > 0) port!.postMessage(batch.subarray(0, n * size));
  return 0;
}

/** ringbuf.js `push` per record; it has no wait, so a full ring is retried at once. */
function pushJs(rec: Uint8Array, ops: number): number {
  const deadline = Date.now() + ROOM_TIMEOUT_MS;
  for (let i = 0; i < ops; i++) {
    stampRecord(rec, data.index, i);
    while (jsRing.push(rec) === 0) {
      if (Atomics.load(ctl, Ctl.ERROR) !== 0 || Date.now() > deadline) return -EAGAIN;
    }
  }
  return 0;
}

/**
 * `ring.batchReserve` per record, written in place in the handle's batch buffer (waiting for room
 * when the ring is full): the record's header bytes as {@link stampRecord} writes them.
 */
function reserveBatch(rec: Uint8Array, ops: number): number {
  const size = rec.length;
  const out = new Uint8Array(ring!.batchBuffer);
  for (let i = 0; i < ops; i++) {
    let at = ring!.batchReserve(size);
    if (at === -EAGAIN) at = ring!.batchReserveWait(size, 0, ROOM_TIMEOUT_MS);
    if (at < 0) return at;
    out[at] = data.index;
    out[at + 4] = i & 0xff;
    out[at + 5] = (i >>> 8) & 0xff;
    out[at + 6] = (i >>> 16) & 0xff;
    out[at + 7] = i >>> 24;
  }
  return ring!.flush(ROOM_TIMEOUT_MS);
}

const senders: Record<number, ((rec: Uint8Array, ops: number) => number) | undefined> = {
  [RMode.OUTPUT]: output,
  [RMode.RESERVE]: reserve,
  [RMode.POST]: post,
  [RMode.POST_BATCH]: postBatches,
  [RMode.RINGBUFJS]: pushJs,
  [RMode.OUTPUT_BATCH]: (rec, ops) => output(rec, ops, RB_BATCH),
  [RMode.RESERVE_BATCH]: reserveBatch,
};

serveRounds(data.ctl, data.times, data.index, (mode, ops) => {
  const rec = new Uint8Array(Atomics.load(ctl, RCtl.SIZE));
  const send = senders[mode];
  if (send === undefined) return -1;
  return send(rec, ops);
});
kernel.detach();
