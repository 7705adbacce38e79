import { describe, expect, it } from 'vitest';
import {
  CACHE_CONTROL,
  cacheControl,
  conditionalResponse,
  ifNoneMatch,
  strongETag,
  toCachedBody,
  vary,
  weakETag,
} from '../../src/cache/index.ts';

describe('ETags', () => {
  it('gives equal bytes equal strong ETags and different bytes different ones', () => {
    expect(strongETag('abc')).toBe(strongETag(Buffer.from('abc')));
    expect(strongETag('abc')).not.toBe(strongETag('abd'));
    expect(strongETag('abc')).toMatch(/^"[0-9a-z]+-[A-Za-z0-9_-]+"$/);
  });

  it('marks weak ETags with W/ and sanitises versions', () => {
    expect(weakETag({ version: 'r 42"' })).toBe('W/"r_42_"');
    expect(weakETag('abc')).toBe(`W/${strongETag('abc')}`);
  });
});

describe('ifNoneMatch', () => {
  const tag = '"abc"';
  it('matches the same tag', () => expect(ifNoneMatch('"abc"', tag)).toBe(true));
  it('matches with the weak comparison (W/ on either side)', () => {
    expect(ifNoneMatch('W/"abc"', tag)).toBe(true);
    expect(ifNoneMatch('"abc"', 'W/"abc"')).toBe(true);
  });
  it('matches inside a list', () => expect(ifNoneMatch('"x", W/"y" ,"abc"', tag)).toBe(true));
  it('matches * always', () => expect(ifNoneMatch(' * ', tag)).toBe(true));
  it('does not match other tags or a missing header', () => {
    expect(ifNoneMatch('"abcd", "ab"', tag)).toBe(false);
    expect(ifNoneMatch(undefined, tag)).toBe(false);
    expect(ifNoneMatch('', tag)).toBe(false);
  });
  it('reads repeated headers given as an array', () => expect(ifNoneMatch(['"x"', '"abc"'], tag)).toBe(true));
  it('keeps quoted commas intact', () => expect(ifNoneMatch('"a,b"', '"a,b"')).toBe(true));
  it('skips empty list elements and a leading comma (RFC 9110 §5.6.1)', () => {
    expect(ifNoneMatch('"x", , "abc"', tag)).toBe(true);
    expect(ifNoneMatch(', "abc"', tag)).toBe(true);
    expect(ifNoneMatch(['', '"abc"'], tag)).toBe(true);
    expect(ifNoneMatch(',,', tag)).toBe(false);
  });
});

describe('Cache-Control', () => {
  it('builds every directive', () => {
    expect(cacheControl({ visibility: 'public', maxAgeS: 5, sMaxAgeS: 30, staleWhileRevalidateS: 60, staleIfErrorS: 600 })).toBe(
      'public, max-age=5, s-maxage=30, stale-while-revalidate=60, stale-if-error=600',
    );
    expect(cacheControl({ noCache: true })).toBe('private, no-cache');
    expect(cacheControl({ noStore: true, maxAgeS: 5 })).toBe('no-store');
    expect(cacheControl({ visibility: 'public', maxAgeS: 10, mustRevalidate: true, immutable: true })).toBe(
      'public, max-age=10, must-revalidate, immutable',
    );
  });
  it('has presets', () => {
    expect(CACHE_CONTROL.privateRevalidate).toBe('private, no-cache');
    expect(CACHE_CONTROL.publicShort).toContain('s-maxage=30');
  });
});

describe('vary', () => {
  it('merges without duplicates, case-insensitively', () =>
    expect(vary('Accept-Encoding', 'authorization', 'accept-encoding')).toBe('Accept-Encoding, authorization'));
  it('lets * absorb everything', () => expect(vary('Accept', '*')).toBe('*'));
});

describe('conditionalResponse', () => {
  const cached = toCachedBody({ topics: [1, 2] });

  it('sends 200 with the cached bytes, type, length and ETag', () => {
    const r = conditionalResponse(cached, {}, { vary: ['Authorization'] });
    expect(r.status).toBe(200);
    expect(r.body).toBe(cached.body);
    expect(r.headers).toMatchObject({
      etag: cached.etag,
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(cached.body.byteLength),
      vary: 'Authorization',
      'cache-control': 'private, no-cache',
    });
  });

  it('sends 304 with no body when If-None-Match matches (Node headers or web Headers)', () => {
    const node = conditionalResponse(cached, { 'if-none-match': cached.etag });
    expect(node.status).toBe(304);
    expect(node.body).toBeUndefined();
    expect(node.headers.etag).toBe(cached.etag);
    expect(node.headers['content-length']).toBeUndefined();
    const web = conditionalResponse(cached, new Headers({ 'If-None-Match': `W/${cached.etag}` }), {
      cacheControl: CACHE_CONTROL.publicShort,
    });
    expect(web.status).toBe(304);
    expect(web.headers['cache-control']).toBe(CACHE_CONTROL.publicShort);
  });

  it('encodes strings and bytes as they are', () => {
    expect(toCachedBody('<p>hi</p>', 'text/html').body.toString()).toBe('<p>hi</p>');
    expect(toCachedBody('<p>hi</p>', 'text/html').contentType).toBe('text/html');
    expect(toCachedBody(new Uint8Array([1, 2])).contentType).toBe('application/octet-stream');
    expect(toCachedBody(null).body.toString()).toBe('null');
  });
});
