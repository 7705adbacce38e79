import type { AddressInfo } from 'node:net';
import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type ConnectionSink, HttpConnection } from '../../src/load/client.ts';

let server: Server | undefined;
const peers: Socket[] = [];
afterEach(async () => {
  for (const p of peers) p.destroy();
  peers.length = 0;
  if (server) await new Promise((r) => server!.close(r));
  server = undefined;
});

/** A raw server that answers each request with the next canned response, written in `pieces`-byte fragments. */
async function raw(responses: string[], pieces = 0): Promise<number> {
  server = createServer((s) => {
    peers.push(s);
    s.on('data', () => {
      const r = Buffer.from(responses.shift() ?? '');
      if (!pieces) s.write(r);
      else for (let i = 0; i < r.length; i += pieces) s.write(r.subarray(i, i + pieces));
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

function collect(port: number, n: number): Promise<{ status: number; bytes: number }[]> {
  return new Promise((resolve) => {
    const got: { status: number; bytes: number }[] = [];
    const sink: ConnectionSink = {
      ready: (c) => c.write(Buffer.from('GET / HTTP/1.1\r\nhost: x\r\n\r\n'), 0, 0),
      response: (c, status, bytes) => {
        got.push({ status, bytes });
        if (got.length === n) void c.close().then(() => resolve(got));
        else c.write(Buffer.from('GET / HTTP/1.1\r\nhost: x\r\n\r\n'), 0, 0);
      },
      failed: () => {},
    };
    new HttpConnection(0, '127.0.0.1', port, sink);
  });
}

describe('HttpConnection', () => {
  it('parses content-length and chunked responses, even split into 3-byte fragments', async () => {
    const cl = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello';
    const chunked = 'HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n';
    const port = await raw([cl, chunked, 'HTTP/1.1 204 No Content\r\n\r\n'], 3);
    const got = await collect(port, 3);
    expect(got.map((g) => g.status)).toEqual([200, 404, 204]);
    expect(got[0]!.bytes).toBe(cl.length);
    expect(got[1]!.bytes).toBe(chunked.length);
  });

  it('parses several pipelined responses arriving in one chunk', async () => {
    const one = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok';
    server = createServer((s) => {
      peers.push(s);
      let n = 0;
      s.on('data', (d) => {
        n += d.toString().split('GET').length - 1;
        if (n === 3) s.write(one + one + one);
      });
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const statuses = await new Promise<number[]>((resolve) => {
      const got: number[] = [];
      const req = Buffer.from('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
      new HttpConnection(0, '127.0.0.1', port, {
        ready: (c) => {
          for (let i = 0; i < 3; i++) c.write(req, i, i);
        },
        response: (c, status) => {
          got.push(status);
          expect(c.intended.shift()).toBe(got.length - 1);
          c.sent.shift();
          if (got.length === 3) void c.close().then(() => resolve(got));
        },
        failed: () => {},
      });
    });
    expect(statuses).toEqual([200, 200, 200]);
  });

  it('reports requests lost when the server drops the connection', async () => {
    server = createServer((s) => {
      peers.push(s);
      s.on('data', () => s.destroy());
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const lost = await new Promise<number>((resolve) => {
      const conn = new HttpConnection(0, '127.0.0.1', port, {
        ready: (c) => c.write(Buffer.from('GET / HTTP/1.1\r\nhost: x\r\n\r\n'), 0, 0),
        response: () => {},
        failed: (_c, n) => {
          if (n > 0) void conn.close().then(() => resolve(n));
        },
      });
    });
    expect(lost).toBe(1);
  });

  it('writes requests pipelined behind a Connection: close response again on a new connection', async () => {
    let connections = 0;
    server = createServer((s) => {
      peers.push(s);
      connections++;
      // Answers the first request of each connection, then closes it (as node:http does).
      s.once('data', () => s.end('HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok'));
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const failures: number[] = [];
    const intended = await new Promise<number[]>((resolve) => {
      const got: number[] = [];
      const req = Buffer.from('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
      let first = true;
      new HttpConnection(0, '127.0.0.1', port, {
        ready: (c) => {
          if (!first) return;
          first = false;
          for (let i = 0; i < 3; i++) c.write(req, i, i);
        },
        response: (c) => {
          got.push(c.intended.shift()!);
          c.sent.shift();
          if (got.length === 3) void c.close().then(() => resolve(got));
        },
        failed: (_c, lost) => failures.push(lost),
      });
    });
    expect(intended).toEqual([0, 1, 2]);
    expect(failures).toEqual([]);
    expect(connections).toBe(3);
  });
});
