#!/usr/bin/env bash
# Installs what the tests need, only when it is missing: real nginx built from ../shared (the
# differential tests), haproxy (the fleet test), dnsmasq (DNS discovery), and from apt chromium
# (the status page in a real browser) and prometheus (promtool checks /metrics; a real Prometheus
# scrapes the gateway).
# Run by `make test-unit` / `make test-e2e` before the tests, so that no test waits for apt inside
# its own time limit (tests/support/{browser,ops_tools}.ts would install them too, as a fallback).
# Needs root (or sudo) only when something is missing.
set -euo pipefail

# real nginx (module and native builds) for the differential tests; at once when already built
"$(dirname "$0")/nginx/build.sh"
"$(dirname "$0")/fleet/install.sh"  # haproxy for the fleet test (tests/e2e/fleet.test.ts)
"$(dirname "$0")/dns/install.sh"  # dnsmasq for the DNS discovery test (tests/e2e/dns_discovery.test.ts)

need=()
[[ -x /usr/bin/chromium || -n "${CHROMIUM:-}" ]] || need+=(chromium)
{ command -v promtool >/dev/null && command -v prometheus >/dev/null; } || need+=(prometheus)
[[ ${#need[@]} -eq 0 ]] && exit 0

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then sudo=(sudo); else
    echo "tests: missing ${need[*]}; install them (apt-get install ${need[*]}) or run as root" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
echo "tests: installing ${need[*]} from apt" >&2
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
