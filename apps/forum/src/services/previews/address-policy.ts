/**
 * Which addresses the link-preview fetcher may connect to: public unicast only. A poster
 * controls the URL, so without this a preview is a request from inside our network (SSRF).
 */
import { type LookupAddress, lookup } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

const V4 = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and the broadcast address
] as const)
  V4.addSubnet(net, bits, 'ipv4');

const V6 = new BlockList();
for (const [net, bits] of [
  ['::', 96], // unspecified, loopback and the deprecated IPv4-compatible form
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const)
  V6.addSubnet(net, bits, 'ipv6');

/** The eight 16-bit groups of an IPv6 address (zone id dropped, a trailing dotted quad folded in). */
function groups(address: string): number[] {
  let s = address.replace(/%.*$/, '');
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (quad) {
    const [a, b, c, d] = quad.slice(1).map(Number) as [number, number, number, number];
    s = `${s.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = s.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : Array<string>(8 - h.length - t.length).fill('0');
  return [...h, ...zeros, ...t].map((g) => Number.parseInt(g, 16));
}

/** The IPv4 address carried in an IPv4-mapped (::ffff:0:0/96) or NAT64 (64:ff9b::/96) address. */
function embeddedV4(g: number[]): string | undefined {
  const mapped = g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff;
  const nat64 = g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0);
  if (!mapped && !nat64) return undefined;
  const [hi, lo] = [g[6] as number, g[7] as number];
  return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
}

/**
 * True unless `address` is a public unicast IP address. Mapped and NAT64 forms are judged by
 * the IPv4 address inside them (`::ffff:127.0.0.1` reaches loopback on a dual-stack host).
 * Anything that is not an IP address is forbidden.
 */
export function isForbiddenAddress(address: string): boolean {
  const family = isIP(address.replace(/%.*$/, ''));
  if (family === 4) return V4.check(address, 'ipv4');
  if (family !== 6) return true;
  const g = groups(address);
  const v4 = embeddedV4(g);
  if (v4 !== undefined) return V4.check(v4, 'ipv4');
  return V6.check(g.map((x) => x.toString(16)).join(':'), 'ipv6');
}

/** A connect attempt refused because the name resolved to a forbidden address. */
export class ForbiddenAddressError extends Error {
  readonly code = 'ERR_FORBIDDEN_ADDRESS';
}

/**
 * `dns.lookup` for sockets that must reach only public addresses: pass it as the `lookup` of
 * a connection (undici `Agent({ connect: { lookup } })`), so the address checked is the one
 * connected to, and a name that resolves to a private address (or is re-pointed at one after
 * a first check, DNS rebinding) is refused. A name with any forbidden address is refused
 * whole, since the socket may try any of them. Literal IPs never reach a lookup: check those
 * with {@link isForbiddenAddress}.
 */
export const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  lookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
    if (err) return callback(err, '');
    const bad = addresses.find((a) => isForbiddenAddress(a.address));
    if (bad) return callback(new ForbiddenAddressError(`${hostname} resolves to ${bad.address}, which is not allowed`), '');
    if (options.all) return callback(null, addresses);
    const first = addresses[0] as LookupAddress;
    callback(null, first.address, first.family);
  });
};
