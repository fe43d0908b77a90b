/**
 * The operations of one serving thread, beside its request path: the views on the state all
 * threads share (server states and health, round-robin cursors) and on the metrics, and this
 * thread's access log. The request path gets three callbacks from here and knows nothing else.
 *
 * The main thread creates the shared memory ({@link ThreadOps.create}) and posts
 * {@link ThreadOps.buffers} to each worker, which attaches to it ({@link ThreadOps.attach}).
 *
 * @module
 */
import type { GatewayConfig, Server } from "../config/mod.ts";
import { SharedState, type SharedStateBuffers } from "../state/shared_state.ts";
import { Metrics, type MetricsBuffers } from "./metrics/metrics.ts";
import { AccessLog } from "./log/access_log.ts";
import { configureEvents, logEvent } from "./log/events.ts";
import type { StdioWrite } from "./log/writer.ts";
import type { FailureCode } from "../proxy/errors.ts";
import type { RequestDone, RequestRecord } from "../proxy/request_record.ts";

/** The memory every thread shares, structured-cloneable (posted to workers). */
export interface SharedBuffers {
  readonly state: SharedStateBuffers;
  /** Absent when nothing reads metrics (no `[admin]`). */
  readonly metrics?: MetricsBuffers;
}

/** Where a server of some generation's snapshot counts: its upstream and its slot. */
interface ServerPlace {
  readonly upstream: string;
  readonly state: SharedState;
  readonly slot: number;
}

/** One thread's operations (see the module's comment). */
export class ThreadOps {
  /** The snapshot in use (a reload swaps it with the state and metrics: {@link reload}). */
  config: GatewayConfig;
  state: SharedState;
  /** Only with an admin listener, which is what reads them. */
  metrics: Metrics | undefined;
  readonly accessLog: AccessLog | undefined;
  /** For the gateway: each request's record (undefined when nothing reads records). */
  readonly onRequestDone: RequestDone | undefined;
  /** Every generation's servers, while anything (a connection, a request) still holds them: a
   * connection opened for an older generation is counted closed where it was counted open. */
  readonly #places = new WeakMap<Server, ServerPlace>();

  private constructor(
    config: GatewayConfig,
    state: SharedState,
    metrics: Metrics | undefined,
    stdio: StdioWrite | undefined,
  ) {
    this.config = config;
    this.state = state;
    this.metrics = metrics;
    this.#place(config, state);
    // Events (stderr) and the access log write stdout/stderr off the event loop.
    configureEvents({ stdio });
    this.accessLog = AccessLog.open(config.log, {
      onDrop: metrics && ((lines) => this.metrics?.accessLogDropped(lines)),
      stdio,
    });
    const log = this.accessLog;
    // Metrics are read from `this` per record: a reload swaps them (records are counted by
    // upstream name and server id, so a request of the last generation counts in the new one).
    this.onRequestDone = log !== undefined && metrics !== undefined
      ? (record: RequestRecord) => {
        log.log(record);
        this.metrics!.recordRequest(record);
      }
      : log !== undefined
      ? (record: RequestRecord) => log.log(record)
      : metrics !== undefined
      ? (record: RequestRecord) => this.metrics!.recordRequest(record)
      : undefined;
  }

  /**
   * Swaps to the next generation (a reload, in this thread): its snapshot, its shared state and,
   * with metrics, new metrics on `metrics` (this thread's region), into which this thread's
   * counts so far are carried ({@link Metrics.carryFrom}).
   */
  reload(config: GatewayConfig, state: SharedState, metrics: Metrics | undefined): void {
    const previous = this.metrics;
    if (metrics !== undefined && previous !== undefined) metrics.carryFrom(previous);
    this.config = config;
    this.state = state;
    this.metrics = metrics;
    this.#place(config, state);
  }

  #place(config: GatewayConfig, state: SharedState): void {
    for (const upstream of config.upstreams.values()) {
      const base = state.upstreamSlots(upstream).base;
      for (const server of upstream.servers) {
        this.#places.set(server, { upstream: upstream.name, state, slot: base + server.index });
      }
    }
  }

  /**
   * The main thread's: the shared memory made for `threads` threads in all. `stdio`: the
   * runtime's `stdioWrite` (contracts.ts).
   */
  static create(config: GatewayConfig, threads: number, stdio?: StdioWrite): ThreadOps {
    const metrics = config.admin === undefined ? undefined : Metrics.create(config, threads);
    return new ThreadOps(config, SharedState.create(config), metrics, stdio);
  }

  /** A worker's (`threadIndex` 1 and up), on the main thread's memory. */
  static attach(
    config: GatewayConfig,
    buffers: SharedBuffers,
    threadIndex: number,
    stdio?: StdioWrite,
  ): ThreadOps {
    const metrics = buffers.metrics && Metrics.attach(config, buffers.metrics, threadIndex);
    return new ThreadOps(config, SharedState.attach(config, buffers.state), metrics, stdio);
  }

  /** What to post to the workers. */
  get buffers(): SharedBuffers {
    return { state: this.state.buffers, metrics: this.metrics?.buffers };
  }

  /** For the gateway: a failed upstream attempt, logged and counted. */
  readonly onUpstreamError = (server: Server, code: FailureCode, detail: string): void => {
    const upstream = this.#places.get(server)?.upstream;
    logEvent("warn", "upstream_error", {
      upstream,
      server: server.id,
      address: server.address.text,
      code,
      detail,
    });
    if (upstream !== undefined) this.metrics?.upstreamFailure(upstream, server.id, code);
  };

  /** For the upstream client: connections opened (+1) and closed (-1) per server. */
  readonly onConnections = (server: Server, delta: 1 | -1): void => {
    const place = this.#places.get(server);
    place?.state.addConnections(place.slot, delta);
  };

  /** For the listener: client connections opened (+1) and closed (-1) in this thread. */
  readonly onClientConnection = (delta: 1 | -1): void => {
    if (delta > 0) this.metrics?.clientConnectionOpened();
    else this.metrics?.clientConnectionClosed();
  };

  /** Writes what the access log holds and closes it. */
  async close(): Promise<void> {
    await this.accessLog?.close();
  }
}
