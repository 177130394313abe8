-- Shared by the wrk scripts of scripts/bench-gateway.sh (proxy.lua, cerbos.lua): counts the
-- answers a script calls failures, by a key of its choosing, and writes the totals of every
-- thread to the file named by the global `out` (set in the script's init) as `key<TAB>count`
-- lines. Load it with `dofile` from the script's own folder.
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

local counts = {}
-- Count one failure under `key`. `failures` is a global of this thread's state, read by done()
-- (which runs in the main state, where init never ran).
function count_failure(key)
  counts[key] = (counts[key] or 0) + 1
  local parts = {}
  for k, n in pairs(counts) do
    table.insert(parts, k .. "\t" .. n)
  end
  failures = table.concat(parts, "\n")
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for line in (t:get("failures") or ""):gmatch("[^\n]+") do
      local k, n = line:match("^(.-)\t(%d+)$")
      if k then total[k] = (total[k] or 0) + tonumber(n) end
    end
  end
  local path = threads[1] and threads[1]:get("out")
  local f = assert(io.open(assert(path, "no failures file given"), "w"))
  for k, n in pairs(total) do
    f:write(k .. "\t" .. n .. "\n")
  end
  f:close()
end
