// Modules by hash, least recently used first out, bounded in bytes; a module a running process
// still needs (to spawn itself again) is never dropped.
export class ModuleCache {
  private readonly entries = new Map<string, Uint8Array>();
  private bytes = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly pinned: (hash: string) => boolean,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  get(hash: string): Uint8Array | undefined {
    const v = this.entries.get(hash);
    if (v) {
      this.entries.delete(hash);
      this.entries.set(hash, v);
    }
    return v;
  }

  set(hash: string, module: Uint8Array): void {
    const old = this.entries.get(hash);
    if (old) {
      this.entries.delete(hash);
      this.bytes -= old.length;
    }
    this.entries.set(hash, module);
    this.bytes += module.length;
    for (const [h, m] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      if (h === hash || this.pinned(h)) continue;
      this.entries.delete(h);
      this.bytes -= m.length;
    }
  }
}
