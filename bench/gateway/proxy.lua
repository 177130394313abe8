-- wrk script for the three proxies (scripts/bench-gateway.sh): the same 8 GET requests in
-- rotation, all allowed for the Super User token the script passes in `Authorization`.
-- Every answer that is not 2xx is counted by status and JSON `reason` (the gateway's refusal
-- body names it), and the counts are written to the file given as the script's argument:
--   wrk ... -s proxy.lua http://127.0.0.1:PORT -- /path/to/failures.txt

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "paths.lua")
dofile(here .. "failures.lua")

function init(args)
  -- globals of this thread's state, read by done() (which runs in the main state, where
  -- init never ran)
  out = args[1]
  failures = ""
end

local i = 0
function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end

function response(status, headers, body)
  if status >= 300 then
    local reason = (body and body:match('"reason"%s*:%s*"([^"]*)"')) or "-"
    local key = status .. " " .. reason
    count_failure(key)
  end
end
