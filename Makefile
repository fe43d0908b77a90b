# sticky-gateway. `make run` and `make test` are all a newcomer needs; see README.md.
#
# Deno and Bun are pinned in package.json ("toolchain"). If `deno`/`bun` are on PATH at exactly
# those versions they are used; otherwise they are installed from npm into .tools/.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

DENO_VERSION := $(shell node -p 'require("./package.json").toolchain.deno')
BUN_VERSION := $(shell node -p 'require("./package.json").toolchain.bun')
TOOLS := $(CURDIR)/.tools
TBIN := $(TOOLS)/node_modules/.bin

# The pinned version from PATH if it is there, else from .tools/ (installed on first use).
DENO := $(shell command -v deno >/dev/null && deno --version | head -1 | grep -qF ' $(DENO_VERSION) ' && command -v deno || echo $(TBIN)/deno)
BUN := $(shell command -v bun >/dev/null && [ "$$(bun --version)" = "$(BUN_VERSION)" ] && command -v bun || echo $(TBIN)/bun)

DENO_PERMS := --allow-net --allow-read --allow-write --allow-env --allow-sys
# How the gateway runs on Deno: V8's young generation capped at 4 MiB a semi-space (its default
# grows to 16 MiB): peak RSS under the bench's load 150 -> 114 MiB at 8, 7-8 MiB less again at 4,
# at no CPU cost (2 is 11-19% slower; docs/benchmarks.md).
DENO_GATEWAY := $(DENO_PERMS) --v8-flags=--max-semi-space-size=4
BINARY := dist/sticky-gateway
SOURCES := $(shell find src -name '*.ts') package.json deno.json

.PHONY: help run dev test test-unit test-e2e test-tools check compile compile-deno image image-run bench bench-quick tools clean

help:
	@echo "make run       the gateway on config.example.toml with demo upstreams (127.0.0.1:8080)"
	@echo "make test      the whole suite: unit + end-to-end on Deno, on Bun and on the compiled binary, + bench-quick"
	@echo "make check     type check, lint and format check"
	@echo "make compile   $(BINARY) (bun build --compile)"
	@echo "make compile-deno   dist/sticky-gateway-deno (deno compile; needs the denort base, see README)"
	@echo "make image     OCI image from scratch with buildah (dist/sticky-gateway-image.tar)"
	@echo "make image-test   run the image with podman as Kubernetes does (read-only root): stickiness, the admin endpoint, reloads, a fast stop"
	@echo "make bench     throughput/latency/memory side by side with HAProxy (docs/benchmarks.md)"
	@echo "make profile   where the gateway's CPU goes under the bench's load, Deno and Bun (bench/profile.ts)"

$(TBIN)/deno $(TBIN)/bun:
	mkdir -p $(TOOLS)
	npm install --prefix $(TOOLS) --no-save --no-audit --no-fund deno@$(DENO_VERSION) bun@$(BUN_VERSION)
	touch $(TBIN)/deno $(TBIN)/bun

tools: $(DENO) $(BUN)

node_modules/.deno: package.json deno.json | $(DENO)
	$(DENO) install
	touch $@

deps: node_modules/.deno

run: deps
	$(DENO) run $(DENO_GATEWAY) src/main.ts --config config.example.toml --demo

dev: deps
	$(DENO) task dev

check: deps
	$(DENO) check src/ tests/
	$(DENO) lint
	$(DENO) fmt --check

# Worker threads (src/worker.ts) and the DNS discovery thread (src/discovery_worker.ts) are more
# entry points, which both compilers must be told of.
$(BINARY): $(SOURCES) | deps $(BUN)
	mkdir -p dist
	$(BUN) build --compile --minify --sourcemap src/main.ts src/worker.ts src/discovery_worker.ts --outfile $(BINARY)

compile: $(BINARY)

# deno compile needs denort-x86_64-unknown-linux-gnu.zip of the same Deno version, which it
# downloads unless it is already in $$DENO_DIR/dl/release/v$(DENO_VERSION)/ (see README).
compile-deno: deps
	mkdir -p dist
	$(DENO) compile $(DENO_GATEWAY) --include src/worker.ts --include src/discovery_worker.ts --output dist/sticky-gateway-deno src/main.ts

# What the tests run against, when missing (tests/install.sh): real nginx built from ../shared,
# haproxy, dnsmasq, chromium and prometheus.
test-tools:
	@tests/install.sh

test-unit: deps test-tools $(BUN)
	$(DENO) test $(DENO_PERMS) --allow-run tests/unit/
	$(BUN) test tests/unit/

# End-to-end: the real gateway process in front of real upstream servers on loopback, once per
# way of running it. The test runner is chosen to match (Deno's for the Deno gateway).
test-e2e: deps test-tools $(BINARY)
	GATEWAY=deno GATEWAY_DENO=$(DENO) $(DENO) test $(DENO_PERMS) --allow-run tests/e2e/
	GATEWAY=bun GATEWAY_BUN=$(BUN) $(BUN) test --timeout 30000 tests/e2e/
	GATEWAY=binary GATEWAY_BINARY=$(CURDIR)/$(BINARY) $(BUN) test --timeout 30000 tests/e2e/

# bench-quick (about 25 s, one short run per target, installs wrk/haproxy/nginx from apt when
# missing) keeps the benchmark harness from rotting: it fails when a target does not serve or
# verify, never on speed.
test: check test-unit test-e2e bench-quick

clean:
	rm -rf dist build

# Benchmarks (bench/) and the container image (image/) live in their own files.
-include bench/bench.mk
-include image/image.mk
