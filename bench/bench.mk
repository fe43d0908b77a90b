# make bench / make bench-quick (issue 4): the gateway on Deno, on Bun and as the compiled binary
# side by side with HAProxy, nginx and plain runtime proxies. See bench/run.ts and docs/benchmarks.md.
#
#   make bench         full run (17-20 min on 2 cores): writes docs/benchmarks.md and .svg
#   make bench-quick   ~1 s per target and phase (~6 min): bench/results/quick.md; fails if a target
#                      did not serve or verify, or the micro-benchmark's checks failed
#   make bench BENCH_ARGS="--only 'gw-bun|haproxy' --rounds 5"    any option of bench/run.ts
#                      (a subset with --only leaves docs/ alone unless --write-docs;
#                      --no-micro skips the in-process phase)
#   make bench-micro   only the in-process micro-benchmarks (bench/micro/scale.ts; ops.ts: the
#                      access log's and the metrics' cost per request; token.ts: signed tokens') on Deno
#                      and on Bun, pinned to CPU 1 (~1 min); make bench runs scale.ts as its first phase
#
# Installs wrk, haproxy and nginx-light from apt when missing (needs root or sudo); the full run
# also tries caddy (apt) and node-http-proxy (npm, into .tools/bench), both optional.

BENCH_DEPS := $(TOOLS)/bench
BENCH_ENV = DENO=$(DENO) BUN=$(BUN) BINARY=$(CURDIR)/$(BINARY) \
	HTTP_PROXY_MODULE=$(BENCH_DEPS)/node_modules/http-proxy
BENCH_ARGS ?=

.PHONY: bench-tools bench-peers

bench-tools:
	@bench/install.sh

# Optional peers: a failure here only drops them from the table.
bench-peers:
	-@bench/install.sh --optional
	-@[ -f $(BENCH_DEPS)/node_modules/http-proxy/package.json ] || \
		npm install --prefix $(BENCH_DEPS) --no-save --no-audit --no-fund http-proxy@1.18.1 >/dev/null

bench: deps $(BINARY) bench-tools bench-peers | $(BUN)
	$(BENCH_ENV) $(BUN) bench/run.ts $(BENCH_ARGS)

bench-quick: deps $(BINARY) bench-tools | $(BUN)
	$(BENCH_ENV) $(BUN) bench/run.ts --quick $(BENCH_ARGS)

# Pinned like the proxy in `make bench` when there are 2 cores or more.
MICRO_PIN = $(shell [ "$$(nproc)" -ge 2 ] && command -v taskset >/dev/null && echo taskset -c 1)
MICRO_ARGS ?=

.PHONY: bench-micro

bench-micro: deps | $(DENO) $(BUN)
	$(MICRO_PIN) $(DENO) run -A bench/micro/scale.ts $(MICRO_ARGS)
	$(MICRO_PIN) $(BUN) bench/micro/scale.ts $(MICRO_ARGS)
	$(MICRO_PIN) $(DENO) run -A --v8-flags=--max-semi-space-size=4 bench/micro/ops.ts
	$(MICRO_PIN) $(BUN) bench/micro/ops.ts
	$(MICRO_PIN) $(DENO) run -A bench/micro/token.ts
	$(MICRO_PIN) $(BUN) bench/micro/token.ts

# make profile: where the gateway's CPU time goes under the bench's load (bench/profile.ts). A CPU
# profile on Deno (V8 inspector) and on Bun (--cpu-prof), cookie absent and present, ~12 s each:
# bench/results/profile-<runtime>-<cookie>-<time>.md (+ .cpuprofile, .json).
#   make profile PROFILE_ARGS="--runtime bun --cookie present --compare"   any option of profile.ts
PROFILE_ARGS ?=

.PHONY: profile

profile: deps bench-tools | $(BUN)
	DENO=$(DENO) BUN=$(BUN) $(BUN) bench/profile.ts $(PROFILE_ARGS)
