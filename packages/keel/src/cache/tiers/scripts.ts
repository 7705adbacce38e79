/**
 * The Lua scripts behind L2 writes and invalidations. Reads are a plain `MGET value clear`
 * (no script): an EVALSHA costs Redis ≈ 10 µs against ≈ 1 µs for a GET (measured with
 * INFO commandstats), and reads are the hot path. So invalidation does the work instead:
 * - `invalidateTags` deletes every key under the tags (each tag keeps an index set of its
 *   keys) and stamps the tags;
 * - writes are fenced: a write whose load began at or before a stamp of one of its tags, of
 *   its key's delete, or of a clear, is refused. Stamps only need to outlive loads in
 *   flight (`fenceMs`), except the clear stamp, which reads compare (it deletes nothing).
 * Every script publishes its bus message itself (one round trip per write).
 *
 * Scripts touch keys they derive (tag stamps, index sets), which standalone Redis and
 * Sentinel allow and Redis Cluster does not (docs/cache.md).
 */
import { createHash } from 'node:crypto';

export interface Script {
  readonly lua: string;
  readonly sha: string;
}

function script(lua: string): Script {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

/**
 * KEYS[1] value key. ARGV: 1 record, 2 px, 3 channel, 4 message ('' = none), 5 born,
 * 6 tag-stamp prefix, 7 tag-index prefix, 8 clear key, 9 delete-stamp key, 10.. tags.
 * Returns 1 when written, 0 when fenced. Also fenced: a record already there from a load
 * that began no earlier (its header's born is not smaller), so another instance's set() is
 * not overwritten by a load that started before it (r3 in the cache audit). A tie (two
 * instances' stamps in one millisecond) keeps what is there, as the stamp fences above do.
 * Only the header's first 64 bytes are read (`k1|<flags>|<born>|…`, entry.ts), not the value.
 *
 * The message is published when fenced too: the sender numbered it, and a number never
 * published reads as a lost message to every receiver, which then clears its whole L1 (r2).
 *
 * Each tag's index also loses up to 3 random members whose value key is gone (expired):
 * bounded work per write, and a tag written often but rarely invalidated keeps an index of
 * about 1.5× its live keys (each write adds one member and removes 3 × the dead fraction)
 * instead of one member per write ever made (r13).
 */
export const WRITE = script(`
local function fenced()
  if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
  return 0
end
local b = tonumber(ARGV[5])
local c = redis.call('GET', ARGV[8])
if c and tonumber(c) >= b then return fenced() end
local d = redis.call('GET', ARGV[9])
if d and tonumber(d) >= b then return fenced() end
for i = 10, #ARGV do
  local s = redis.call('GET', ARGV[6] .. ARGV[i])
  if s and tonumber(s) >= b then return fenced() end
end
local held = string.match(redis.call('GETRANGE', KEYS[1], 0, 63), '^k1|[^|]*|([^|]+)|')
if held and tonumber(held) and tonumber(held) >= b then return fenced() end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local px = tonumber(ARGV[2])
for i = 10, #ARGV do
  local k = ARGV[7] .. ARGV[i]
  for _, m in ipairs(redis.call('SRANDMEMBER', k, -3)) do
    if redis.call('EXISTS', m) == 0 then redis.call('SREM', k, m) end
  end
  redis.call('SADD', k, KEYS[1])
  if redis.call('PTTL', k) < px then redis.call('PEXPIRE', k, px) end
end
if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return 1
`);

/**
 * ARGV: 1 tag-stamp prefix, 2 tag-index prefix, 3 stamp, 4 fence ms, 5 channel, 6 message,
 * 7.. tags. Stamps each tag (keeping the later stamp) and deletes every key it indexes.
 */
export const INVALIDATE = script(`
local s = tonumber(ARGV[3])
for i = 7, #ARGV do
  local sk = ARGV[1] .. ARGV[i]
  local old = redis.call('GET', sk)
  if not old or tonumber(old) < s then redis.call('SET', sk, ARGV[3], 'PX', ARGV[4]) end
  local ik = ARGV[2] .. ARGV[i]
  local keys = redis.call('SMEMBERS', ik)
  for j = 1, #keys, 500 do
    redis.call('UNLINK', unpack(keys, j, math.min(j + 499, #keys)))
  end
  redis.call('DEL', ik)
end
if ARGV[6] ~= '' then redis.call('PUBLISH', ARGV[5], ARGV[6]) end
return 1
`);

/**
 * KEYS = value keys. ARGV: 1 stamp, 2 fence ms, 3 channel, 4 message, 5 tag-index prefix,
 * 6.. delete-stamp keys. Each key leaves the index of every tag in its record's header
 * (read from the first 1 KiB; a longer header leaves it to the pruning in WRITE).
 */
export const DELETE = script(`
for i = 1, #KEYS do
  local tags = string.match(redis.call('GETRANGE', KEYS[i], 0, 1023), '^k1|[^|]*|[^|]*|[^|]*|[^|]*|([^|]*)|')
  if tags then
    for t in string.gmatch(tags, '[^,]+') do redis.call('SREM', ARGV[5] .. t, KEYS[i]) end
  end
  redis.call('DEL', KEYS[i])
  redis.call('SET', ARGV[5 + i], ARGV[1], 'PX', ARGV[2])
end
if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return 1
`);

/** KEYS[1] clear key. ARGV: 1 stamp, 2 channel, 3 message. The stamp never expires: reads compare it. */
export const CLEAR = script(`
local old = redis.call('GET', KEYS[1])
if not old or tonumber(old) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
if ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return 1
`);

/** KEYS[1] lock key; ARGV[1] token. Deletes the lock only if this holder still owns it. */
export const UNLOCK = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);
