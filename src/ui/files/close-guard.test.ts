import { describe, expect, it } from 'vitest';
import { installCloseGuard, shouldWarnOnClose, soleCopiesText, type BeforeUnloadLike, type EventTargetLike } from './close-guard.ts';
import { createPersistRequester, persistLabel } from './persist.ts';

describe('shouldWarnOnClose', () => {
  it('warns only while some files exist on this peer alone', () => {
    expect(shouldWarnOnClose(undefined)).toBe(false);
    expect(shouldWarnOnClose({ soleCopies: 0 })).toBe(false);
    expect(shouldWarnOnClose({ soleCopies: 1 })).toBe(true);
    expect(soleCopiesText(1)).toBe('1 file exists only in this tab');
    expect(soleCopiesText(4)).toBe('4 files exist only in this tab');
  });
});

describe('installCloseGuard', () => {
  function target() {
    const handlers: ((e: BeforeUnloadLike) => void)[] = [];
    const t: EventTargetLike = {
      addEventListener: (_type, fn) => handlers.push(fn),
      removeEventListener: (_type, fn) => handlers.splice(handlers.indexOf(fn), 1),
    };
    const fire = () => {
      const e = { prevented: false, returnValue: undefined as unknown, preventDefault: () => (e.prevented = true) };
      for (const h of handlers) h(e);
      return e;
    };
    return { t, handlers, fire };
  }

  it('cancels the unload (and sets returnValue) while the latest snapshot has sole copies, and not otherwise', () => {
    const { t, fire } = target();
    let latest: { soleCopies: number } | undefined;
    installCloseGuard(t, () => latest);
    expect(fire().prevented).toBe(false);
    latest = { soleCopies: 2 };
    const e = fire();
    expect(e.prevented).toBe(true);
    expect(e.returnValue).toBe('2 files exist only in this tab');
    latest = { soleCopies: 0 };
    expect(fire().prevented).toBe(false);
  });

  it('can be uninstalled', () => {
    const { t, handlers } = target();
    const uninstall = installCloseGuard(t, () => ({ soleCopies: 1 }));
    expect(handlers).toHaveLength(1);
    uninstall();
    expect(handlers).toHaveLength(0);
  });
});

describe('createPersistRequester', () => {
  it('asks the browser once per page and keeps the first answer', async () => {
    let asked = 0;
    const request = createPersistRequester(() => ({ persist: async () => (++asked, false) }));
    expect(await request()).toBe('may be evicted');
    expect(await request()).toBe('may be evicted');
    expect(asked).toBe(1);
    expect(persistLabel('may be evicted')).toBe('storage: may be evicted');
  });

  it('reports persistent storage, and copes with a browser that cannot ask', async () => {
    expect(await createPersistRequester(() => ({ persist: async () => true }))()).toBe('persistent');
    expect(persistLabel('persistent')).toBe('storage: persistent');
    expect(await createPersistRequester(() => undefined)()).toBe('unsupported');
    expect(await createPersistRequester(() => ({ persist: () => Promise.reject(new Error('denied')) }))()).toBe('may be evicted');
  });
});
