import { EventEmitter, once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { Scope, ScopeClosedError } from '../../src/lifecycle/index.ts';
import { FakeClock } from '../../src/testing/index.ts';

describe('Scope', () => {
  it('releases resources newest first', async () => {
    const order: string[] = [];
    const scope = new Scope();
    scope.add(() => order.push('a'));
    scope.add({ close: () => order.push('b') });
    scope.add({ [Symbol.asyncDispose]: async () => void order.push('c') });
    await scope.close();
    expect(order).toEqual(['c', 'b', 'a']);
  });

  it('clears timers and intervals on close', async () => {
    const clock = new FakeClock();
    const scope = new Scope({ clock });
    let ticks = 0;
    scope.setInterval(() => ticks++, 10);
    scope.setTimeout(() => ticks++, 1_000);
    clock.advance(35);
    expect(ticks).toBe(3);
    await scope.close();
    expect(clock.pending).toBe(0);
    clock.advance(10_000);
    expect(ticks).toBe(3);
  });

  it('forgets a timer once it fired', () => {
    const clock = new FakeClock();
    const scope = new Scope({ clock });
    scope.setTimeout(() => {}, 5);
    expect(scope.size).toBe(1);
    clock.advance(5);
    expect(scope.size).toBe(0);
  });

  it('removes listeners from emitters and event targets on close', async () => {
    const emitter = new EventEmitter();
    const controller = new AbortController();
    const scope = new Scope();
    let aborted = 0;
    scope.on(emitter, 'x', () => {});
    scope.on(controller.signal, 'abort', () => aborted++);
    expect(emitter.listenerCount('x')).toBe(1);
    await scope.close();
    expect(emitter.listenerCount('x')).toBe(0);
    controller.abort();
    expect(aborted).toBe(0);
  });

  it('closes child scopes with the parent, and a closed child detaches', async () => {
    const parent = new Scope({ name: 'p' });
    const order: string[] = [];
    const a = parent.child('a');
    a.add(() => order.push('a'));
    const b = parent.child('b');
    b.add(() => order.push('b'));
    await b.close();
    expect(parent.size).toBe(1);
    await parent.close();
    expect(order).toEqual(['b', 'a']);
  });

  it('releases every resource even when some fail, then throws them together', async () => {
    const scope = new Scope();
    let released = 0;
    scope.add(() => released++);
    scope.add(() => {
      throw new Error('one');
    });
    scope.add(async () => {
      throw new Error('two');
    });
    await expect(scope.close()).rejects.toBeInstanceOf(AggregateError);
    expect(released).toBe(1);
  });

  it('refuses new resources once closed, releasing them at once', async () => {
    const scope = new Scope({ name: 'done' });
    await scope.close();
    let released = false;
    expect(() => scope.add(() => (released = true))).toThrow(ScopeClosedError);
    expect(released).toBe(true);
  });

  it('is closed from the first release on, so what a release adds is released at once', async () => {
    const clock = new FakeClock();
    const scope = new Scope({ clock });
    const bus = new EventEmitter();
    let closedInside: boolean | undefined;
    const refused: unknown[] = [];
    scope.add(() => {
      closedInside = scope.closed;
      for (const add of [() => scope.on(bus, 'x', () => {}), () => scope.setTimeout(() => {}, 100)]) {
        try {
          add();
        } catch (err) {
          refused.push(err);
        }
      }
    });
    await scope.close();
    expect(closedInside).toBe(true);
    expect(refused).toEqual([expect.any(ScopeClosedError), expect.any(ScopeClosedError)]);
    expect(bus.listenerCount('x')).toBe(0);
    expect(clock.pending).toBe(0);
    expect(scope.size).toBe(0);
  });

  it('swallows the async failure of a resource added to a closed scope (no unhandled rejection)', async () => {
    const scope = new Scope();
    await scope.close();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      let closed = false;
      const resource = {
        close: async () => {
          closed = true;
          throw new Error('close failed');
        },
      };
      expect(() => scope.add(resource)).toThrow(ScopeClosedError);
      expect(closed).toBe(true);
      // Unhandled rejections are reported once the microtask queue drains; a macrotask turn is past that.
      await new Promise<void>((resolve) => setImmediate(resolve));
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
  });

  it('works with await using', async () => {
    const server = createServer();
    {
      await using scope = new Scope();
      scope.add({ close: () => new Promise<void>((r) => server.close(() => r())) });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      expect(server.listening).toBe(true);
    }
    expect(server.listening).toBe(false);
  });

  it("destroys a net socket it owns on close, through the stream's Symbol.asyncDispose", async () => {
    const server = createServer((s) => s.on('error', () => {}));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    let socket: Socket;
    {
      await using scope = new Scope();
      socket = scope.add(connect((server.address() as { port: number }).port, '127.0.0.1'));
      await once(socket, 'connect');
    }
    expect(socket.destroyed).toBe(true);
    // The server closes once its side of the connection has ended too; the leak check then finds no socket left.
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('names the option in a TypeError', () => {
    expect(() => new Scope({ name: '' })).toThrow(/option "name"/);
    expect(() => new Scope({ clock: {} as never })).toThrow(/option "clock"/);
  });
});
