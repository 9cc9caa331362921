// Bounds-checked access to a program's linear memory. Every pointer comes from the program and
// is untrusted: an access outside the memory throws Fault, which the system call turns into
// EFAULT. The buffer is fetched again whenever the memory grew or was replaced (a restore).

import type { MemoryAccess } from '../wasm/host-calls.ts';
import { fsError } from './errno.ts';

export class Fault extends Error {
  constructor(ptr: number, len: number) {
    super(`bad pointer ${ptr}+${len}`);
    this.name = 'Fault';
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true });

export class Mem {
  private buffer: ArrayBufferLike | undefined;
  private dv = new DataView(new ArrayBuffer(0));
  private u8 = new Uint8Array(0);

  constructor(private readonly access: MemoryAccess) {}

  private refresh(): void {
    const b = this.access.memory().buffer;
    if (b !== this.buffer) {
      this.buffer = b;
      this.dv = new DataView(b);
      this.u8 = new Uint8Array(b);
    }
  }

  /** Throws Fault unless [ptr, ptr+len) lies inside the memory. */
  check(ptr: number, len: number): void {
    this.refresh();
    if (ptr < 0 || len < 0 || ptr + len > this.u8.length) throw new Fault(ptr, len);
  }

  u8get(ptr: number): number {
    this.check(ptr, 1);
    return this.u8[ptr]!;
  }

  u16(ptr: number): number {
    this.check(ptr, 2);
    return this.dv.getUint16(ptr, true);
  }

  u32(ptr: number): number {
    this.check(ptr, 4);
    return this.dv.getUint32(ptr, true);
  }

  u64(ptr: number): bigint {
    this.check(ptr, 8);
    return this.dv.getBigUint64(ptr, true);
  }

  setU8(ptr: number, v: number): void {
    this.check(ptr, 1);
    this.u8[ptr] = v;
  }

  setU16(ptr: number, v: number): void {
    this.check(ptr, 2);
    this.dv.setUint16(ptr, v, true);
  }

  setU32(ptr: number, v: number): void {
    this.check(ptr, 4);
    this.dv.setUint32(ptr, v >>> 0, true);
  }

  setU64(ptr: number, v: bigint | number): void {
    this.check(ptr, 8);
    this.dv.setBigUint64(ptr, BigInt.asUintN(64, BigInt(v)), true);
  }

  /** A copy of [ptr, ptr+len). */
  bytes(ptr: number, len: number): Uint8Array {
    this.check(ptr, len);
    return this.u8.slice(ptr, ptr + len);
  }

  write(ptr: number, data: Uint8Array): void {
    this.check(ptr, data.length);
    this.u8.set(data, ptr);
  }

  fill(ptr: number, len: number, value = 0): void {
    this.check(ptr, len);
    this.u8.fill(value, ptr, ptr + len);
  }

  /** A UTF-8 string from memory (EILSEQ if it is not valid UTF-8). */
  string(ptr: number, len: number): string {
    const raw = this.bytes(ptr, len);
    try {
      return decoder.decode(raw);
    } catch {
      throw fsError('ILSEQ', 'path is not UTF-8');
    }
  }
}
