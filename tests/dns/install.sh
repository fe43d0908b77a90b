#!/usr/bin/env bash
# Installs dnsmasq (Debian package dnsmasq-base: the binary alone, no service) from apt when it is
# missing: the DNS discovery test (tests/e2e/dns_discovery.test.ts) and the bench's dns200 scenario
# run it on a loopback high port as the real DNS server whose answers change. Run by
# tests/install.sh (`make test-tools`) before the tests, and by the test itself as a fallback;
# without dnsmasq that test is skipped. Needs root (or sudo) only when dnsmasq is missing.
set -euo pipefail

command -v dnsmasq >/dev/null && exit 0
[[ -x /usr/sbin/dnsmasq ]] && exit 0

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then sudo=(sudo); else
    echo "tests: missing dnsmasq; install it (apt-get install dnsmasq-base) or run as root" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
echo "tests: installing dnsmasq-base from apt" >&2
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends dnsmasq-base >/dev/null
