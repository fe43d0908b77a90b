/**
 * One serving instance: a config snapshot, its upstream client, the gateway and a listener, with
 * the thread's operations beside them (ops/thread_ops.ts). The main thread runs one, and the
 * once-per-process operations (health checks before it listens, the admin listener); with
 * `workers = N`, N-1 worker threads run one each on the same port.
 *
 * @module
 */
import type { Address, GatewayConfig } from "../config/mod.ts";
import { Gateway } from "../proxy/gateway.ts";
import { FetchTransport } from "../proxy/fetch.ts";
import { Http1Transport } from "../proxy/http1.ts";
import type { Transport } from "../proxy/transport.ts";
import type { Listener, Runtime } from "./runtime.ts";
import type { ThreadOps } from "../ops/thread_ops.ts";
import { startAdmin, startHealthChecks } from "../ops/main_ops.ts";

export interface Instance {
  readonly listener: Listener;
  /** The admin listener (main thread, with `[admin]`). */
  readonly admin: Listener | undefined;
  /** Stops accepting, lets in-flight requests finish (up to the grace period), closes upstreams. */
  stop(): Promise<void>;
}

function createTransport(config: GatewayConfig, runtime: Runtime, ops: ThreadOps): Transport {
  // Our HTTP/1.1 client is the default on both runtimes: byte-exact (Deno's fetch is not) and
  // faster than either runtime's fetch (docs/benchmarks.md). What this runtime's fetch cannot
  // honour was refused before (loadServableConfig in src/serve.ts, the same check as --check).
  return config.server.upstreamClient === "fetch"
    ? new FetchTransport(runtime.fetchOptions)
    : new Http1Transport(runtime.connect, { onConnections: ops.onConnections });
}

export interface InstanceOptions {
  /** This thread's operations (made on the shared memory). */
  readonly ops: ThreadOps;
  /** The process's main thread: health checks and the admin listener run here. */
  readonly main: boolean;
  /** Where to listen (the config's address unless given: workers get the port the main
   * thread actually bound). */
  readonly address?: Address;
}

/** Starts serving `config`. */
export async function startInstance(
  config: GatewayConfig,
  runtime: Runtime,
  options: InstanceOptions,
): Promise<Instance> {
  const { ops, main } = options;
  const transport = createTransport(config, runtime, ops);
  // The first round of health checks decides before any client is served.
  const checker = main ? startHealthChecks(config, ops, transport) : undefined;
  await checker?.firstRound();
  // WebSocket handshakes need our HTTP/1.1 client: the same one when plain requests use it.
  const upgrades = transport instanceof Http1Transport
    ? transport
    : new Http1Transport(runtime.connect, { onConnections: ops.onConnections });
  const gateway = new Gateway(config, transport, {
    state: ops.state,
    onUpstreamError: ops.onUpstreamError,
    onRequestDone: ops.onRequestDone,
    webSocketTransport: upgrades,
  });
  const listener = await runtime.listen(options.address ?? config.server.listen, gateway.handle, {
    reusePort: config.server.workers > 1,
    tls: config.server.tls,
    clientMaxHeaderSize: config.server.clientMaxHeaderSize,
    clientHeaderTimeoutMs: config.server.clientHeaderTimeoutMs,
    keepaliveTimeoutMs: config.server.keepaliveTimeoutMs,
    maxConnections: config.server.maxConnections,
    onClientConnection: ops.metrics && ops.onClientConnection,
  });
  let admin: Listener | undefined;
  try {
    admin = main ? await startAdmin(config, runtime, ops) : undefined;
  } catch (error) {
    await listener.stop(0);
    await checker?.stop();
    throw new Error(
      `cannot listen on ${config.admin?.listen.text} (admin): ${(error as Error).message}`,
    );
  }
  return {
    listener,
    admin,
    async stop() {
      await checker?.stop();
      // Open WebSocket sessions would hold the stop for the whole grace period: close them
      // (1001, both ways) while in-flight requests finish.
      gateway.webSockets?.closeAll();
      await Promise.all([listener.stop(config.server.gracePeriodMs), admin?.stop(0)]);
      transport.close();
      upgrades.close();
      await ops.close();
    },
  };
}
