# make bench / make bench-quick (issue 4): the gateway on Deno, on Bun and as the compiled binary
# side by side with HAProxy, nginx and plain runtime proxies. See bench/run.ts and docs/benchmarks.md.
#
#   make bench         full run (16-19 min on 2 cores): writes docs/benchmarks.md and .svg
#   make bench-quick   ~1 s per target (~25 s): bench/results/quick.md; fails if a target
#                      did not serve or verify
#   make bench BENCH_ARGS="--only 'gw-bun|haproxy' --rounds 5"    any option of bench/run.ts
#                      (a subset with --only leaves docs/ alone unless --write-docs)
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
