// Two builds of @sabvm/core side by side in one process, interleaved rep by rep: the fair way to
// compare a change on a noisy machine. Usage (from the repo root, after building both):
//   node packages/bench/scripts/ab-core.mjs <before>/packages/core/dist/index.js <after>/packages/core/dist/index.js
// Prints, per row, the median time of each build over the reps after the first 10, and after/before.
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
const [beforePath, afterPath] = process.argv.slice(2);
if (!beforePath || !afterPath)
  throw new Error('usage: ab-core.mjs <before dist/index.js> <after dist/index.js>');
const A = await import(pathToFileURL(resolve(beforePath)).href);
const B = await import(pathToFileURL(resolve(afterPath)).href);
function setup(M) {
  const k = M.Kernel.boot({ memoryBytes: 256 * 2 ** 20 });
  const n = 16384,
    len = n * 4096;
  const kaddr = k.vmallocUser(len);
  const mm = k.createAddressSpace();
  // a hint one page past a 4 MiB boundary: every slot is cut, 4 KiB PTEs only
  return { k, kaddr, mm, len };
}
function remapCycle(M, s) {
  const u = s.mm.mmap(0x40001000, s.len, M.PROT_READ | M.PROT_WRITE, M.MAP_SHARED);
  const v = s.mm.findVma(u);
  const t0 = performance.now();
  if (M.remapPartial(v, u, s.kaddr, s.len) !== 0) throw new Error('remap');
  const t1 = performance.now();
  s.mm.munmap(u, s.len);
  const t2 = performance.now();
  return [t1 - t0, t2 - t1];
}
function getUserCycle(M, s, u, addrs) {
  const t0 = performance.now();
  let x = 0;
  for (const a of addrs) x += s.mm.getUser32(a);
  return [performance.now() - t0, x];
}
const sa = setup(A),
  sb = setup(B);
const res = {
  A: { remap: [], munmap: [], get: [], getv: [], seg: [] },
  B: { remap: [], munmap: [], get: [], getv: [], seg: [] },
};
// random reads on a mapped range
function mapFor(M, s) {
  const u = s.mm.mmap(0x80001000, s.len, M.PROT_READ | M.PROT_WRITE, M.MAP_SHARED);
  M.remapPartial(s.mm.findVma(u), u, s.kaddr, s.len);
  return u;
}
const ua = mapFor(A, sa),
  ub = mapFor(B, sb);
let seed = 1;
const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0);
const offs = Array.from({ length: 16384 }, () => (rnd() % (16384 * 1024)) * 4);
const addrsA = offs.map((o) => ua + o),
  addrsB = offs.map((o) => ub + o);
const outA = new Int32Array(16384),
  outB = new Int32Array(16384);
for (let rep = 0; rep < 120; rep++) {
  for (const [name, M, s, u, addrs, out] of [
    ['A', A, sa, ua, addrsA, outA],
    ['B', B, sb, ub, addrsB, outB],
  ]) {
    const [r, m] = remapCycle(M, s);
    res[name].remap.push(r);
    res[name].munmap.push(m);
    res[name].get.push(getUserCycle(M, s, u, addrs)[0]);
    let t0 = performance.now();
    s.mm.getUser32v(addrs, out);
    res[name].getv.push(performance.now() - t0);
    t0 = performance.now();
    for (let i = 0; i < 2000; i++) s.mm.segments(addrs[i], 4);
    res[name].seg.push(performance.now() - t0);
  }
}
const med = (a) => {
  const b = a.slice(10).sort((x, y) => x - y);
  return b[b.length >> 1];
};
for (const key of ['remap', 'munmap', 'get', 'getv', 'seg'])
  console.log(
    key.padEnd(8),
    'before',
    med(res.A[key]).toFixed(3),
    'ms  after',
    med(res.B[key]).toFixed(3),
    'ms  after/before',
    (med(res.B[key]) / med(res.A[key])).toFixed(2),
  );
