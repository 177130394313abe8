-- wrk script for the Cerbos PDP (scripts/bench-gateway.sh): POST /api/check/resources with
-- the check requests the script derived from rolescope's decisions on the proxies' request mix
-- (one JSON body per line of the file given as the first argument; one principal, one
-- resource, one action each), in rotation. Every answer that is not 200 with EFFECT_ALLOW is
-- counted and the counts are written to the file given as the second argument:
--   wrk ... -s cerbos.lua http://127.0.0.1:PORT -- bodies.jsonl failures.txt
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "failures.lua")

local bodies = {}
function init(args)
  -- `out` and `failures` are globals of this thread's state, read by done() (which runs in
  -- the main state, where init never ran)
  for line in io.lines(args[1]) do
    if line ~= "" then table.insert(bodies, line) end
  end
  assert(#bodies > 0, "no check requests in " .. tostring(args[1]))
  out = args[2]
  failures = ""
end

local headers = { ["Content-Type"] = "application/json" }
local i = 0
function request()
  i = i % #bodies + 1
  return wrk.format("POST", "/api/check/resources", headers, bodies[i])
end

function response(status, hdrs, body)
  local key
  if status ~= 200 then
    key = tostring(status)
  elseif not (body and body:find('"EFFECT_ALLOW"', 1, true)) then
    key = "200 EFFECT_DENY"
  end
  if key then
    count_failure(key)
  end
end
