#!/usr/bin/env bash
# Gateway benchmark (not part of the test run; `cargo xtask bench` runs it): wrk against
#   1. rolescope-gateway enforcing (juniper-mist-msp bundle, RS256 tokens),
#   2. rolescope-gateway with `enforce: false` (passthrough: the same proxy, no decision),
#   3. Debian's nginx as a plain reverse proxy,
#      all three in front of the demo upstream, with the same mix of allowed requests;
#   4. a real Cerbos PDP (the release binary of the npm package `@cerbos/cerbos-linux-x64`,
#      pinned in bench/gateway/package.json) answering the same decisions over its HTTP check
#      API, with the policies in bench/gateway/cerbos/.
# Before timing, Cerbos must allow exactly what rolescope allows on every request of a check mix
# (the timed requests plus denied ones, for many principals); rolescope's answers come from the
# enforcing gateway itself. Everything binds 127.0.0.1.
# Writes the `gateway.md` fragment and `gateway.json` into --out (the xtask assembles
# BENCHMARKS.md from them).
#
# Usage: scripts/bench-gateway.sh [--out target/bench] [--quick] [--duration 15s] [--threads 2]
#                                 [--connections 64] [--no-build]
#   --quick     3 s per target after a 1 s warm-up (a smoke test: its numbers are not results)
#   --no-build  use the release binaries and module already built
# Needs root (or wrk and nginx installed) for `apt-get install -y wrk nginx`, npm for Cerbos,
# python3 with PyYAML.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# other work on the machine before we start (the run itself keeps both cores busy)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
COMMAND="scripts/bench-gateway.sh $*"

OUT=$ROOT/target/bench
DURATION=15s
WARMUP=3s
THREADS=2
CONNECTIONS=64
BUILD=1
QUICK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --quick) QUICK=1; DURATION=3s; WARMUP=1s; shift ;;
    --duration) DURATION=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
BENCH=$ROOT/bench/gateway

# ---- tools
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
python3 -c 'import yaml' 2>/dev/null || missing+=(python3-yaml)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
# Cerbos: the release binary inside the pinned npm package (npm ci unless already installed)
if [ ! -f "$BENCH/node_modules/.package-lock.json" ] || [ "$BENCH/package-lock.json" -nt "$BENCH/node_modules/.package-lock.json" ]; then
  npm ci --no-audit --no-fund --prefix "$BENCH" >&2
fi
CERBOS=$BENCH/node_modules/@cerbos/cerbos-linux-x64/cerbos-linux-x64
[ -x "$CERBOS" ] || { echo "no Cerbos binary at $CERBOS" >&2; exit 1; }

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
trap 'exit 130' INT TERM

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

POLICY=policies/juniper-mist-msp
SUITE=$POLICY/mist_msp_test.yaml
"$BIN/rolescope" build "$POLICY" -o "$WORK/bundle.json" >/dev/null
KEYS=$ROOT/gateway/tests/e2e/keys
ISSUER=https://idp.bench.rolescope.test
AUDIENCE=rolescope-bench
mint() { # principal (as filed in the suite)
  "$BIN/rolescope-gateway" mint --suite "$SUITE" --principal "$1" --key "$KEYS/signer.pem" --kid e2e-signer \
    --issuer "$ISSUER" --audience "$AUDIENCE" --ttl 2h
}
TOKEN=$(mint su)

start_gateway() { # name, enforce, decision log ("off" or a file) -> sets GW_PORT, GW_PID
  local name=$1 enforce=$2 log=$3 sink
  GW_PORT=$(free_port)
  local admin
  admin=$(free_port)
  if [ "$log" = off ]; then sink="{ sink: off }"; else sink="{ sink: file, path: $log }"; fi
  cat >"$WORK/$name.yaml" <<YAML
listen: 127.0.0.1:$GW_PORT
admin_listen: 127.0.0.1:$admin
upstream: http://127.0.0.1:$UP_PORT
module: $MODULE
enforce: $enforce
policy: { file: $WORK/bundle.json, watch: false }
identity:
  jwt: { issuer: "$ISSUER", audience: "$AUDIENCE", algorithms: [RS256], jwks_file: $KEYS/jwks.json }
decision_log: $sink
YAML
  "$BIN/rolescope-gateway" serve --config "$WORK/$name.yaml" >"$WORK/$name.log" 2>&1 &
  GW_PID=$!
  PIDS+=("$GW_PID")
  wait_http "http://127.0.0.1:$admin/readyz" "gateway ($name)"
}

# ---- Cerbos (loopback only: HTTP and gRPC on 127.0.0.1, no admin API, no gops listener)
"$CERBOS" compile "$BENCH/cerbos/policies" >"$WORK/cerbos-compile.log" 2>&1 \
  || { cat "$WORK/cerbos-compile.log" >&2; echo "the Cerbos policies do not compile" >&2; exit 1; }
start_cerbos() { # name, policy folder -> sets CERBOS_PORT, CERBOS_PID
  CERBOS_PORT=$(free_port)
  "$CERBOS" server --config="$BENCH/cerbos/config.yaml" --log-level=warn --debug-listen-addr= \
    --set=server.httpListenAddr="127.0.0.1:$CERBOS_PORT" --set=server.grpcListenAddr="127.0.0.1:$(free_port)" \
    --set=storage.disk.directory="$2" >"$WORK/$1.log" 2>&1 &
  CERBOS_PID=$!
  PIDS+=("$CERBOS_PID")
  wait_http "http://127.0.0.1:$CERBOS_PORT/_cerbos/health" "$1"
}
start_cerbos cerbos "$BENCH/cerbos/policies"

# the floor of Cerbos' check path, for reference: a second PDP whose policies allow every action
# of every kind to role `user` (not the same decisions, so no goal; it shows how much of Cerbos'
# time is its request handling rather than the policy above)
start_cerbos_floor() {
  mkdir -p "$WORK/cerbos-floor"
  for kind in $(python3 -c 'import json, sys; print(" ".join(sorted({json.loads(l)["resources"][0]["resource"]["kind"] for l in open(sys.argv[1]) if l.strip()})))' "$WORK/cerbos-bodies.jsonl"); do
    printf 'apiVersion: api.cerbos.dev/v1\nresourcePolicy:\n  resource: %s\n  version: default\n  rules:\n    - actions: ["*"]\n      effect: EFFECT_ALLOW\n      roles: [user]\n' "$kind" >"$WORK/cerbos-floor/$kind.yaml"
  done
  local port=$CERBOS_PORT pid=$CERBOS_PID
  start_cerbos cerbos-floor "$WORK/cerbos-floor"
  FLOOR_PORT=$CERBOS_PORT FLOOR_PID=$CERBOS_PID
  CERBOS_PORT=$port CERBOS_PID=$pid
}

# ---- equivalence: rolescope's answers (an enforcing gateway that logs its decisions) vs Cerbos
start_gateway oracle true "$WORK/decisions.jsonl"
ORACLE_PID=$GW_PID
{
  echo "{"
  first=1
  # every principal the suite files (each as its own token; the gateway takes the token's claims)
  for p in $(python3 -c 'import sys, yaml; print(" ".join(yaml.safe_load(open(sys.argv[1]))["principals"]))' "$SUITE"); do
    [ $first = 1 ] || echo ","
    first=0
    printf '"%s": "%s"' "$p" "$(mint "$p")"
  done
  echo "}"
} >"$WORK/tokens.json"
python3 "$BENCH/harness.py" equivalence --tokens "$WORK/tokens.json" --routes "$POLICY/routes.yaml" \
  --gateway-port "$GW_PORT" --decisions "$WORK/decisions.jsonl" --cerbos-port "$CERBOS_PORT" \
  --bodies "$WORK/cerbos-bodies.jsonl" --summary "$WORK/equivalence.json"
kill "$ORACLE_PID"
start_cerbos_floor

# ---- the three proxies
start_gateway enforcing true off
ENF_PORT=$GW_PORT ENF_PID=$GW_PID
start_gateway passthrough false off
PASS_PORT=$GW_PORT PASS_PID=$GW_PID

NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx"
cat >"$WORK/nginx/nginx.conf" <<NGINX
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
NGINX
"$NGINX" -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx"
wait_http "http://127.0.0.1:$NGINX_PORT/api/v1/status" "nginx"

# sanity: the token is allowed through the enforcing gateway, and a missing one is not
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$ENF_PORT/api/v1/orgs/o1/devices/ap-11")
[ "$code" = 200 ] || { echo "enforcing gateway answered $code to an allowed request" >&2; cat "$WORK/enforcing.log" >&2; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ENF_PORT/api/v1/orgs/o1/devices/ap-11")
[ "$code" = 401 ] || { echo "enforcing gateway answered $code without a token" >&2; exit 1; }

rss_one() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# rss_kb PID: resident KiB of the process and its children (nginx's worker)
rss_kb() {
  local total
  total=$(rss_one "$1")
  for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do total=$((total + $(rss_one "$c"))); done
  echo "$total"
}

declare -A RSS
run() { # name, port, pid, wrk script and its arguments...
  local name=$1 port=$2 pid=$3 script=$4
  shift 4
  # warm-up (connections, token cache, instance pools, Cerbos' caches)
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -H "Authorization: Bearer $TOKEN" -s "$script" \
    "http://127.0.0.1:$port" -- "$@" "$WORK/warmup-failures.$name" >/dev/null
  echo 0 >"$WORK/rss.$name"
  (
    while kill -0 "$pid" 2>/dev/null; do
      r=$(rss_kb "$pid"); [ "$r" -gt "$(cat "$WORK/rss.$name")" ] && echo "$r" >"$WORK/rss.$name"
      sleep 0.2
    done
  ) &
  local sampler=$!
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Bearer $TOKEN" -s "$script" \
    "http://127.0.0.1:$port" -- "$@" "$WORK/failures.$name" >"$WORK/wrk.$name"
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  RSS[$name]=$(cat "$WORK/rss.$name")
  cat "$WORK/wrk.$name" >&2
  if [ -s "$WORK/failures.$name" ]; then
    echo "$name: answers that were not allowed (status reason, count):" >&2
    cat "$WORK/failures.$name" >&2
  fi
}

run enforcing "$ENF_PORT" "$ENF_PID" "$BENCH/proxy.lua"
run passthrough "$PASS_PORT" "$PASS_PID" "$BENCH/proxy.lua"
run nginx "$NGINX_PORT" "$(cat "$WORK/nginx/nginx.pid")" "$BENCH/proxy.lua"
run cerbos "$CERBOS_PORT" "$CERBOS_PID" "$BENCH/cerbos.lua" "$WORK/cerbos-bodies.jsonl"
run cerbos_floor "$FLOOR_PORT" "$FLOOR_PID" "$BENCH/cerbos.lua" "$WORK/cerbos-bodies.jsonl"

# the enforcing gateway's own account of any refusal (engine faults, upstream errors)
if grep -q '"level":"\(WARN\|ERROR\)"' "$WORK/enforcing.log"; then
  echo "enforcing gateway warnings:" >&2
  grep '"level":"\(WARN\|ERROR\)"' "$WORK/enforcing.log" | sort | uniq -c | sort -rn | head -20 >&2
fi

# ---- the fragment
NCPU=$(nproc)
LOAD="$LOAD_BEFORE (before the run; $(cut -d' ' -f1-3 /proc/loadavg) at its end, its own load included)"
# busy: other work held more than half the cores before the run started
OVERLOADED=$(awk -v l="${LOAD_BEFORE%% *}" -v n="$NCPU" 'BEGIN {print (l > n / 2) ? "true" : "false"}')
WRK_VERSION=$( (wrk -v 2>&1 || true) | head -1 | awk '{print $2}')
NGINX_VERSION=$("$NGINX" -v 2>&1 | sed 's|.*nginx/||')
CERBOS_VERSION=$("$CERBOS" --version 2>&1 | head -1)
GATEWAY_VERSION=$("$BIN/rolescope-gateway" --version | awk '{print $NF}')
python3 - "$WORK/meta.json" <<PY
import json, sys
json.dump({
  "command": """$COMMAND""".strip(),
  "quick": $([ "$QUICK" = 1 ] && echo True || echo False),
  "threads": $THREADS, "connections": $CONNECTIONS, "duration": "$DURATION", "warmup": "$WARMUP",
  "load": "$LOAD", "cores": $NCPU, "overloaded": $([ "$OVERLOADED" = true ] && echo True || echo False),
  "versions": {"wrk": "$WRK_VERSION", "nginx": "$NGINX_VERSION", "cerbos": "$CERBOS_VERSION",
               "rolescope-gateway": "$GATEWAY_VERSION"},
  "rss_kb": {"enforcing": ${RSS[enforcing]}, "passthrough": ${RSS[passthrough]}, "nginx": ${RSS[nginx]}, "cerbos": ${RSS[cerbos]},
             "cerbos_floor": ${RSS[cerbos_floor]}},
  "equivalence": json.load(open("$WORK/equivalence.json")),
}, open(sys.argv[1], "w"))
PY
python3 "$BENCH/harness.py" report --work "$WORK" --meta "$WORK/meta.json" --out "$OUT"
echo "wrote $OUT/gateway.md and $OUT/gateway.json" >&2
