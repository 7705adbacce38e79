/**
 * The Lua scripts behind L2. Each is one round trip: a read checks the entry's tags against
 * their invalidation stamps inside Redis (a second GET round trip would halve L2 throughput),
 * and writes publish their bus message in the same script.
 *
 * Scripts touch keys derived from the record (tag stamps), which standalone Redis and
 * Sentinel allow; Redis Cluster does not (documented in docs/cache.md).
 */
import { createHash } from 'node:crypto';

export interface Script {
  readonly lua: string;
  readonly sha: string;
}

function script(lua: string): Script {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

/** KEYS[1] value key; ARGV[1] tag-stamp prefix, ARGV[2] clear-stamp key. Returns the record or nil. */
export const READ = script(`
local v = redis.call('GET', KEYS[1])
if not v then return false end
local nl = string.find(v, '\\n', 1, true)
if not nl then return false end
local born, tags = string.match(string.sub(v, 1, nl - 1), '^k1|[^|]*|([^|]*)|[^|]*|[^|]*|([^|]*)|')
if not born then return false end
local b = tonumber(born)
local c = redis.call('GET', ARGV[2])
if c and tonumber(c) >= b then return false end
if tags ~= '' then
  for t in string.gmatch(tags, '[^,]+') do
    local s = redis.call('GET', ARGV[1] .. t)
    if s and tonumber(s) >= b then return false end
  end
end
return v
`);

/**
 * ARGV[1] key prefix, ARGV[2] stamp, ARGV[3] retention ms, ARGV[4] channel, ARGV[5] message
 * ('' = none), ARGV[6..] suffixes. Keeps the later stamp per key.
 */
export const STAMP = script(`
local s = tonumber(ARGV[2])
for i = 6, #ARGV do
  local k = ARGV[1] .. ARGV[i]
  local old = redis.call('GET', k)
  if not old or tonumber(old) < s then redis.call('SET', k, ARGV[2], 'PX', ARGV[3]) end
end
if ARGV[5] ~= '' then redis.call('PUBLISH', ARGV[4], ARGV[5]) end
return 1
`);

/** KEYS[1] value key; ARGV[1] record, ARGV[2] px, ARGV[3] channel, ARGV[4] message ('' = none). */
export const WRITE = script(`
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return 1
`);

/** KEYS = value keys; ARGV[1] channel, ARGV[2] message ('' = none). */
export const DELETE = script(`
for i = 1, #KEYS do redis.call('DEL', KEYS[i]) end
if ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return 1
`);

/** KEYS[1] lock key; ARGV[1] token. Deletes the lock only if this holder still owns it. */
export const UNLOCK = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);
