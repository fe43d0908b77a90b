#!/usr/bin/env bash
# Builds the two real nginx the differential tests run against (tests/e2e/nginx_*differential*),
# from the sources in ../shared/reference/nginx-src/ (beside the repository), when not built yet:
#   .tools/nginx-module   nginx 1.26.3 + nginx-sticky-module-ng v1.3.0 (`sticky name= hash= …`)
#   .tools/nginx-native   nginx 1.30.4 with its own `sticky cookie|route|learn`
# Run by tests/install.sh (`make test-tools`); returns at once when both binaries are there.
# Without the sources it says so and exits 0: the tests then skip, naming the missing directory.
# Another process may be building the same prefix (it made the directory first and fills
# sbin/nginx at the end): then this waits for it instead of building twice.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
src="$root/../shared/reference/nginx-src"
tools="$root/.tools"
kinds=("$@"); [ ${#kinds[@]} -gt 0 ] || kinds=(module native)

if [ ! -x "$src/build.sh" ]; then
  echo "tests: $src/build.sh is absent; the nginx differential tests will skip" >&2
  exit 0
fi

# Waits up to 10 minutes for someone else's build of $1 (its directory exists, sbin/nginx not yet).
wait_for_other_build() {
  local prefix=$1 waited=0
  while [ -d "$prefix" ] && [ ! -x "$prefix/sbin/nginx" ] && [ $waited -lt 600 ]; do
    [ $waited -eq 0 ] && echo "tests: $prefix is being built by another process; waiting" >&2
    sleep 5; waited=$((waited + 5))
  done
}

build_one() {
  local kind=$1 prefix="$tools/nginx-$1"
  [ -x "$prefix/sbin/nginx" ] && return 0
  wait_for_other_build "$prefix"
  [ -x "$prefix/sbin/nginx" ] && return 0
  echo "tests: building nginx ($kind) into $prefix (about 2 minutes)" >&2
  # the directory first, so that a concurrent builder sees a build under way and waits
  mkdir -p "$prefix"
  if ! "$src/build.sh" "$kind" "$prefix" >/dev/null; then
    [ -x "$prefix/sbin/nginx" ] || rm -rf "$prefix"
    echo "tests: building nginx ($kind) failed" >&2
    return 1
  fi
}

for kind in "${kinds[@]}"; do build_one "$kind"; done
