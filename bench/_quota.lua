-- wrk script of the benchmarks: POST one body exactly QUOTA times, then report and stop.
--
--   wrk -t1 -cC -dT -s bench/_quota.lua -H 'Header: value' URL -- QUOTA BODY_FILE
--
-- wrk alone runs for a fixed time, drops the requests still in flight when it ends
-- and counts only statuses > 399 as errors. A benchmark that compares two servers
-- on the same number of requests, and then checks that every 201 is a stored row,
-- needs more: this script sends exactly QUOTA requests, waits for every answer,
-- counts each status code and prints
--
--   BENCH_STATUS <code> <count>                (one line per status code seen)
--   BENCH_DONE <first> <last> <sent> <received>
--
-- where first/last are CLOCK_MONOTONIC seconds of the first request and the last
-- answer. Its counters live in one thread's Lua state: run it with -t1.

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]])

local CLOCK_MONOTONIC = 1
-- Long enough to outlast any round: a parked connection must never send again.
local PARK_MS = 3600 * 1000
local timespec = ffi.new("bench_timespec")

local function now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) * 1e-9
end

local quota, payload
local reserved, received = 0, 0
local first = nil
local statuses = {}

function init(args)
  quota = assert(tonumber(args[1]), "QUOTA missing")
  local file = assert(io.open(args[2], "rb"))
  local body = file:read("*a")
  file:close()
  -- nil path and headers: the URL's path and the -H headers.
  payload = wrk.format("POST", nil, nil, body)
end

-- wrk calls delay() before every request, a connection's first one included, so
-- taking a ticket here caps the requests at QUOTA however many connections race.
function delay()
  if reserved >= quota then
    return PARK_MS
  end
  reserved = reserved + 1
  if first == nil then
    first = now()
  end
  return 0
end

-- Not a place to count requests: wrk also calls it once at start, to check the script.
function request()
  return payload
end

function response(status, headers, body)
  received = received + 1
  statuses[status] = (statuses[status] or 0) + 1
  if received < quota then
    return
  end
  for code, count in pairs(statuses) do
    io.write(string.format("BENCH_STATUS %d %d\n", code, count))
  end
  io.write(string.format("BENCH_DONE %.6f %.6f %d %d\n", first, now(), reserved, received))
  io.flush()
  wrk.thread:stop()
end
