/**
 * One serving instance: a config snapshot, its upstream client, the gateway and a listener.
 * The main thread runs one; with `workers = N`, N-1 worker threads run one each on the same port.
 *
 * @module
 */
import type { Address, GatewayConfig } from "../config/mod.ts";
import { Gateway } from "../proxy/gateway.ts";
import { FetchTransport } from "../proxy/fetch.ts";
import { Http1Transport } from "../proxy/http1.ts";
import type { Transport } from "../proxy/transport.ts";
import type { Listener, Runtime } from "./runtime.ts";

export interface Instance {
  readonly listener: Listener;
  /** Stops accepting, lets in-flight requests finish (up to the grace period), closes upstreams. */
  stop(): Promise<void>;
}

function createTransport(config: GatewayConfig, runtime: Runtime): Transport {
  // Our HTTP/1.1 client is the default on both runtimes: byte-exact (Deno's fetch is not) and
  // faster than either runtime's fetch (docs/benchmarks.md). What this runtime's fetch cannot
  // honour was refused before (loadServableConfig in src/serve.ts, the same check as --check).
  return config.server.upstreamClient === "fetch"
    ? new FetchTransport(runtime.fetchOptions)
    : new Http1Transport(runtime.connect);
}

/**
 * Starts serving `config` on `address` (the config's listen address unless given: workers get
 * the port the main thread actually bound).
 */
export async function startInstance(
  config: GatewayConfig,
  runtime: Runtime,
  address?: Address,
): Promise<Instance> {
  const transport = createTransport(config, runtime);
  const gateway = new Gateway(config, transport, {
    onUpstreamError: (server, code, detail) =>
      console.error(`sticky-gateway: upstream ${server.address.text}: ${code}: ${detail}`),
    connect: runtime.connect,
  });
  const listener = await runtime.listen(address ?? config.server.listen, gateway.handle, {
    reusePort: config.server.workers > 1,
    tls: config.server.tls,
    clientMaxHeaderSize: config.server.clientMaxHeaderSize,
    clientHeaderTimeoutMs: config.server.clientHeaderTimeoutMs,
    keepaliveTimeoutMs: config.server.keepaliveTimeoutMs,
    maxConnections: config.server.maxConnections,
  });
  return {
    listener,
    async stop() {
      // Open WebSocket sessions would hold the stop for the whole grace period: close them
      // (1001, both ways) while in-flight requests finish.
      gateway.webSockets?.closeAll();
      await listener.stop(config.server.gracePeriodMs);
      transport.close();
    },
  };
}
