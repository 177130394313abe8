#!/usr/bin/env bash
# The Kubernetes manifests under deploy/kubernetes/, checked offline (the test command runs it):
#   1. kubernetes-validate (PyPI; it ships the API schemas) in strict mode, against the oldest
#      version the manifests need (1.30: preStop `sleep`, the image has no shell) and the newest
#      it knows; a copy with a misspelled field must fail (the check can fail);
#   2. the rolescope configuration inside each ConfigMap passes `rolescope-gateway check-config`
#      (the module path overridden to the local build).
# Installs kubernetes-validate into a venv under target/ when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
KV_VERSION=1.37.0
VENV=$TARGET/kubernetes-validate
if ! "$VENV/bin/kubernetes-validate" --version 2>/dev/null | grep -qx "$KV_VERSION"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "kubernetes-validate==$KV_VERSION"
fi
KV=$VENV/bin/kubernetes-validate
MANIFESTS=(deploy/kubernetes/gateway.yaml deploy/kubernetes/authorize.yaml)

for version in 1.30.0 "$KV_VERSION"; do
  "$KV" --strict --quiet -k "$version" "${MANIFESTS[@]}"
done
WORK=$(mktemp -d /tmp/rolescope-deploy.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
sed 's/readinessProbe:/readinesProbe:/' deploy/kubernetes/gateway.yaml >"$WORK/broken.yaml"
if "$KV" --strict --quiet "$WORK/broken.yaml" >/dev/null 2>&1; then
  echo "kubernetes-validate accepted a misspelled field: the check cannot fail" >&2
  exit 1
fi

cargo build --locked -q -p rolescope-gateway
MODULE=$TARGET/wasm/rolescope.wasm
[ -f "$MODULE" ] || cargo xtask wasm
"$VENV/bin/python" - "$WORK" "${MANIFESTS[@]}" <<'PY'
import sys, yaml
work = sys.argv[1]
for path in sys.argv[2:]:
    for doc in yaml.safe_load_all(open(path)):
        if doc and doc.get("kind") == "ConfigMap":
            name = doc["metadata"]["name"]
            open(f"{work}/{name}.yaml", "w").write(doc["data"]["gateway.yaml"])
            print(f"{work}/{name}.yaml")
PY
for cfg in "$WORK"/rolescope-*.yaml; do
  ROLESCOPE_GATEWAY_MODULE=$MODULE "$TARGET/debug/rolescope-gateway" check-config --config "$cfg"
done
echo "deploy/kubernetes: ${#MANIFESTS[@]} files valid (Kubernetes 1.30 and $KV_VERSION, strict), their gateway configurations checked" >&2
