//! The Lua scripts of cluster mode: everything that must be atomic runs as one script on
//! Redis. redis-rs sends them by `EVALSHA` and reloads them on `NOSCRIPT` (a restarted or
//! `SCRIPT FLUSH`ed Redis). Each script touches keys of one tenant only, all hash-tagged with
//! the tenant, so it runs on one slot of a Redis Cluster too.

use std::sync::LazyLock;

use redis::Script;

/// Look an entry up and, unless a fresh one is there, try to take the fill lease.
/// KEYS: entry, lease, epoch. ARGV: token, lease ms, now ms, newer-than ms (-1: any).
/// Returns `{verdict, value or "", epoch}` with verdict `found`, `lead` or `follow`.
pub(super) static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local e = redis.call('HMGET', KEYS[1], 'v', 't', 'f')
local epoch = redis.call('GET', KEYS[3]) or '0'
if e[1] and tonumber(e[3]) > tonumber(ARGV[3]) and tonumber(e[2]) > tonumber(ARGV[4]) then
  return {'found', e[1], epoch}
end
local stale = e[1] or ''
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {'lead', stale, epoch}
end
return {'follow', stale, epoch}
",
    )
});

/// Store an entry, fenced: refused when the key was invalidated since the fill started (epoch
/// moved), when another replica now holds the lease, or when a newer entry is there.
/// KEYS: entry, lease, epoch. ARGV: value, ttl ms, created ms, fresh-until ms, epoch ("" = no
/// check), token ("" = none). Returns 1 stored, 0 invalidated, -1 lease lost, -2 older.
pub(super) static PUT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if ARGV[5] ~= '' and (redis.call('GET', KEYS[3]) or '0') ~= ARGV[5] then return 0 end
local lease = redis.call('GET', KEYS[2])
if ARGV[6] ~= '' and lease and lease ~= ARGV[6] then return -1 end
local t = redis.call('HGET', KEYS[1], 't')
if t and tonumber(t) > tonumber(ARGV[3]) then return -2 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 't', ARGV[3], 'f', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if ARGV[6] ~= '' and lease == ARGV[6] then redis.call('DEL', KEYS[2]) end
return 1
",
    )
});

/// Extend the lease while the fill runs, if it is still ours. KEYS: lease. ARGV: token, ms.
pub(super) static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
",
    )
});

/// Give the lease up, if it is still ours. KEYS: lease. ARGV: token.
pub(super) static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
",
    )
});

/// What a waiting replica checks: the entry's value and freshness, and whether a lease is
/// still held. KEYS: entry, lease. Returns `{value or "", fresh-until ms, lease exists}`.
pub(super) static PEEK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local e = redis.call('HMGET', KEYS[1], 'v', 'f')
return {e[1] or '', tonumber(e[2] or '0'), redis.call('EXISTS', KEYS[2])}
",
    )
});

/// Drop an entry and move its epoch on, so a fill that started before cannot store.
/// KEYS: entry, epoch. ARGV: epoch ttl ms.
pub(super) static INVALIDATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])
",
    )
});

/// GCRA on Redis's own clock, one permit, spent only when granted; a cluster-wide pause first.
/// KEYS: theoretical arrival time, pause. ARGV: emission interval µs, burst.
/// Returns `{1, 0}` granted, `{0, µs}` not before, `{2, µs}` paused for.
pub(super) static GCRA: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if paused > now then return {2, paused - now} end
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if allow_at > now then return {0, allow_at - now} end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return {1, 0}
",
    )
});

/// Pause a tenant's hydrates cluster-wide until now + ARGV[1] ms (never shortening a pause).
/// KEYS: pause.
pub(super) static PAUSE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local untl = now + tonumber(ARGV[1]) * 1000
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur >= untl then return 0 end
redis.call('SET', KEYS[1], string.format('%.0f', untl), 'PX', ARGV[1])
return 1
",
    )
});

/// Announce this replica and count the live ones. KEYS: replicas (a sorted set). ARGV:
/// replica id, liveness ms. Returns the number alive, this one included.
pub(super) static HEARTBEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return redis.call('ZCARD', KEYS[1])
",
    )
});
