import { describe, expect, it } from 'vitest';
import { extractUrls, MAX_URLS_PER_POST } from '../../src/services/previews/extract.ts';
import { parseTitle } from '../../src/services/previews/fetch-title.ts';

describe('extractUrls', () => {
  it('finds http(s) URLs, trims trailing punctuation and drops fragments and duplicates', () => {
    expect(extractUrls('see https://a.example/x?y=1#frag, and (http://b.example/). again https://a.example/x?y=1.')).toEqual([
      'https://a.example/x?y=1',
      'http://b.example/',
    ]);
  });

  it('ignores other schemes and URLs with credentials', () => {
    expect(extractUrls('ftp://a.example file:///etc/passwd javascript:alert(1) https://u:p@c.example/')).toEqual([]);
  });

  it(`keeps at most ${MAX_URLS_PER_POST} URLs`, () => {
    const body = Array.from({ length: 10 }, (_, i) => `https://h${i}.example/`).join(' ');
    expect(extractUrls(body)).toHaveLength(MAX_URLS_PER_POST);
  });
});

describe('parseTitle', () => {
  it('decodes entities and collapses whitespace', () => {
    expect(parseTitle('<head><title>\n  Caf&eacute; &amp; &#x42;ar\t</title>')).toBe('Caf&eacute; & Bar');
  });

  it('returns null without a title', () => {
    expect(parseTitle('<html></html>')).toBeNull();
    expect(parseTitle('<title>   </title>')).toBeNull();
  });
});
