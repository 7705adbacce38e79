import type { LookupAddress } from 'node:dns';
import { describe, expect, it } from 'vitest';
import { isForbiddenAddress, publicOnlyLookup } from '../../src/services/previews/address-policy.ts';

describe('isForbiddenAddress', () => {
  it.each([
    '127.0.0.1',
    '127.255.255.254',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '100.127.255.255',
    '0.0.0.0',
    '0.1.2.3',
    '224.0.0.1',
    '255.255.255.255',
    '::',
    '::1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:10.0.0.1',
    '::ffff:a9fe:a9fe',
    'fc00::1',
    'fd12:3456::1',
    'fe80::1',
    'febf::1',
    'ff02::1',
    '64:ff9b::10.0.0.1',
    '64:ff9b::7f00:1',
    '64:ff9b::a9fe:a9fe',
  ])('forbids %s', (address) => {
    expect(isForbiddenAddress(address)).toBe(true);
  });

  it.each([
    '93.184.216.34',
    '8.8.8.8',
    '100.63.255.255',
    '100.128.0.1',
    '172.32.0.1',
    '2606:4700::1111',
    '::ffff:8.8.8.8',
    '64:ff9b::8.8.8.8',
  ])('allows %s', (address) => {
    expect(isForbiddenAddress(address)).toBe(false);
  });

  it('forbids what is not an IP address at all', () => {
    expect(isForbiddenAddress('example.com')).toBe(true);
  });
});

describe('publicOnlyLookup', () => {
  const resolve = (host: string, all: boolean) =>
    new Promise<{ err: NodeJS.ErrnoException | null; address: string | LookupAddress[] }>((done) =>
      publicOnlyLookup(host, { all }, (err, address) => done({ err, address })),
    );

  it.each([true, false])('refuses a name that resolves to loopback (all: %s)', async (all) => {
    const { err } = await resolve('localhost', all);
    expect(err?.message).toMatch(/localhost resolves to .* not allowed/);
  });

  it('passes a resolver error through with its code', async () => {
    const { err } = await resolve('no-such-host.invalid', true);
    expect(err?.code).toBe('ENOTFOUND');
  });
});
