#!/usr/bin/env bash
# Installs HAProxy from apt when it is missing: the fleet test (tests/e2e/fleet.test.ts) puts three
# gateway processes behind it as the L4 balancer. Run by tests/install.sh (`make test-tools`) before
# the tests, and by the fleet test itself as a fallback; without HAProxy that test is skipped.
# Needs root (or sudo) only when HAProxy is missing. The same way as bench/install.sh.
set -euo pipefail

command -v haproxy >/dev/null && exit 0
[[ -x /usr/sbin/haproxy ]] && exit 0

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then sudo=(sudo); else
    echo "tests: missing haproxy; install it (apt-get install haproxy) or run as root" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
echo "tests: installing haproxy from apt" >&2
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends haproxy >/dev/null
