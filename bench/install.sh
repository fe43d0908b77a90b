#!/usr/bin/env bash
# Installs what the bench needs from apt, only when it is missing: wrk, haproxy, nginx (light),
# h2load (nghttp2-client) and openssl.
#   bench/install.sh            required tools (fails if they cannot be installed)
#   bench/install.sh --optional also caddy from apt (skipped quietly when not installable)
# `apt-get update` runs at most once per call. Needs root (or sudo) only when something is missing.
set -euo pipefail

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v haproxy >/dev/null || need+=(haproxy)
command -v nginx >/dev/null || need+=(nginx-light)
# Issue 14's phases: HTTP/2 load (h2load) and the TLS certificate (openssl).
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v openssl >/dev/null || need+=(openssl)
optional=()
if [[ "${1:-}" == "--optional" ]]; then
  command -v caddy >/dev/null || optional+=(caddy)
fi
[[ ${#need[@]} -eq 0 && ${#optional[@]} -eq 0 ]] && exit 0

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then sudo=(sudo); else
    echo "bench: missing ${need[*]} ${optional[*]}; install them (apt-get install ${need[*]}) or run as root" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
echo "bench: installing $(echo ${need[*]} ${optional[*]}) from apt" >&2
"${sudo[@]}" apt-get update -qq
if [[ ${#need[@]} -gt 0 ]]; then
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [[ ${#optional[@]} -gt 0 ]]; then
  # Optional: a missing package only drops that target from the bench.
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${optional[@]}" >/dev/null ||
    echo "bench: ${optional[*]} not installable from apt; those targets are skipped" >&2
fi
