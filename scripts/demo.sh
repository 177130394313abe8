#!/usr/bin/env bash
# The main job, for now: builds the `rolescope` CLI, validates and tests the shipped seed
# policies, and shows three decisions on the Juniper Mist MSP policy: an allow, a cross-tenant
# deny and a suspended-admin deny, each explained. (The gateway and the browser page that hides
# actions come with the gateway and frontend issues; this script will then start them.)
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
cargo build --release --locked -p rolescope-cli
rs=target/release/rolescope

echo
echo "==> rolescope check policies/"
"$rs" check policies

echo
echo "==> rolescope test policies/ --coverage"
"$rs" test policies --coverage

na='{"id":"nadia","assignments":[{"role":"network_admin","scope":"msp:mist","tenants":["org:o1"]}]}'
su_suspended='{"id":"sam","status":"suspended","assignments":[{"role":"super_user","scope":"msp:mist"}]}'

echo
echo "==> allow: a Network Admin with access to org o1 updates a WLAN in o1"
"$rs" explain --policy policies/juniper-mist-msp --principal-json "$na" \
  --action update --kind wlan --scope msp:mist/org:o1/site:s1 --resource-id w1

echo
echo "==> cross-tenant deny: the same admin, a WLAN in org o2 it was not given"
"$rs" explain --policy policies/juniper-mist-msp --principal-json "$na" \
  --action update --kind wlan --scope msp:mist/org:o2 --resource-id w2

echo
echo "==> suspended-admin deny: a suspended Super User"
"$rs" explain --policy policies/juniper-mist-msp --principal-json "$su_suspended" \
  --action view --kind wlan --scope msp:mist/org:o1 --resource-id w1

echo
echo "==> the same request as JSON (what the bindings and the gateway return)"
"$rs" eval --policy policies/juniper-mist-msp --principal-json "$na" \
  --action update --kind wlan --scope msp:mist/org:o2 --resource-id w2
