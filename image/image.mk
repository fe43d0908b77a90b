# The container image, included by the top Makefile. Needs root and apt (Debian); no Docker engine.
#   make image        dist/sticky-gateway-image.tar (OCI archive), also tagged localhost/sticky-gateway:dev
#   make image-run    serve it with podman (host network): the image's config plus --demo upstreams
#   make image-test   build it, then check stickiness and a graceful `podman stop` against the container
#
# The image is FROM scratch: the Bun-compiled binary, the shared libraries it links, /etc/passwd and
# /etc/group (for user nobody), /tmp and a default config. One layer, no shell.

IMAGE := localhost/sticky-gateway:dev
IMAGE_TAR := dist/sticky-gateway-image.tar
IMAGE_ROOTFS := build/image-rootfs
IMAGE_CONFIG := /etc/sticky-gateway/config.toml

# vfs stores layers as plain directories: no kernel overlayfs or fuse-overlayfs needed (CI runners
# and containers often have neither), and for a one-layer image it costs nothing. buildah and podman
# share one store, and a store created with one driver refuses the other, so both name it.
BUILDAH := buildah --storage-driver vfs
PODMAN := podman --storage-driver vfs

# What podman needs on this VM (cgroup v1/v2 hybrid, no CAP_SYS_RESOURCE in the bounding set):
#   --runtime runc   crun, the default, fails with "cgroups in hybrid mode not supported".
#   --ulimit ...     the runtime may not *raise* limits ("setrlimit RLIMIT_NOFILE: Operation not
#                    permitted", and --ulimit host fails the same way), so set them lower explicitly.
#   --network host   the port is on the host as is: no bridge, NAT rules or port mapping to set up.
PODMAN_RUN := $(PODMAN) run --runtime runc --network host \
	--ulimit nofile=10000:10000 --ulimit nproc=4096:4096

# `make image-run IMAGE_ARGS=` runs the image's own CMD (its placeholder upstreams answer 502).
IMAGE_ARGS ?= --config $(IMAGE_CONFIG) --demo

# apt-get installs those of the given packages whose command is missing (the names are the same).
apt-need = missing=$$(for p in $(1); do command -v $$p >/dev/null || echo $$p; done); \
	[ -z "$$missing" ] || { apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; }

.PHONY: image-load image-test

image: $(IMAGE_TAR)

# No RUN step, so buildah needs no isolation: the root filesystem is assembled here and copied in.
# The libraries go to the paths ldd shows, which is where the binary's loader looks for them.
# rmi before commit: the previous build would otherwise linger untagged (each is ~112 MB in vfs).
$(IMAGE_TAR): $(BINARY) image/config.toml image/image.mk
	@$(call apt-need,buildah)
	rm -rf $(IMAGE_ROOTFS)
	mkdir -p $(IMAGE_ROOTFS)/app $(IMAGE_ROOTFS)/tmp $(IMAGE_ROOTFS)$(dir $(IMAGE_CONFIG))
	chmod 1777 $(IMAGE_ROOTFS)/tmp
	cp $(BINARY) $(IMAGE_ROOTFS)/app/sticky-gateway
	for lib in $$(ldd $(BINARY) | grep -o '/[^ ]*'); do \
	  mkdir -p $(IMAGE_ROOTFS)$$(dirname $$lib) && cp -L $$lib $(IMAGE_ROOTFS)$$lib; done
	cp image/config.toml $(IMAGE_ROOTFS)$(IMAGE_CONFIG)
	printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' \
	  > $(IMAGE_ROOTFS)/etc/passwd
	printf 'root:x:0:\nnobody:x:65534:\n' > $(IMAGE_ROOTFS)/etc/group
	$(BUILDAH) rm sticky-gateway-build >/dev/null 2>&1 || true
	$(BUILDAH) from --name sticky-gateway-build scratch
	$(BUILDAH) copy sticky-gateway-build $(IMAGE_ROOTFS)/ /
	$(BUILDAH) config --entrypoint '["/app/sticky-gateway"]' --cmd '["--config", "$(IMAGE_CONFIG)"]' \
	  --user 65534:65534 --port 8080/tcp --created-by 'make image' sticky-gateway-build
	$(BUILDAH) rmi $(IMAGE) >/dev/null 2>&1 || true
	$(BUILDAH) commit --rm sticky-gateway-build $(IMAGE)
	rm -f $@
	$(BUILDAH) push $(IMAGE) oci-archive:$@:$(IMAGE)
	@ls -l $@

# The image from the store, or from the archive when the store lacks it (e.g. a copied archive).
image-load: image
	@$(call apt-need,podman runc)
	$(PODMAN) image exists $(IMAGE) || $(PODMAN) load -i $(IMAGE_TAR)

image-run: image-load
	$(PODMAN_RUN) --rm --name sticky-gateway $(IMAGE) $(IMAGE_ARGS)

# The gateway in the container, on a mounted config whose loopback servers --demo serves (inside the
# container, which shares the host's network). Ports 18080 and 1900x stay clear of `make run`'s;
# with host networking they must be free on the host (IMAGE_TEST_PORT=... picks another).
# Checks: the first response sets the sticky cookie; with the cookie jar the same upstream answers
# every time; without it, 20 requests spread (so it is the cookie that pins them; 20, not 3, as each
# worker thread keeps its own round robin and the kernel spreads connections over them); the process
# runs as 65534; `podman stop` (SIGTERM, SIGKILL only after 10 s) ends it within 3 s with exit status 0.
IMAGE_TEST := build/image-test
IMAGE_TEST_PORT ?= 18080
IMAGE_TEST_URL := http://127.0.0.1:$(IMAGE_TEST_PORT)/

image-test: image-load
	@$(call apt-need,curl)
	mkdir -p $(IMAGE_TEST) && rm -f $(IMAGE_TEST)/jar
	printf '[server]\nlisten = "0.0.0.0:%s"\n\n[upstreams.app]\nservers = ["127.0.0.1:19001", "127.0.0.1:19002", "127.0.0.1:19003"]\n\n[upstreams.app.sticky]\n' \
	  $(IMAGE_TEST_PORT) > $(IMAGE_TEST)/config.toml
	$(PODMAN) rm -f sticky-gateway-test >/dev/null 2>&1 || true
	@! curl -s -o /dev/null $(IMAGE_TEST_URL) || { echo "image-test: port $(IMAGE_TEST_PORT) is in use; try IMAGE_TEST_PORT=18090"; exit 1; }
	$(PODMAN_RUN) -d --name sticky-gateway-test -v $(CURDIR)/$(IMAGE_TEST)/config.toml:$(IMAGE_CONFIG):ro \
	  $(IMAGE) --config $(IMAGE_CONFIG) --demo
	@trap '$(PODMAN) rm -f sticky-gateway-test >/dev/null' EXIT; \
	fail() { echo "image-test: FAILED: $$*"; echo "container log:"; $(PODMAN) logs sticky-gateway-test; exit 1; }; \
	upstream() { curl -sSf -D - -o /dev/null "$$@" $(IMAGE_TEST_URL) | tr -d '\r' | sed -n 's/^x-demo-upstream: //Ip'; }; \
	for i in $$(seq 100); do curl -s -o /dev/null $(IMAGE_TEST_URL) && break; \
	  [ "$$($(PODMAN) inspect -f '{{.State.Running}}' sticky-gateway-test)" = true ] || fail "the container exited"; \
	  sleep 0.1; done; \
	curl -sSf -c $(IMAGE_TEST)/jar -D $(IMAGE_TEST)/first -o /dev/null $(IMAGE_TEST_URL) || fail "first request"; \
	grep -qi '^set-cookie: route=' $(IMAGE_TEST)/first || fail "no Set-Cookie on the first response"; \
	first=$$(tr -d '\r' < $(IMAGE_TEST)/first | sed -n 's/^x-demo-upstream: //Ip'); \
	[ -n "$$first" ] || fail "the first response is not from a demo upstream"; \
	for i in 1 2 3 4 5; do \
	  got=$$(upstream -b $(IMAGE_TEST)/jar -c $(IMAGE_TEST)/jar) || fail "request $$i with the cookie"; \
	  [ "$$got" = "$$first" ] || fail "with the cookie, '$$got' answered instead of $$first"; done; \
	spread=$$(for i in $$(seq 20); do upstream; done | sort -u | wc -l) || fail "requests without the cookie"; \
	[ "$$spread" -gt 1 ] || fail "without the cookie every request went to one upstream"; \
	pid=$$($(PODMAN) inspect -f '{{.State.Pid}}' sticky-gateway-test); \
	[ "$$(stat -c %u /proc/$$pid)" = 65534 ] || fail "the gateway does not run as uid 65534"; \
	start=$$(date +%s%N); $(PODMAN) stop -t 10 sticky-gateway-test >/dev/null; \
	ms=$$(( ($$(date +%s%N) - start) / 1000000 )); \
	status=$$($(PODMAN) inspect -f '{{.State.ExitCode}}' sticky-gateway-test); \
	[ "$$ms" -lt 3000 ] && [ "$$status" = 0 ] || fail "podman stop took $$ms ms, exit status $$status (137: SIGKILLed)"; \
	echo "image-test: ok: cookie set, sticky to $$first over 6 requests, spread without it; uid 65534;" \
	  "podman stop took $$ms ms, exit status 0"
