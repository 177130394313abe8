#!/usr/bin/env bash
# Gateway benchmark (not part of the test run): the demo upstream behind
#   1. rolescope-gateway enforcing (juniper-mist-msp bundle, RS256 tokens),
#   2. rolescope-gateway with `enforce: false` (passthrough: the same proxy, no decision),
#   3. Debian's nginx as a plain reverse proxy,
# all on 127.0.0.1, driven by wrk with the same mix of allowed requests and a valid token.
# Writes the `## Gateway` section of BENCHMARKS.md (replacing an earlier one).
#
# Usage: scripts/bench-gateway.sh [--duration 15s] [--threads 2] [--connections 64] [--no-write]
#                                 [--no-build]  (use the release binaries and module already built)
# Needs root (or wrk and nginx installed) for `apt-get install -y wrk nginx`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

DURATION=15s
THREADS=2
CONNECTIONS=64
WRITE=1
BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --no-write) WRITE=0; shift ;;
    --no-build) BUILD=0; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

# ---- tools
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# ---- binaries (release) and the engine module
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
if [ "$BUILD" = 1 ]; then
  cargo build --release -q -p rolescope-gateway -p rolescope-demo-upstream -p rolescope-cli
fi
BIN=$TARGET/release
# the module the npm package ships (rebuilt by the xtask when the sources changed), unless given
if [ -n "${ROLESCOPE_WASM:-}" ]; then
  MODULE=$ROLESCOPE_WASM
else
  [ "$BUILD" = 1 ] && cargo xtask wasm >&2
  MODULE=$TARGET/wasm/rolescope.wasm
fi

WORK=$(mktemp -d /tmp/rolescope-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$WORK/nginx/nginx.pid" ] && kill "$(cat "$WORK/nginx/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # url, what
  for _ in $(seq 1 600); do
    if curl -fs -o /dev/null "$1"; then return 0; fi
    sleep 0.2
  done
  echo "$2 did not come up ($1)" >&2
  exit 1
}

UP_PORT=$(free_port)
"$BIN/rolescope-demo-upstream" --listen "127.0.0.1:$UP_PORT" --log-limit 0 >"$WORK/upstream.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$UP_PORT/__health" "demo upstream"

"$BIN/rolescope" build policies/juniper-mist-msp -o "$WORK/bundle.json" >/dev/null
KEYS=$ROOT/gateway/tests/e2e/keys
ISSUER=https://idp.bench.rolescope.test
AUDIENCE=rolescope-bench
TOKEN=$("$BIN/rolescope-gateway" mint --suite policies/juniper-mist-msp/mist_msp_test.yaml --principal su \
  --key "$KEYS/signer.pem" --kid e2e-signer --issuer "$ISSUER" --audience "$AUDIENCE" --ttl 2h)

start_gateway() { # name, enforce -> sets GW_PORT, GW_PID
  local name=$1 enforce=$2
  GW_PORT=$(free_port)
  local admin
  admin=$(free_port)
  cat >"$WORK/$name.yaml" <<EOF
listen: 127.0.0.1:$GW_PORT
admin_listen: 127.0.0.1:$admin
upstream: http://127.0.0.1:$UP_PORT
module: $MODULE
enforce: $enforce
policy: { file: $WORK/bundle.json, watch: false }
identity:
  jwt: { issuer: "$ISSUER", audience: "$AUDIENCE", algorithms: [RS256], jwks_file: $KEYS/jwks.json }
decision_log: { sink: off }
EOF
  "$BIN/rolescope-gateway" serve --config "$WORK/$name.yaml" >"$WORK/$name.log" 2>&1 &
  GW_PID=$!
  PIDS+=("$GW_PID")
  wait_http "http://127.0.0.1:$admin/readyz" "gateway ($name)"
}

start_gateway enforcing true
ENF_PORT=$GW_PORT ENF_PID=$GW_PID
start_gateway passthrough false
PASS_PORT=$GW_PORT PASS_PID=$GW_PID

NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  upstream demo { server 127.0.0.1:$UP_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://demo;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
"$NGINX" -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx"
wait_http "http://127.0.0.1:$NGINX_PORT/api/v1/status" "nginx"

# the request mix: reads and a write-free action across organizations and sites, all allowed for `su`
cat >"$WORK/mix.lua" <<'EOF'
local paths = {
  "/api/v1/orgs/o1/devices/ap-11",
  "/api/v1/orgs/o2/devices",
  "/api/v1/msp/orgs",
  "/api/v1/orgs/o1/sites/s1/insights",
  "/api/v1/orgs/o3/wlans",
  "/api/v1/msp/settings",
  "/api/v1/orgs/o2",
  "/api/v1/orgs/o1/admins",
}
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
-- print the first few refusals of each thread (their JSON body names the reason)
local shown = 0
response = function(status, headers, body)
  if status >= 300 and shown < 3 then
    shown = shown + 1
    io.stderr:write("non-2xx: " .. status .. " " .. (body or "") .. "\n")
  end
end
EOF

# sanity: the token is allowed through the enforcing gateway, and a bad one is not
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$ENF_PORT/api/v1/orgs/o1/devices/ap-11")
[ "$code" = 200 ] || { echo "enforcing gateway answered $code to an allowed request" >&2; cat "$WORK/enforcing.log" >&2; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ENF_PORT/api/v1/orgs/o1/devices/ap-11")
[ "$code" = 401 ] || { echo "enforcing gateway answered $code without a token" >&2; exit 1; }

rss_one() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# rss_kb PID: resident KiB of the process and its children (nginx's workers)
rss_kb() {
  local total
  total=$(rss_one "$1")
  for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do total=$((total + $(rss_one "$c"))); done
  echo "$total"
}

# to_us VALUE: wrk latency (e.g. 812.00us, 1.23ms, 2.00s) in microseconds
to_us() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
    if (u == "us") f = 1; else if (u == "ms") f = 1000; else if (u == "s") f = 1000000; else f = 1;
    printf "%.0f", n * f }'
}

declare -A RPS P50 P99 RSS ERR TOTAL
run() { # name, port, pid (or empty)
  local name=$1 port=$2 pid=${3:-}
  # warm-up (connections, token cache, instance pools)
  wrk -t"$THREADS" -c"$CONNECTIONS" -d3s -H "Authorization: Bearer $TOKEN" -s "$WORK/mix.lua" "http://127.0.0.1:$port" >/dev/null
  local peak=0
  if [ -n "$pid" ]; then
    (
      while kill -0 "$pid" 2>/dev/null; do
        r=$(rss_kb "$pid"); [ "$r" -gt "$(cat "$WORK/rss.$name" 2>/dev/null || echo 0)" ] && echo "$r" >"$WORK/rss.$name"
        sleep 0.2
      done
    ) &
    local sampler=$!
  fi
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Bearer $TOKEN" -s "$WORK/mix.lua" \
    "http://127.0.0.1:$port" >"$WORK/wrk.$name"
  if [ -n "$pid" ]; then
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    peak=$(cat "$WORK/rss.$name" 2>/dev/null || echo 0)
  fi
  cat "$WORK/wrk.$name" >&2
  # every request of the mix is allowed: a non-2xx answer is a failure, counted in the table
  ERR[$name]=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$WORK/wrk.$name")
  ERR[$name]=${ERR[$name]:-0}
  TOTAL[$name]=$(awk '/requests in/ {print $1}' "$WORK/wrk.$name")
  RPS[$name]=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$WORK/wrk.$name")
  P50[$name]=$(to_us "$(awk '$1 == "50%" {print $2}' "$WORK/wrk.$name")")
  P99[$name]=$(to_us "$(awk '$1 == "99%" {print $2}' "$WORK/wrk.$name")")
  RSS[$name]=$(awk -v k="$peak" 'BEGIN {printf "%.1f", k / 1024}')
}

run enforcing "$ENF_PORT" "$ENF_PID"
run passthrough "$PASS_PORT" "$PASS_PID"
run nginx "$NGINX_PORT" "$(cat "$WORK/nginx/nginx.pid")"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
verdict() { if [ "$1" = 1 ]; then echo met; else echo "**missed**"; fi; }
vs_pass=$(ratio "${RPS[enforcing]}" "${RPS[passthrough]}")
vs_nginx=$(ratio "${RPS[enforcing]}" "${RPS[nginx]}")
added_p99=$(( ${P99[enforcing]} - ${P99[passthrough]} ))
ok_pass=$(awk -v r="$vs_pass" 'BEGIN {print (r >= 0.9)}')
ok_nginx=$(awk -v r="$vs_nginx" 'BEGIN {print (r >= 1.0)}')
ok_p99=$([ "$added_p99" -le 50 ] && echo 1 || echo 0)
ok_rss=$(awk -v r="${RSS[enforcing]}" 'BEGIN {print (r <= 100)}')

CPU=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
NCPU=$(nproc)
WRK_VERSION=$( (wrk -v 2>&1 || true) | head -1 | awk '{print $2}')
NGINX_VERSION=$("$NGINX" -v 2>&1 | sed 's|.*nginx/||')
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
CAVEAT=""
if awk -v l="${LOAD%% *}" -v n="$NCPU" 'BEGIN {exit !(l > n)}'; then
  CAVEAT="
**The machine was overloaded during this run** (1-minute load average ${LOAD%% *} on $NCPU vCPU, mostly
other jobs): the percentiles mostly measure scheduling delays and the ratios are noisy. Rerun
on an idle machine before drawing conclusions from the latency rows."
fi
SECTION=$(cat <<EOF
## Gateway

\`scripts/bench-gateway.sh\` ($(date -u +%Y-%m-%d), $NCPU vCPU $CPU, wrk $WRK_VERSION, nginx $NGINX_VERSION;
everything on one machine, so wrk, the proxy and the demo upstream share the cores; load
average at the end of the run: $LOAD — other jobs on the machine count in it).
wrk: $THREADS threads, $CONNECTIONS connections, $DURATION per proxy after a 3 s warm-up, the same
8 GET requests in rotation (Super User token, juniper-mist-msp bundle, all allowed) against the
demo upstream (\`rolescope-demo-upstream --log-limit 0\`). The enforcing gateway verifies the
RS256 token (cached until expiry), routes and decides in the wasm engine and writes no
decision log; passthrough is the same binary with \`enforce: false\`; nginx is a plain
\`proxy_pass\` with upstream keep-alive, 1 worker. RSS is the proxy's peak during the run
(nginx: master and worker).$CAVEAT

| proxy | requests/s | p50 | p99 | peak RSS | non-2xx / requests |
| --- | ---: | ---: | ---: | ---: | ---: |
| rolescope-gateway, enforcing | ${RPS[enforcing]} | ${P50[enforcing]} µs | ${P99[enforcing]} µs | ${RSS[enforcing]} MB | ${ERR[enforcing]} / ${TOTAL[enforcing]} |
| rolescope-gateway, passthrough | ${RPS[passthrough]} | ${P50[passthrough]} µs | ${P99[passthrough]} µs | ${RSS[passthrough]} MB | ${ERR[passthrough]} / ${TOTAL[passthrough]} |
| nginx (plain proxy) | ${RPS[nginx]} | ${P50[nginx]} µs | ${P99[nginx]} µs | ${RSS[nginx]} MB | ${ERR[nginx]} / ${TOTAL[nginx]} |

| goal | target | result | |
| --- | --- | ---: | --- |
| enforcing vs passthrough throughput | ≥ 0.9x | ${vs_pass}x | $(verdict "$ok_pass") |
| enforcing vs nginx throughput | ≥ 1.0x | ${vs_nginx}x | $(verdict "$ok_nginx") |
| p99 added by enforcement (enforcing − passthrough) | ≤ 50 µs | ${added_p99} µs | $(verdict "$ok_p99") |
| enforcing gateway RSS under load | ≤ 100 MB | ${RSS[enforcing]} MB | $(verdict "$ok_rss") |
| every request of the mix answered 2xx (all are allowed) | 0 non-2xx | ${ERR[enforcing]} | $(verdict "$([ "${ERR[enforcing]}" = 0 ] && echo 1 || echo 0)") |
EOF
)
echo "$SECTION"

if [ "$WRITE" = 1 ]; then
  python3 - "$ROOT/BENCHMARKS.md" "$SECTION" <<'EOF'
import re, sys
path, section = sys.argv[1], sys.argv[2].rstrip() + "\n"
try:
    text = open(path).read()
except FileNotFoundError:
    text = "# Benchmarks\n\nMeasured numbers, each with the command that produced it.\n"
pattern = re.compile(r"^## Gateway\n.*?(?=^## |\Z)", re.S | re.M)
if pattern.search(text):
    text = pattern.sub(lambda _: section + "\n", text, count=1)
else:
    text = text.rstrip() + "\n\n" + section
open(path, "w").write(text.rstrip() + "\n")
EOF
  echo "wrote the Gateway section of BENCHMARKS.md" >&2
fi
