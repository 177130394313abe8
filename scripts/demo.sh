#!/usr/bin/env bash
# The main job: the enforcing gateway with a shipped policy (juniper-mist-msp) in front of the
# demo MSP API, and the admin console page that hides the actions a user may not take.
#
#   ./scripts/demo.sh            start everything, check the printed curl lines, keep serving
#                                (Ctrl-C stops it all)
#   DEMO_EXIT=1 ./scripts/demo.sh    the same, but exit after the check (used by the tests)
#   DEMO_PROFILE=dev ...             debug binaries (quicker to build; the test command uses them)
#
# Installs what it needs (wasm target, wasm-bindgen CLI at the Cargo.lock version, binaryen from
# npm) through `cargo xtask wasm`; idempotent. Binds 127.0.0.1 only. Ports: DEMO_UPSTREAM_PORT
# (8081), DEMO_GATEWAY_PORT (8080), DEMO_ADMIN_PORT (9090), DEMO_CONSOLE_PORT (8000).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

up_port=${DEMO_UPSTREAM_PORT:-8081}
gw_port=${DEMO_GATEWAY_PORT:-8080}
admin_port=${DEMO_ADMIN_PORT:-9090}
console_port=${DEMO_CONSOLE_PORT:-8000}
policy=juniper-mist-msp
suite=policies/$policy/mist_msp_test.yaml
target_dir=${CARGO_TARGET_DIR:-$root/target}
demo=$target_dir/demo
mkdir -p "$demo"

step() { printf '\n==> %s\n' "$*"; }

step "build: the engine module (cargo xtask wasm) and the binaries (release; DEMO_PROFILE=dev: debug)"
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
if [ "${DEMO_SKIP_WASM_BUILD:-0}" != 1 ] || [ ! -f "$target_dir/wasm/rolescope.wasm" ]; then
  cargo xtask wasm
fi
if [ "${DEMO_PROFILE:-release}" = dev ]; then
  cargo build --locked -p rolescope-cli -p rolescope-gateway -p rolescope-demo-upstream
  bin=$target_dir/debug
else
  cargo build --release --locked -p rolescope-cli -p rolescope-gateway -p rolescope-demo-upstream
  bin=$target_dir/release
fi

step "policy: check, test, bundle"
"$bin/rolescope" check "policies/$policy"
"$bin/rolescope" test "policies/$policy"
"$bin/rolescope" build "policies/$policy" -o "$demo/$policy.bundle.json"

# The gateway runs on the one demo configuration, gateway/demo/gateway.yaml (its identity
# section is the demo's only token-verifier setting; the browser test starts its gateway from
# the same file), with this run's ports, module, bundle and decision log set by the gateway's
# own environment overrides.
gw_env=(
  ROLESCOPE_GATEWAY_LISTEN="127.0.0.1:$gw_port"
  ROLESCOPE_GATEWAY_ADMIN_LISTEN="127.0.0.1:$admin_port"
  ROLESCOPE_GATEWAY_UPSTREAM="http://127.0.0.1:$up_port"
  ROLESCOPE_GATEWAY_MODULE="$target_dir/wasm/rolescope.wasm"
  ROLESCOPE_GATEWAY_POLICY_FILE="$demo/$policy.bundle.json"
  ROLESCOPE_GATEWAY_DECISION_LOG=file
  ROLESCOPE_GATEWAY_DECISION_LOG_PATH="$demo/decisions.jsonl"
)
# The one demo signer: the gateway's demo command and the console both mint with it.
demo_key=gateway/demo/keys/demo-es256.pem

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

wait_for() { # url, what
  for _ in $(seq 1 600); do
    if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "demo: $2 did not come up ($1)" >&2
  exit 1
}

step "start: demo MSP API on 127.0.0.1:$up_port, gateway on 127.0.0.1:$gw_port (admin :$admin_port)"
"$bin/rolescope-demo-upstream" --listen "127.0.0.1:$up_port" >"$demo/upstream.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$up_port/__health" "the demo upstream"
env "${gw_env[@]}" "$bin/rolescope-gateway" serve --config gateway/demo/gateway.yaml >"$demo/gateway.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$admin_port/readyz" "the gateway"

mint() {
  "$bin/rolescope-gateway" mint --suite "$suite" --principal "$1" --key "$demo_key" --ttl 8h
}
NA_O1=$(mint na_o1)
SU_SUSPENDED=$(mint su_suspended)
SU=$(mint su)

step "console: the admin page on 127.0.0.1:$console_port"
ROLESCOPE_BIN_DIR=$bin ROLESCOPE_CLI=$bin/rolescope node web/serve.mjs --policy "$policy" \
  --bundle "$demo/$policy.bundle.json" --gateway "http://127.0.0.1:$gw_port" --port "$console_port" --key "$demo_key" \
  >"$demo/console.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$console_port/" "the console"

gw=http://127.0.0.1:$gw_port
# name | token variable | method | path | expected status
checks=(
  "allow: a Network Admin listed on org o1 lists o1's devices|NA_O1|GET|/api/v1/orgs/o1/devices|200"
  "cross-tenant deny: the same admin asks for org o2's devices|NA_O1|GET|/api/v1/orgs/o2/devices|403"
  "suspended-admin deny: a suspended Super User|SU_SUSPENDED|GET|/api/v1/orgs/o1/devices|403"
  "path trick deny: .. never reaches another tenant|NA_O1|GET|/api/v1/orgs/o1/%2e%2e/o2/devices|400"
  "no token: 401|-|GET|/api/v1/orgs/o1/devices|401"
  "allow: the Super User reboots a device|SU|POST|/api/v1/orgs/o1/devices/ap-10/reboot|200"
)

step "ready-to-paste curl lines (checked now against the running gateway)"
export NA_O1 SU_SUSPENDED SU
printf '\n  export NA_O1=%q\n  export SU_SUSPENDED=%q\n  export SU=%q\n' "$NA_O1" "$SU_SUSPENDED" "$SU"
failed=0
for c in "${checks[@]}"; do
  IFS='|' read -r what var method path want <<<"$c"
  if [ "$var" = - ]; then
    line="curl -s -X $method $gw$path"
    got=$(curl -s -o "$demo/last.json" -w '%{http_code}' -X "$method" "$gw$path")
  else
    line="curl -s -X $method -H \"Authorization: Bearer \$$var\" $gw$path"
    got=$(curl -s -o "$demo/last.json" -w '%{http_code}' -X "$method" -H "Authorization: Bearer ${!var}" "$gw$path")
  fi
  body=$(head -c 200 "$demo/last.json")
  mark=ok
  if [ "$got" != "$want" ] && ! { [ "$want" = 200 ] && [ "${got:0:1}" = 2 ]; }; then mark="UNEXPECTED (wanted $want)"; failed=1; fi
  printf '\n  # %s  -> %s %s\n  %s\n    %s\n' "$what" "$got" "$mark" "$line" "$body"
done

# The console's own demo tokens, through the console's /api/ (what a click sends): 200.
console_token=$(curl -fsS "http://127.0.0.1:$console_port/tokens.json" |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).find(t=>t.key==="na_o1").token))')
got=$(curl -s -o "$demo/last.json" -w '%{http_code}' -H "Authorization: Bearer $console_token" \
  "http://127.0.0.1:$console_port/api/v1/orgs/o1/devices")
printf '\n  # a console button (na_o1 lists o1'"'"'s devices, the console'"'"'s token, via its /api/)  -> %s\n' "$got"
if [ "$got" != 200 ]; then echo "demo: the console's token was refused: $(head -c 200 "$demo/last.json")" >&2; failed=1; fi

printf '\n  console (pick a user and a tenant; hidden buttons say why): http://127.0.0.1:%s/\n' "$console_port"
printf '  metrics: http://127.0.0.1:%s/metrics   decision log: %s\n' "$admin_port" "$demo/decisions.jsonl"
if [ "$failed" != 0 ]; then
  echo "demo: a curl line did not behave as printed; logs in $demo" >&2
  exit 1
fi
if [ "${DEMO_EXIT:-0}" = 1 ]; then
  echo "demo: every curl line behaved as printed (DEMO_EXIT=1: stopping)"
  exit 0
fi
echo
echo "demo: serving; Ctrl-C stops the gateway, the demo API and the console"
wait
