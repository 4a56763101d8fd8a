import { Kernel, PAGE_SIZE, remapPartial } from '@sabvm/core';
const kernel = Kernel.boot({ memoryBytes: 80 * 2**20 });
const size = 64 * 2**20;
const kaddr = kernel.vmallocUser(size);
const mm = kernel.createAddressSpace();
const u = mm.mmap(0, size, 3, 1);
console.log(remapPartial(mm.findVma(u), u, kaddr, size), kernel.stats().pageTableFrames);
const offs = Int32Array.from({ length: 16384 }, () => Math.floor(Math.random() * size / 4) * 4);
const raw = new Int32Array(size / 4);
function g() { let s = 0; for (let j = 0; j < offs.length; j++) s = (s + mm.getUser32(u + offs[j])) | 0; return s; }
function r() { let s = 0; for (let j = 0; j < offs.length; j++) s = (s + raw[offs[j] >>> 2]) | 0; return s; }
for (const [n, f] of [['g', g], ['r', r], ['g', g], ['r', r]]) {
  for (let i = 0; i < 50; i++) f();
  const t = performance.now(); for (let i = 0; i < 200; i++) f();
  console.log(n, ((performance.now() - t) / 200 / 16384 * 1e6).toFixed(2), 'ns/read');
}
mm.getUser32(u);
console.log(mm.tlb && mm.tlb.huge.slice((u >>> 22), (u>>>22) + 4), mm.tlb?.gen);
const tlb = mm.tlb;
function t2() { let s = 0; for (let j = 0; j < offs.length; j++) s = (s + tlb.read(u + offs[j])) | 0; return s; }
const i32 = new Int32Array(kernel.handle.buffer);
function t3() { let s = 0; for (let j = 0; j < offs.length; j++) { s = (s + i32[1048576 + (offs[j]>>>2)]) | 0; Atomics.load(i32, 5); } return s; }
function t4() { let s = 0; for (let j = 0; j < offs.length; j++) { s = (s + i32[1048576 + (offs[j]>>>2)]) | 0; } return s; }
for (const [n, f] of [['tlb.read', t2], ['i32+atomics', t3], ['i32', t4], ['tlb.read', t2], ['i32+atomics', t3], ['i32', t4]]) {
  for (let i = 0; i < 50; i++) f();
  const t = performance.now(); for (let i = 0; i < 200; i++) f();
  console.log(n, ((performance.now() - t) / 200 / 16384 * 1e6).toFixed(2), 'ns/read');
}
const addrs = Float64Array.from(offs, (o) => u + o); const out = new Int32Array(offs.length);
function v() { mm.getUser32v(addrs, out); let s = 0; for (let j = 0; j < out.length; j++) s = (s + out[j]) | 0; return s; }
console.log(v() === g(), v() === r());
for (const [n, f] of [['v', v], ['r', r], ['v', v], ['r', r]]) {
  for (let i = 0; i < 50; i++) f();
  const t = performance.now(); for (let i = 0; i < 200; i++) f();
  console.log(n, ((performance.now() - t) / 200 / 16384 * 1e6).toFixed(2), 'ns/read');
}
const hugeT = mm.tlb.huge;
function w() { let s = 0; for (let j = 0; j < addrs.length; j++) { const a = addrs[j]; const sl = hugeT[a >>> 22]; s = (s + i32[sl - 1 + ((a & 0x3fffff) >>> 2)]) | 0; } return s; }
const offsI = Int32Array.from(offs);
function w2() { let s = 0; for (let j = 0; j < offsI.length; j++) { s = (s + i32[1048576 + (offsI[j] >>> 2)]) | 0; } return s; }
function w3() { let s = 0; for (let j = 0; j < offsI.length; j++) { s = (s + raw[(offsI[j] >>> 2)]) | 0; } return s; }
for (const [n, f] of [['inline', w], ['sab', w2], ['raw', w3], ['inline', w], ['sab', w2], ['raw', w3]]) {
  for (let i = 0; i < 50; i++) f();
  const t = performance.now(); for (let i = 0; i < 200; i++) f();
  console.log(n, ((performance.now() - t) / 200 / 16384 * 1e6).toFixed(2), 'ns/read');
}
