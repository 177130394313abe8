-- wrk script for scripts/bench-forward-auth.sh. At a fixed, moderate request rate (wrk2 is not
-- packaged), each connection waits
-- `delay()` milliseconds before each request, so C connections send about C * 1000 / delay
-- requests per second while latencies stay far below the delay. wrk measures each request from
-- its write to its response (the wait is not counted). Same 8 GET requests as proxy.lua, all
-- allowed for the Super User token passed in `Authorization`; non-2xx answers are counted and
-- written to the file given as the first argument, the delay (ms) is the second (0: no wait, a
-- closed loop at saturation); exact latency percentiles (us) and the rate go to `<first>.json`:
--   wrk -c 10 ... -s rate.lua http://127.0.0.1:PORT -- /path/to/failures.txt 10

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "paths.lua")
dofile(here .. "failures.lua")

local wait_ms = 10

function init(args)
  out = args[1]
  failures = ""
  wait_ms = tonumber(args[2]) or 10
end

function delay()
  return wait_ms
end

local i = 0
function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end

function response(status, headers, body)
  if status >= 300 then
    local reason = (body and body:match('"reason"%s*:%s*"([^"]*)"')) or "-"
    count_failure(status .. " " .. reason)
  end
end

local count_setup = setup
local mine = {}
function setup(thread)
  count_setup(thread)
  table.insert(mine, thread)
end

local count_done = done
function done(summary, latency, requests)
  count_done(summary, latency, requests)
  local path = mine[1]:get("out") .. ".json"
  local f = assert(io.open(path, "w"))
  local e = summary.errors
  f:write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "mean_us": %.1f, ' ..
    '"errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.mean, e.connect + e.read + e.write + e.status + e.timeout))
  f:close()
end
