-- wrk script of the pipeline and burst benchmarks: POST one body COUNT times at RATE
-- requests per second (a schedule, not as fast as answers come), then report and stop.
--
--   wrk -t1 -cC -dT -s bench/_paced.lua -H 'Header: value' URL -- RATE COUNT BODY_FILE
--
-- Request n is due at start + n / RATE. A connection asks delay() before each of its
-- requests; the next request of the schedule goes out on it at its time (RATE 0: at
-- once). When every connection waits for an answer the schedule slips: `behind` says by
-- how much at worst, and the achieved rate (sent / seconds) shows it. Prints
--
--   BENCH_STATUS <code> <count>
--   BENCH_DONE <first> <last> <sent> <received> <behind>
--   BENCH_LATENCY <p50_us> <p90_us> <p99_us> <max_us>     (from wrk's own histogram)
--
-- first/last are CLOCK_MONOTONIC seconds of the first request and of the last answer.

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]])

local CLOCK_MONOTONIC = 1
local PARK_MS = 3600 * 1000
local timespec = ffi.new("bench_timespec")

local function now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) * 1e-9
end

local rate, count, payload
local reserved, received = 0, 0
local first, start = nil, nil
local behind = 0
local statuses = {}

function init(args)
  rate = assert(tonumber(args[1]), "RATE missing")
  count = assert(tonumber(args[2]), "COUNT missing")
  local file = assert(io.open(args[3], "rb"))
  local body = file:read("*a")
  file:close()
  payload = wrk.format("POST", nil, nil, body)
end

function delay()
  if reserved >= count then
    return PARK_MS
  end
  local t = now()
  if start == nil then
    start = t
  end
  local due = start
  if rate > 0 then
    due = start + reserved / rate
  end
  reserved = reserved + 1
  local wait = due - t
  if wait < 0 then
    if -wait > behind then
      behind = -wait
    end
    wait = 0
  end
  if first == nil then
    first = t + wait
  end
  return math.floor(wait * 1000)
end

function request()
  return payload
end

function response(status, headers, body)
  received = received + 1
  statuses[status] = (statuses[status] or 0) + 1
  if received < count then
    return
  end
  for code, n in pairs(statuses) do
    io.write(string.format("BENCH_STATUS %d %d\n", code, n))
  end
  io.write(string.format("BENCH_DONE %.6f %.6f %d %d %.6f\n", first, now(), reserved, received, behind))
  io.flush()
  wrk.thread:stop()
end

function done(summary, latency, requests)
  io.write(string.format("BENCH_LATENCY %d %d %d %d\n", latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max))
  io.flush()
end
