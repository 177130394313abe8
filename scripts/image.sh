#!/usr/bin/env bash
# The container image: a static rolescope-gateway (x86_64-unknown-linux-musl), the engine module
# and a default configuration in a `FROM scratch` image (deploy/image/Containerfile), built with
# podman from a staged context; no registry is contacted. Non-root (65532), meant to run with a
# read-only root filesystem.
#
# Usage: scripts/image.sh [--release] [--tag NAME] [--check]
#   --release  the release profile (what you deploy); default: the `image` profile (dev code
#              without debug info: the test command's cheaper build)
#   --tag      the image name (default rolescope-gateway:<version>)
#   --check    then check it (the test command): `podman image inspect` (user, entrypoint,
#              command), the layers hold only the binary, the module and the configuration,
#              and the binary and module copied out of a created container (`podman create` +
#              `podman cp`) serve one allowed and one denied request in front of the demo
#              upstream. (`podman run` cannot start containers on the machines this runs on:
#              crun may not set rlimits in their sandbox. Anywhere else:
#              `podman run --read-only -p 8080:8080 -e ROLESCOPE_GATEWAY_UPSTREAM=... IMAGE`.)
# Installs podman and musl-tools (Debian) and the musl target when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

PROFILE=image
TAG=
CHECK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --release) PROFILE=release; shift ;;
    --tag) TAG=$2; shift 2 ;;
    --check) CHECK=1; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
TAG=${TAG:-rolescope-gateway:$VERSION}

command -v podman >/dev/null || {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq podman >/dev/null
}
TRIPLE=x86_64-unknown-linux-musl
rustup target list --installed | grep -qx "$TRIPLE" || rustup target add "$TRIPLE"
# wasmtime's build script compiles a C helper: musl's compiler wrapper (Debian's musl-tools)
command -v musl-gcc >/dev/null || {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq musl-tools >/dev/null
}
export CC_x86_64_unknown_linux_musl=musl-gcc

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
start=$(date +%s)
cargo build --locked --profile "$PROFILE" --target "$TRIPLE" -p rolescope-gateway
echo "static binary ($PROFILE profile, $TRIPLE): $(( $(date +%s) - start )) s" >&2
BIN=$TARGET/$TRIPLE/$PROFILE/rolescope-gateway
MODULE=$TARGET/wasm/rolescope.wasm
[ -f "$MODULE" ] || cargo xtask wasm
if readelf -l "$BIN" | grep -q 'Requesting program interpreter'; then
  echo "$BIN is dynamically linked" >&2
  exit 1
fi

CTX=$TARGET/image/context
rm -rf "$CTX"
mkdir -p "$CTX"
cp deploy/image/Containerfile deploy/image/gateway.yaml "$CTX/"
cp "$BIN" "$CTX/rolescope-gateway"
cp "$MODULE" "$CTX/rolescope.wasm"
podman build --quiet --pull=never -f "$CTX/Containerfile" -t "$TAG" "$CTX" >/dev/null
echo "built $TAG ($(podman image inspect "$TAG" --format '{{.Size}}') bytes)" >&2
[ "$CHECK" = 1 ] || exit 0

# ---- the checks
fail() { echo "image check: $*" >&2; exit 1; }
inspect() { podman image inspect "$TAG" --format "$1"; }
[ "$(inspect '{{.Config.User}}')" = "65532:65532" ] || fail "user is $(inspect '{{.Config.User}}'), not 65532:65532"
[ "$(inspect '{{json .Config.Entrypoint}}')" = '["/usr/local/bin/rolescope-gateway"]' ] \
  || fail "entrypoint $(inspect '{{json .Config.Entrypoint}}')"
[ "$(inspect '{{json .Config.Cmd}}')" = '["serve","--config","/etc/rolescope/gateway.yaml"]' ] \
  || fail "command $(inspect '{{json .Config.Cmd}}')"

WORK=$(mktemp -d /tmp/rolescope-image.XXXXXX)
CONTAINER=rolescope-image-check-$$
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  podman rm -f "$CONTAINER" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# every file of every layer: the three files and their folders, nothing else
podman save -q --format docker-archive -o "$WORK/image.tar" "$TAG"
mkdir "$WORK/archive"
tar -xf "$WORK/image.tar" -C "$WORK/archive"
python3 - "$WORK/archive" <<'PY' || fail "unexpected files in the image"
import json, sys, tarfile, os
root = sys.argv[1]
manifest = json.load(open(os.path.join(root, "manifest.json")))
files = set()
for layer in manifest[0]["Layers"]:
    with tarfile.open(os.path.join(root, layer)) as t:
        files |= {m.name.lstrip("./") + ("/" if m.isdir() else "") for m in t.getmembers() if m.name.strip("./")}
want_files = {"usr/local/bin/rolescope-gateway", "opt/rolescope/rolescope.wasm", "etc/rolescope/gateway.yaml"}
regular = {f for f in files if not f.endswith("/")}
print("image files:", sorted(regular), file=sys.stderr)
sys.exit(0 if regular == want_files else 1)
PY

# the binary, module and configuration copied out of a created (never started) container
podman create --name "$CONTAINER" "$TAG" >/dev/null
mkdir "$WORK/out"
for f in /usr/local/bin/rolescope-gateway /opt/rolescope/rolescope.wasm /etc/rolescope/gateway.yaml; do
  podman cp "$CONTAINER:$f" "$WORK/out/"
done
cmp -s "$WORK/out/rolescope-gateway" "$BIN" || fail "the binary in the image is not the one built"
cmp -s "$WORK/out/rolescope.wasm" "$MODULE" || fail "the module in the image is not target/wasm/rolescope.wasm"
GW=$WORK/out/rolescope-gateway

# one allow and one deny through the copied binary, in front of the demo upstream
cargo build --locked -q -p rolescope-demo-upstream -p rolescope-cli
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UP=$(free_port) PORT=$(free_port) ADMIN=$(free_port)
"$TARGET/debug/rolescope-demo-upstream" --listen "127.0.0.1:$UP" >"$WORK/upstream.log" 2>&1 &
PIDS+=($!)
"$TARGET/debug/rolescope" build policies/juniper-mist-msp -o "$WORK/bundle.json" >/dev/null
KEYS=$ROOT/gateway/tests/e2e/keys
ISSUER=https://idp.image.rolescope.test
AUDIENCE=rolescope-image
ROLESCOPE_GATEWAY_LISTEN=127.0.0.1:$PORT ROLESCOPE_GATEWAY_ADMIN_LISTEN=127.0.0.1:$ADMIN \
  ROLESCOPE_GATEWAY_UPSTREAM=http://127.0.0.1:$UP ROLESCOPE_GATEWAY_MODULE=$WORK/out/rolescope.wasm \
  ROLESCOPE_GATEWAY_POLICY_FILE=$WORK/bundle.json ROLESCOPE_GATEWAY_JWT_ISSUER=$ISSUER \
  ROLESCOPE_GATEWAY_JWT_AUDIENCE=$AUDIENCE ROLESCOPE_GATEWAY_JWKS_FILE=$KEYS/jwks.json \
  "$GW" serve --config "$WORK/out/gateway.yaml" >"$WORK/gateway.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 600); do
  curl -fs -o /dev/null "http://127.0.0.1:$ADMIN/readyz" && break
  sleep 0.2
done
curl -fs -o /dev/null "http://127.0.0.1:$ADMIN/readyz" || { cat "$WORK/gateway.log" >&2; fail "the copied binary is not ready"; }
TOKEN=$("$GW" mint --suite policies/juniper-mist-msp/mist_msp_test.yaml --principal na_o1 \
  --key "$KEYS/signer.pem" --kid e2e-signer --issuer "$ISSUER" --audience "$AUDIENCE")
allow=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api/v1/orgs/o1/devices")
deny=$(curl -s -w ' %{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api/v1/orgs/o2/devices")
[ "$allow" = 200 ] || fail "allowed request answered $allow"
case "$deny" in
  *'"reason":"out_of_scope"'*' 403') ;;
  *) fail "denied request answered $deny" ;;
esac
echo "image $TAG: user 65532, entrypoint and files checked; the copied binary allowed (200) and denied (403 out_of_scope)" >&2
