import { serialize } from 'node:v8';
import { MessagePort } from 'node:worker_threads';
import { PAGE_SIZE } from '@sabvm/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { taskMessageBytes, type TaskMessage } from '../src/index.js';
import { area, expectNoProcessLeft, MiB, rig, type Rig } from './harness.js';

/** Every task message Piscina posts to a thread, as structured clone serializes it. */
const posted: { bytes: number; taskBytes: number }[] = [];
type PostMessage = (this: MessagePort, message: unknown, transfer?: unknown) => void;
const proto = MessagePort.prototype as unknown as { postMessage: PostMessage };
const originalPostMessage = proto.postMessage;

function isTaskEnvelope(message: unknown): message is { task: TaskMessage } {
  const task = (message as { task?: { regs?: unknown } } | null)?.task;
  return task?.regs instanceof Float64Array;
}

describe('the task message (transport: message)', () => {
  let r: Rig;
  let kaddr: number;

  beforeAll(() => {
    r = rig(80 * MiB, 1, 'message');
    kaddr = area(r, 64 * MiB);
    proto.postMessage = function (this: MessagePort, message: unknown, transfer?: unknown): void {
      if (isTaskEnvelope(message)) {
        posted.push({
          bytes: serialize(message).length,
          taskBytes: serialize(message.task).length,
        });
      }
      originalPostMessage.call(this, message, transfer);
    };
  });
  afterAll(async () => {
    proto.postMessage = originalPostMessage;
    await r.pool.close();
  });

  it('has the same size for 4 KiB and for 64 MiB of mapped data', async () => {
    const lengths = [PAGE_SIZE, 64 * 1024, MiB, 16 * MiB, 64 * MiB];
    for (const length of lengths) {
      const info = await r.pool.run<{ ranges: { length: number }[] }>({
        areas: [{ kaddr, length }],
        name: 'describeSelf',
        arg: { label: 'same' },
      });
      expect(info.ranges[0]!.length).toBe(length);
    }
    expect(posted).toHaveLength(lengths.length);
    const sizes = new Set(posted.map((p) => p.bytes));
    expect(sizes.size).toBe(1);
    const [size] = sizes;
    expect(size).toBeLessThan(512);
    expect(posted[0]!.taskBytes).toBe(
      taskMessageBytes([{ uaddr: 0, length: 64 * MiB, prot: 3, kaddr }], { label: 'same' }),
    );
    expectNoProcessLeft(r);
  });

  it('grows with the number of mappings, not with their length', () => {
    const m = (length: number) => ({ uaddr: 2 ** 31, length, prot: 3, kaddr });
    expect(taskMessageBytes([m(PAGE_SIZE)])).toBe(taskMessageBytes([m(64 * MiB)]));
    expect(taskMessageBytes([m(PAGE_SIZE), m(PAGE_SIZE)]) - taskMessageBytes([m(PAGE_SIZE)])).toBe(
      3 * Float64Array.BYTES_PER_ELEMENT,
    );
  });
});

describe('the ring transport', () => {
  it('posts no message at all per task, whatever the size of the mapped data', async () => {
    const r = rig(80 * MiB, 1);
    const kaddr = area(r, 64 * MiB);
    const label = { label: 'same' };
    // the first task starts the thread's ring service: one Piscina message, once
    await r.pool.run({ areas: [{ kaddr, length: PAGE_SIZE }], name: 'describeSelf', arg: label });
    let messages = 0;
    proto.postMessage = function (this: MessagePort, message: unknown, transfer?: unknown): void {
      messages++;
      originalPostMessage.call(this, message, transfer);
    };
    try {
      for (const length of [PAGE_SIZE, 64 * 1024, MiB, 16 * MiB, 64 * MiB]) {
        const info = await r.pool.run<{ ranges: { length: number }[] }>({
          areas: [{ kaddr, length }],
          name: 'describeSelf',
          arg: label,
        });
        expect(info.ranges[0]!.length).toBe(length);
      }
      expect(messages).toBe(0);
    } finally {
      proto.postMessage = originalPostMessage;
    }
    expectNoProcessLeft(r);
    await r.pool.close();
  });
});
