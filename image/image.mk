# The container image, included by the top Makefile. Needs root and apt (Debian); no Docker engine.
#   make image        dist/sticky-gateway-image.tar (OCI archive), also tagged localhost/sticky-gateway:dev
#   make image-run    serve it with podman (host network): the image's config plus --demo upstreams
#   make image-test   build it, then run it as Kubernetes does (read-only root, no capabilities) and
#                     check its labels, stickiness, the admin endpoint, reloads and a graceful stop
#
# The image is FROM scratch: the Bun-compiled binary, the shared libraries it links, /etc/passwd and
# /etc/group (for user nobody), /tmp and a default config. One layer, no shell. It runs as 65534.

IMAGE := localhost/sticky-gateway:dev
IMAGE_TAR := dist/sticky-gateway-image.tar
IMAGE_ROOTFS := build/image-rootfs
IMAGE_CONFIG := /etc/sticky-gateway/config.toml

# OCI labels (`podman image inspect`): the version, description and licence from package.json; the
# source is the git remote's URL (`make image IMAGE_SOURCE=URL` to name another).
pkg-field = $(shell node -p 'require("./package.json").$(1)')
IMAGE_SOURCE ?= $(or $(shell git remote get-url origin 2>/dev/null),unknown: set IMAGE_SOURCE=URL)
IMAGE_LABELS = \
	--label 'org.opencontainers.image.title=sticky-gateway' \
	--label 'org.opencontainers.image.description=$(call pkg-field,description)' \
	--label 'org.opencontainers.image.version=$(call pkg-field,version)' \
	--label 'org.opencontainers.image.licenses=$(call pkg-field,license)' \
	--label 'org.opencontainers.image.source=$(IMAGE_SOURCE)'

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
$(IMAGE_TAR): $(BINARY) image/config.toml image/image.mk package.json
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
	  --user 65534:65534 --port 8080/tcp --created-by 'make image' $(IMAGE_LABELS) sticky-gateway-build
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

# The gateway in the container as deploy/kubernetes/ runs it, on a mounted config whose loopback
# servers --demo serves (inside the container, which shares the host's network); what it checks is
# at the top of image/test.sh. Ports 18080, 18081 and 1900x stay clear of `make run`'s; with host
# networking they must be free on the host (IMAGE_TEST_PORT=... IMAGE_TEST_ADMIN_PORT=... pick others).
IMAGE_TEST_PORT ?= 18080
IMAGE_TEST_ADMIN_PORT ?= 18081

image-test: image-load
	@$(call apt-need,curl)
	PODMAN='$(PODMAN)' PODMAN_RUN='$(PODMAN_RUN)' IMAGE=$(IMAGE) IMAGE_CONFIG=$(IMAGE_CONFIG) \
	  IMAGE_TEST=build/image-test IMAGE_TEST_PORT=$(IMAGE_TEST_PORT) \
	  IMAGE_TEST_ADMIN_PORT=$(IMAGE_TEST_ADMIN_PORT) IMAGE_BINARY=$(BINARY) bash image/test.sh
