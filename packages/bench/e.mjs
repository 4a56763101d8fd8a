import { Kernel, PAGE_SIZE, remapPartial } from '@sabvm/core';
const kernel = Kernel.boot({ memoryBytes: 80 * 2**20 });
const size = 64 * 2**20;
const kaddr = kernel.vmallocUser(size);
const mm = kernel.createAddressSpace();
const u = mm.mmap(0, size, 3, 1);
remapPartial(mm.findVma(u), u, kaddr, size);
for (const v of mm.segments(u, size, { write: true })) for (let i = 0; i < v.length; i++) v[i] = i * 131;
const rawU8 = mm.read(u, size); const raw = new Int32Array(rawU8.buffer);
const offs = Int32Array.from({ length: 16384 }, () => Math.floor(Math.random() * size / 4) * 4);
const addrs = Float64Array.from(offs, (o) => u + o); const out = new Int32Array(offs.length);
function g() { let s = 0; for (let j = 0; j < offs.length; j++) s = (s + mm.getUser32(u + offs[j])) | 0; return s; }
function v() { mm.getUser32v(addrs, out); let s = 0; for (let j = 0; j < out.length; j++) s = (s + out[j]) | 0; return s; }
function r() { let s = 0; for (let j = 0; j < offs.length; j++) s = (s + raw[offs[j] >>> 2]) | 0; return s; }
console.log(g() === r(), v() === r());
for (let rep = 0; rep < 3; rep++) for (const [n, f, k] of [['getUser32', g, 16384], ['getUser32v', v, 16384], ['raw', r, 16384]]) {
  for (let i = 0; i < 50; i++) f();
  const t = performance.now(); for (let i = 0; i < 200; i++) f();
  console.log(n, ((performance.now() - t) / 200 / k * 1e6).toFixed(2), 'ns/read');
}
