#!/usr/bin/env bash
# make image-test: the image run by podman as Kubernetes runs it (deploy/kubernetes/): read-only
# root file system and no tmpfs, no capabilities, no privilege escalation, the config and the admin
# token mounted read-only in one directory. With host networking the ports must be free on the
# host. Checks:
#   - the OCI labels (the version is package.json's);
#   - the first response sets the sticky cookie; with the cookie jar the same upstream answers
#     every time; without it, 20 requests spread (so it is the cookie that pins them; 20, not 3,
#     as each worker thread keeps its own round robin and the kernel spreads connections);
#   - the admin listener (0.0.0.0, token from a file): /healthz and /readyz answer without the
#     token (the kubelet sends none), the API and /metrics refuse without it and answer with it;
#   - a reload by SIGHUP (`podman kill --signal HUP`) after the mounted config changed, then one by
#     POST /api/v1/reload, then a bad config that the API refuses while the last good one serves on;
#   - the process runs as 65534; `podman stop` (SIGTERM, SIGKILL only after 10 s) ends it within
#     3 s with exit status 0;
#   - then, in a second container with --watch as the Deployment runs it, a ConfigMap update as the
#     kubelet makes it (a new directory, the `..data` link renamed over the old one) is reloaded.
# Environment (from image/image.mk): PODMAN, PODMAN_RUN, IMAGE, IMAGE_CONFIG, IMAGE_TEST (a work
# directory), IMAGE_TEST_PORT, IMAGE_TEST_ADMIN_PORT, IMAGE_BINARY.
set -euo pipefail

NAME=sticky-gateway-test
WATCHED=sticky-gateway-test-watch
CURRENT=$NAME # the container fail() shows the log of
ETC="$IMAGE_TEST/etc"
URL="http://127.0.0.1:$IMAGE_TEST_PORT/"
ADMIN="http://127.0.0.1:$IMAGE_TEST_ADMIN_PORT"
VERSION=$(node -p 'require("./package.json").version')

fail() {
  echo "image-test: FAILED: $*"
  echo "container log:"
  $PODMAN logs "$CURRENT" 2>&1 | tail -40 || true
  exit 1
}

# The config the container reads; $1 is the sticky cookie's name (what the reloads change), $2 the
# file (default: $ETC/config.toml, rewritten in place).
write_config() {
  local file=${2:-$ETC/config.toml}
  cat > "$file.new" <<EOF
[server]
listen = "0.0.0.0:$IMAGE_TEST_PORT"
workers = 2

[admin]
listen = "0.0.0.0:$IMAGE_TEST_ADMIN_PORT"
token_file = "admin-token"

[upstreams.app]
servers = ["127.0.0.1:19001", "127.0.0.1:19002", "127.0.0.1:19003"]

[upstreams.app.sticky]
name = "$1"
EOF
  # Written in place (the same inode), as an editor on the host would; the mount shows it at once.
  cat "$file.new" > "$file"
  rm "$file.new"
}

# Starts the container "$1" on the config directory "$2" (extra gateway arguments after them) and
# waits until it serves.
start() {
  local name=$1 dir=$2
  shift 2
  $PODMAN_RUN -d --name "$name" --read-only --read-only-tmpfs=false --cap-drop=ALL \
    --security-opt no-new-privileges -v "$PWD/$dir:${IMAGE_CONFIG%/*}:ro" \
    "$IMAGE" --config "$IMAGE_CONFIG" --demo "$@" > /dev/null
  for _ in $(seq 100); do
    curl -s -o /dev/null "$URL" && return
    [ "$($PODMAN inspect -f '{{.State.Running}}' "$name")" = true ] || fail "the container exited"
    sleep 0.1
  done
}

# The x-demo-upstream header of one request (curl arguments in "$@").
upstream() {
  curl -sSf -D - -o /dev/null "$@" "$URL" | tr -d '\r' | sed -n 's/^x-demo-upstream: //Ip'
}

# The name of the cookie a request without one is given.
cookie_name() {
  curl -sSf -D - -o /dev/null "$URL" | tr -d '\r' | sed -n 's/^set-cookie: \([^=]*\)=.*/\1/Ip'
}

# Status code of a GET on the admin listener (curl arguments after the path).
admin_status() {
  local path=$1
  shift
  curl -s -o /dev/null -w '%{http_code}' "$@" "$ADMIN$path"
}

label() {
  $PODMAN image inspect -f "{{index .Labels \"org.opencontainers.image.$1\"}}" "$IMAGE"
}

# --- the labels ---
[ "$(label version)" = "$VERSION" ] || fail "label version is '$(label version)', not $VERSION"
for key in title description licenses source; do
  [ -n "$(label "$key")" ] || fail "no label org.opencontainers.image.$key"
done

# --- start, as the Deployment runs it ---
mkdir -p "$ETC" && rm -f "$IMAGE_TEST/jar"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$ETC/admin-token"
TOKEN=$(cat "$ETC/admin-token")
AUTH="Authorization: Bearer $TOKEN"
write_config route
$PODMAN rm -f "$NAME" "$WATCHED" > /dev/null 2>&1 || true
for url in "$URL" "$ADMIN/healthz"; do
  ! curl -s -o /dev/null "$url" || fail "$url already answers: a port is in use; try IMAGE_TEST_PORT=18090 IMAGE_TEST_ADMIN_PORT=18091"
done
trap '$PODMAN rm -f "$NAME" "$WATCHED" > /dev/null 2>&1' EXIT
start "$NAME" "$ETC"

# --- stickiness ---
curl -sSf -c "$IMAGE_TEST/jar" -D "$IMAGE_TEST/first" -o /dev/null "$URL" || fail "first request"
grep -qi '^set-cookie: route=' "$IMAGE_TEST/first" || fail "no Set-Cookie on the first response"
first=$(tr -d '\r' < "$IMAGE_TEST/first" | sed -n 's/^x-demo-upstream: //Ip')
[ -n "$first" ] || fail "the first response is not from a demo upstream"
for i in 1 2 3 4 5; do
  got=$(upstream -b "$IMAGE_TEST/jar" -c "$IMAGE_TEST/jar") || fail "request $i with the cookie"
  [ "$got" = "$first" ] || fail "with the cookie, '$got' answered instead of $first"
done
spread=$(for _ in $(seq 20); do upstream; done | sort -u | wc -l) || fail "requests without the cookie"
[ "$spread" -gt 1 ] || fail "without the cookie every request went to one upstream"

# --- the admin listener ---
[ "$(admin_status /healthz)" = 200 ] || fail "/healthz without a token: $(admin_status /healthz)"
[ "$(admin_status /readyz)" = 200 ] || fail "/readyz without a token: $(admin_status /readyz)"
[ "$(admin_status /api/v1/upstreams)" = 401 ] || fail "/api/v1/upstreams without the token is not 401"
[ "$(admin_status /metrics -H "Authorization: Bearer wrong-token-0123456789")" = 401 ] ||
  fail "/metrics with a wrong token is not 401"
servers=$(curl -sSf -H "$AUTH" "$ADMIN/api/v1/upstreams" | grep -o '"cookieValue"' | wc -l) ||
  fail "/api/v1/upstreams with the token"
[ "$servers" = 3 ] || fail "/api/v1/upstreams lists $servers servers, not 3"
generation() {
  curl -sSf -H "$AUTH" "$ADMIN/metrics" | sed -n 's/^sticky_gateway_config_generation //p'
}
[ "$(generation)" = 0 ] || fail "config generation at start is '$(generation)', not 0"
curl -sSf -H "$AUTH" "$ADMIN/metrics" | grep -q "^sticky_gateway_build_info{version=\"$VERSION\"" ||
  fail "/metrics has no build_info for version $VERSION"

# --- reloads: SIGHUP, the API, a bad file ---
write_config srv
$PODMAN kill --signal HUP "$NAME" > /dev/null
for _ in $(seq 50); do [ "$(cookie_name)" = srv ] && break; sleep 0.1; done
[ "$(cookie_name)" = srv ] || fail "after SIGHUP the cookie is still '$(cookie_name)', not srv"
[ "$(generation)" = 1 ] || fail "after SIGHUP the generation is '$(generation)', not 1"
write_config gw
reply=$(curl -sS -X POST -H "$AUTH" -w ' %{http_code}' "$ADMIN/api/v1/reload")
[[ "$reply" == *'"generation":2'*' 200' ]] || fail "POST /api/v1/reload answered: $reply"
[ "$(cookie_name)" = gw ] || fail "after POST /api/v1/reload the cookie is '$(cookie_name)', not gw"
write_config 'not a token'
reply=$(curl -sS -X POST -H "$AUTH" -w ' %{http_code}' "$ADMIN/api/v1/reload")
[[ "$reply" == *'upstreams.app.sticky.name'*' 400' ]] || fail "a bad config's reload answered: $reply"
[ "$(cookie_name)" = gw ] || fail "after a refused reload the cookie is '$(cookie_name)', not gw"

# --- user, stop ---
pid=$($PODMAN inspect -f '{{.State.Pid}}' "$NAME")
[ "$(stat -c %u "/proc/$pid")" = 65534 ] || fail "the gateway does not run as uid 65534"
start=$(date +%s%N)
$PODMAN stop -t 10 "$NAME" > /dev/null
ms=$((($(date +%s%N) - start) / 1000000))
status=$($PODMAN inspect -f '{{.State.ExitCode}}' "$NAME")
[ "$ms" -lt 3000 ] && [ "$status" = 0 ] ||
  fail "podman stop took $ms ms, exit status $status (137: SIGKILLed)"

# --- a ConfigMap update under --watch, laid out and swapped as the kubelet does it ---
KUBE="$IMAGE_TEST/kube"
rm -rf "$KUBE" && mkdir -p "$KUBE/..v1"
write_config route "$KUBE/..v1/config.toml"
cp "$ETC/admin-token" "$KUBE/..v1/admin-token"
ln -s ..v1 "$KUBE/..data"
ln -s ..data/config.toml "$KUBE/config.toml"
ln -s ..data/admin-token "$KUBE/admin-token"
CURRENT=$WATCHED
start "$WATCHED" "$KUBE" --watch
[ "$(cookie_name)" = route ] || fail "under --watch the first cookie is '$(cookie_name)', not route"
mkdir "$KUBE/..v2"
write_config kube "$KUBE/..v2/config.toml"
cp "$ETC/admin-token" "$KUBE/..v2/admin-token"
ln -s ..v2 "$KUBE/..data_tmp" && mv -T "$KUBE/..data_tmp" "$KUBE/..data" && rm -rf "$KUBE/..v1"
for _ in $(seq 50); do [ "$(cookie_name)" = kube ] && break; sleep 0.1; done
[ "$(cookie_name)" = kube ] || fail "after the ..data swap the cookie is '$(cookie_name)', not kube"
[ "$(generation)" = 1 ] || fail "after the ..data swap the generation is '$(generation)', not 1"
$PODMAN stop -t 10 "$WATCHED" > /dev/null

binary=$(stat -c %s "$IMAGE_BINARY")
image=$($PODMAN image inspect -f '{{.Size}}' "$IMAGE")
echo "image-test: ok: labels (version $VERSION); cookie set, sticky to $first over 6 requests," \
  "spread without it; admin: probes without token, API 401 without / 200 with it; reloads by" \
  "SIGHUP and by the API, a bad file refused; read-only root, uid 65534; podman stop took" \
  "$ms ms, exit status 0; a ConfigMap-style update reloaded by --watch; binary $((binary / 1048576)) MiB, image $((image / 1048576)) MiB"
