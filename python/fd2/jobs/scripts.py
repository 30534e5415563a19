"""The Lua scripts that move a job between states atomically (one round trip, no races between
replicas): start, finish (compare-and-set of the terminal state), retry later, move due work."""

from __future__ import annotations

from typing import Final

TERMINAL: Final = frozenset({"succeeded", "failed", "cancelled", "expired"})

_IS_TERMINAL = """
local function terminal(status)
  return status == 'succeeded' or status == 'failed' or status == 'cancelled'
    or status == 'expired'
end
"""

START: Final = (
    _IS_TERMINAL
    + """
-- KEYS: job, running set. ARGV: now_ms, lease_ms, project limit, max attempts, job id.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'gone'} end
if terminal(status) then return {'done'} end
local now = tonumber(ARGV[1])
if now >= tonumber(redis.call('HGET', KEYS[1], 'expires_at_ms')) then return {'expired'} end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZSCORE', KEYS[2], ARGV[5]) then return {'held'} end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return {'busy'} end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if attempts > tonumber(ARGV[4]) then return {'exhausted'} end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[5])
redis.call('HSET', KEYS[1], 'status', 'running')
redis.call('HSETNX', KEYS[1], 'started_at', math.floor(now / 1000))
return {'run', tostring(attempts)}
"""
)

FINISH: Final = (
    _IS_TERMINAL
    + """
-- KEYS: job, running set, stream, batch (or the job again when none).
-- ARGV: status, completed_at, result, error, job id, batch count field ('' when none).
-- The one write of a job's terminal state: a second worker's write (at-least-once) loses.
local status = redis.call('HGET', KEYS[1], 'status')
if not status or terminal(status) then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'completed_at', ARGV[2])
-- The request body (a prompt, personal data) is not needed once the job has ended: a run that
-- starts later finds the job terminal. Not kept for the retention period.
redis.call('HDEL', KEYS[1], 'body')
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'result', ARGV[3]) end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[4]) end
redis.call('ZREM', KEYS[2], ARGV[5])
local project = redis.call('HGET', KEYS[1], 'project')
if redis.call('HGET', KEYS[1], 'webhook') then
  redis.call('HSET', KEYS[1], 'webhook_status', 'pending')
  redis.call('XADD', KEYS[3], '*', 'kind', 'deliver', 'project', project, 'id', ARGV[5])
end
if ARGV[6] ~= '' then
  redis.call('HINCRBY', KEYS[4], ARGV[6], 1)
  local settled = redis.call('HINCRBY', KEYS[4], 'settled', 1)
  if settled == tonumber(redis.call('HGET', KEYS[4], 'total')) then
    redis.call('XADD', KEYS[3], '*', 'kind', 'finalize', 'project', project,
      'id', redis.call('HGET', KEYS[1], 'batch_id'))
  end
end
return 1
"""
)

RETRY: Final = (
    _IS_TERMINAL
    + """
-- KEYS: job, running set, delayed set. ARGV: due_ms, member, job id, error, give back attempt.
local status = redis.call('HGET', KEYS[1], 'status')
if not status or terminal(status) then return 0 end
redis.call('HSET', KEYS[1], 'status', 'queued')
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'last_error', ARGV[4]) end
if ARGV[5] == '1' then redis.call('HINCRBY', KEYS[1], 'attempts', -1) end
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[1], ARGV[2])
return 1
"""
)

MOVE_DUE: Final = """
-- KEYS: delayed set, stream. ARGV: now_ms, how many at most.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  local work = cjson.decode(member)
  redis.call('XADD', KEYS[2], '*', 'kind', work.kind, 'project', work.project, 'id', work.id)
end
return #due
"""
