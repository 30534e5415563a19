-- GCRA over several buckets at once, atomically: all are charged or none is.
-- KEYS: the buckets. ARGV: mode ("acquire" | "adjust"), then per bucket: interval_us,
-- capacity_us, amount (the cost to acquire, or the delta to adjust by).
-- The clock is the Redis server's, so every replica decides with the same time.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local mode = ARGV[1]
local n = #KEYS
local tats = {}
for i = 1, n do
  local stored = tonumber(redis.call('GET', KEYS[i]))
  if stored == nil or stored < now then stored = now end
  tats[i] = stored
end
if mode == 'adjust' then
  for i = 1, n do
    local interval = tonumber(ARGV[3 * i - 1])
    local delta = tonumber(ARGV[3 * i + 1])
    if delta ~= 0 then
      local tat = tats[i] + delta * interval
      if tat < now then tat = now end
      redis.call('SET', KEYS[i], string.format('%d', tat), 'PX', math.floor((tat - now) / 1000) + 1)
    end
  end
  return {1}
end
local allowed = 1
local retry = 0
local new = {}
for i = 1, n do
  local interval = tonumber(ARGV[3 * i - 1])
  local capacity = tonumber(ARGV[3 * i])
  local cost = tonumber(ARGV[3 * i + 1])
  new[i] = tats[i] + cost * interval
  local wait = new[i] - capacity - now
  if wait > 0 then
    allowed = 0
    if wait > retry then retry = wait end
  end
end
local out = {allowed, retry}
for i = 1, n do
  local interval = tonumber(ARGV[3 * i - 1])
  local capacity = tonumber(ARGV[3 * i])
  local tat = tats[i]
  if allowed == 1 then
    tat = new[i]
    redis.call('SET', KEYS[i], string.format('%d', tat), 'PX', math.floor((tat - now) / 1000) + 1)
  end
  local remaining = math.floor((capacity - (tat - now)) / interval)
  if remaining < 0 then remaining = 0 end
  out[#out + 1] = remaining
  out[#out + 1] = tat - now
end
return out
