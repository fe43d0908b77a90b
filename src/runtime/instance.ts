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
import { type AdminControl, startAdmin, startHealthChecks } from "../ops/main_ops.ts";
import type { SharedState } from "../state/shared_state.ts";
import type { Metrics } from "../ops/metrics/metrics.ts";

export interface Instance {
  /** The client listener serving now (a reload may move it). */
  readonly listener: Listener;
  /** The admin listener (main thread, with `[admin]`). */
  readonly admin: Listener | undefined;
  /** Main thread, before a reload carries the state over: the health checks stop, so none writes
   * the old state once it has been copied. */
  pauseChecks(): Promise<void>;
  /**
   * Serves the next generation: `config`, on `state` (and `metrics`, new for this thread's region;
   * the old counts are carried into them). In the main thread the health checks start on `state`
   * first, and servers that need a first check get it before the swap. Requests under way finish
   * on their generation; the upstream client and its pools stay, but for servers gone.
   */
  reload(config: GatewayConfig, state: SharedState, metrics: Metrics | undefined): Promise<void>;
  /** Main thread, when a reload stopped before its swap: the checks go on on the running state. */
  resumeChecks(): Promise<void>;
  /**
   * Binds the client listener `config` asks for, beside the running one (a reload that changes
   * the address, certificate or connection limits), with `port` for a port 0 the main thread
   * has bound already. It takes over at the next {@link reload}. Throws when it cannot listen;
   * the running listener is untouched.
   */
  bindListener(config: GatewayConfig, port?: number): Promise<Listener>;
  /** A reload that bound a listener stopped before its swap: the new listener stops. */
  dropListener(): Promise<void>;
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
  /** Main thread: reloads and the metrics the admin listener reads (see main_ops.ts). */
  readonly control?: AdminControl;
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
  let checker = main ? startHealthChecks(config, ops, transport) : undefined;
  // Servers the checks drained (drain_status), handed from one checker to the next on reload.
  let drained = new Set<string>();
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
  const listen = (next: GatewayConfig, address: Address) =>
    runtime.listen(address, gateway.handle, {
      reusePort: next.server.workers > 1 || next.server.reusePort,
      tls: next.server.tls,
      clientMaxHeaderSize: next.server.clientMaxHeaderSize,
      clientHeaderTimeoutMs: next.server.clientHeaderTimeoutMs,
      keepaliveTimeoutMs: next.server.keepaliveTimeoutMs,
      maxConnections: next.server.maxConnections,
      onClientConnection: ops.metrics && ops.onClientConnection,
    });
  // The admin listener first: a restart's new process that cannot have it (another process holds
  // its port without SO_REUSEPORT) exits before it takes any client connection.
  let admin: Listener | undefined;
  try {
    admin = main ? await startAdmin(config, runtime, ops, options.control) : undefined;
  } catch (error) {
    await checker?.stop();
    throw new Error(
      `cannot listen on ${config.admin?.listen.text} (admin): ${(error as Error).message}`,
    );
  }
  let listener: Listener;
  try {
    listener = await listen(config, options.address ?? config.server.listen);
  } catch (error) {
    await admin?.stop(0);
    await checker?.stop();
    throw error;
  }
  /** Bound by a reload under way, serving beside `listener` until the swap. */
  let nextListener: Listener | undefined;
  /** Listeners a reload moved away from: their connections are served until they end. */
  const retired: Listener[] = [];
  const dropListener = async () => {
    const bound = nextListener;
    nextListener = undefined;
    await bound?.stop(ops.config.server.gracePeriodMs);
  };
  return {
    get listener() {
      return listener;
    },
    admin,
    async bindListener(next, port) {
      await dropListener();
      const address = port === undefined ? next.server.listen : { ...next.server.listen, port };
      nextListener = await listen(next, address);
      return nextListener;
    },
    dropListener,
    async pauseChecks() {
      await checker?.stop();
      drained = checker?.drainedByChecks() ?? drained;
      checker = undefined;
    },
    async resumeChecks() {
      if (main && checker === undefined) {
        checker = startHealthChecks(ops.config, ops, transport, ops.state, drained);
      }
      await checker?.firstRound();
    },
    async reload(next, state, metrics) {
      // The admin view moves to the new snapshot and state at once: a state set through the API
      // from now on is the new generation's.
      ops.reload(next, state, metrics);
      if (main) {
        await checker?.stop();
        drained = checker?.drainedByChecks() ?? drained;
        checker = startHealthChecks(next, ops, transport, state, drained);
        // Servers never checked take no traffic until checked: wait for that before the swap.
        await checker?.firstRound();
      }
      gateway.reload(next, state);
      if (nextListener !== undefined) {
        // The new listener accepts already; the old one stops accepting, and its connections
        // are served on (the new generation's requests) until they end.
        // Awaited: once the reload answers, a new connection reaches only the new listener.
        await listener.retire();
        retired.push(listener);
        listener = nextListener;
        nextListener = undefined;
      }
      const servers = [...next.upstreams.values()].flatMap((u) => u.servers);
      if (transport instanceof Http1Transport) transport.retain(servers);
      if (upgrades !== transport) upgrades.retain(servers);
    },
    async stop() {
      // The listening socket closes first, at once: a restart's new process takes every new
      // connection from here on (the checks stop meanwhile).
      const stopping = listener.stop(ops.config.server.gracePeriodMs);
      await checker?.stop();
      // Open WebSocket sessions would hold the stop for the whole grace period: close them
      // (1001, both ways) while in-flight requests finish.
      gateway.webSockets?.closeAll();
      await Promise.all([
        stopping,
        nextListener?.stop(0),
        ...retired.map((old) => old.stop(ops.config.server.gracePeriodMs)),
        admin?.stop(0),
      ]);
      transport.close();
      upgrades.close();
      await ops.close();
    },
  };
}
