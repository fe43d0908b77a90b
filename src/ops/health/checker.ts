/**
 * Active health checks (issue 9 point 6), run in the main thread only: one loop per server of
 * each upstream with `[health]`, probing through the gateway's upstream client, writing the
 * result into the shared state that every worker's balancer reads (so a server is checked once,
 * not once per worker).
 *
 * A server starts `unknown` (no traffic) and its first check decides at once (up or down), so
 * `await firstRound()` before listening means no request reaches a server never checked. Then
 * `fall` failed checks in a row take an up server down and `rise` passed ones bring a down
 * server up (HAProxy's rule). An answer with `drain_status` passes and puts a `ready` server into
 * `drain`; once it answers a passing status again, the checker puts it back to `ready` if it was
 * the one that drained it (an operator's drain stays).
 *
 * @module
 */
import type { Server, ServerState, Upstream } from "../../config/mod.ts";
import { type HealthCheckSettings, statusPasses } from "../../config/health.ts";
import type { Transport } from "../../proxy/transport.ts";
import type { ActiveHealth, SharedState } from "../../state/shared_state.ts";
import { probe, type ProbeResult } from "./probe.ts";

/** A change the checker made: active health (`kind: "health"`: unknown, up, down) or the admin
 * state (`"state"`: ready, drain, by `drain_status`). */
export interface HealthEvent {
  readonly upstream: string;
  /** The server's id. */
  readonly server: string;
  readonly kind: "health" | "state";
  readonly from: ActiveHealth | ServerState;
  readonly to: ActiveHealth | ServerState;
  /** What the checks saw, e.g. "3 checks failed in a row (last: status 500)". */
  readonly reason: string;
}

/** One check's result (for metrics: health checks by result). */
export interface CheckResult {
  readonly upstream: string;
  readonly server: string;
  readonly passed: boolean;
  /** The answer's status, 0 when none came. */
  readonly status: number;
  /** Why it failed without an answer (`connect_refused`, `timeout`, …). */
  readonly error?: string;
  readonly durationMs: number;
}

/** An upstream as the checker reads it: `health` is `[upstreams.NAME.health]`, when present. */
export type CheckedUpstream = Upstream & { readonly health?: HealthCheckSettings };

/** The snapshot's upstreams (a `GatewayConfig` once `Upstream.health` exists). */
export interface CheckedConfig {
  readonly upstreams: ReadonlyMap<string, CheckedUpstream>;
}

/** Callbacks; each is called synchronously and must not throw (a throw is ignored). */
export interface HealthCheckerOptions {
  /** A server went up or down, or into or out of drain by `drain_status`. */
  readonly onEvent?: (event: HealthEvent) => void;
  /** Servers a previous checker put into drain (`drainedByChecks()`, by upstream name and id,
   * as `name/id`): a reload's new checker takes them out again when they answer normally. */
  readonly drained?: ReadonlySet<string>;
  /** Every check done. */
  readonly onCheck?: (result: CheckResult) => void;
}

/** Checks every server of every upstream with `[health]`, from construction until `stop()`. */
export class HealthChecker {
  readonly #loops: ServerLoop[] = [];
  readonly #stop = new AbortController();
  readonly #first: Promise<void>;
  #ended: Promise<void> | undefined;

  /** Marks the checked servers `unknown` (but those already up or down: a reload carried their
   * health over, and checks go on from there by `rise` and `fall`) and starts probing them all. */
  constructor(
    config: CheckedConfig,
    state: SharedState,
    transport: Transport,
    options: HealthCheckerOptions = {},
  ) {
    const unknown: Promise<void>[] = [];
    for (const upstream of config.upstreams.values()) {
      const settings = upstream.health;
      if (settings === undefined) continue;
      const base = state.upstreamSlots(upstream).base;
      for (const server of upstream.servers) {
        const context = { upstream, server, settings, slot: base + server.index };
        const loop = new ServerLoop(context, state, transport, options, this.#stop.signal);
        this.#loops.push(loop);
        // A server whose health a reload carried over keeps it: no traffic stops for a check.
        if (state.activeConcluded(context.slot)) continue;
        state.setActiveHealth(context.slot, "unknown");
        unknown.push(loop.firstDone);
      }
    }
    this.#first = Promise.all(unknown).then(() => {});
    for (const loop of this.#loops) loop.done = loop.run();
  }

  /** Resolves once every server that started `unknown` has had one check (at once when none). */
  firstRound(): Promise<void> {
    return this.#first;
  }

  /** The servers these checks put into drain (`drain_status`) and that are still there by it,
   * as `upstream/id`: for the checker that follows on a reload. */
  drainedByChecks(): Set<string> {
    const out = new Set<string>();
    for (const loop of this.#loops) {
      if (loop.drained) out.add(`${loop.context.upstream.name}/${loop.context.server.id}`);
    }
    return out;
  }

  /** Servers under check. */
  get servers(): number {
    return this.#loops.length;
  }

  /** Stops checking: probes under way are cut; resolves once every loop has ended. */
  stop(): Promise<void> {
    if (this.#ended === undefined) {
      this.#stop.abort();
      this.#ended = Promise.all(this.#loops.map((loop) => loop.done)).then(() => {});
    }
    return this.#ended;
  }
}

interface CheckContext {
  readonly upstream: Upstream;
  readonly server: Server;
  readonly settings: HealthCheckSettings;
  readonly slot: number;
}

/** One server's checks: probe, count, write the state, wait, again. */
class ServerLoop {
  readonly firstDone: Promise<void>;
  done: Promise<void> = Promise.resolve();
  #markFirstDone!: () => void;
  #rises = 0;
  #falls = 0;
  /** This checker put the server into drain (a `drain_status` answer). */
  #drained: boolean;

  constructor(
    readonly context: CheckContext,
    readonly state: SharedState,
    readonly transport: Transport,
    readonly options: HealthCheckerOptions,
    readonly stop: AbortSignal,
  ) {
    this.firstDone = new Promise((resolve) => this.#markFirstDone = resolve);
    this.#drained = options.drained?.has(`${context.upstream.name}/${context.server.id}`) ??
      false;
  }

  /** This loop's checks put the server into drain (and it is still so by them). */
  get drained(): boolean {
    return this.#drained;
  }

  async run(): Promise<void> {
    const { server, settings } = this.context;
    try {
      while (!this.stop.aborted) {
        const started = performance.now();
        const result = await probe(this.transport, server, settings, this.stop);
        if (this.stop.aborted) return;
        this.#apply(result);
        this.#markFirstDone();
        await this.#sleep(settings.intervalMs - (performance.now() - started));
      }
    } finally {
      // A stop before the first check must not leave firstRound() waiting forever.
      this.#markFirstDone();
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const onStop = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.stop.removeEventListener("abort", onStop);
        resolve();
      }, Math.max(0, ms));
      this.stop.addEventListener("abort", onStop, { once: true });
    });
  }

  #apply(result: ProbeResult): void {
    const { upstream, server, settings, slot } = this.context;
    const drainAnswer = settings.drainStatus !== undefined &&
      result.status === settings.drainStatus;
    const passed = result.status !== 0 && (drainAnswer || statusPasses(settings, result.status));
    const now = Date.now();
    this.state.recordCheck(slot, passed, result.status, now, result.durationMs);
    this.#call(() =>
      this.options.onCheck?.({
        upstream: upstream.name,
        server: server.id,
        passed,
        status: result.status,
        ...(result.error === undefined ? {} : { error: result.error }),
        durationMs: result.durationMs,
      })
    );
    if (passed) {
      this.#rises++;
      this.#falls = 0;
    } else {
      this.#falls++;
      this.#rises = 0;
    }
    this.#updateHealth(passed, describeResult(result), now);
    if (passed) this.#updateDrain(drainAnswer, result.status, now);
  }

  #updateHealth(passed: boolean, what: string, now: number): void {
    const { settings, slot } = this.context;
    const from = this.state.activeHealth(slot);
    let to: ActiveHealth = from;
    let reason = "";
    if (from !== "up" && from !== "down") {
      to = passed ? "up" : "down";
      reason = `first check ${passed ? "passed" : "failed"} (${what})`;
    } else if (from === "up" && !passed && this.#falls >= settings.fall) {
      to = "down";
      reason = `${this.#falls} checks failed in a row (last: ${what})`;
    } else if (from === "down" && passed && this.#rises >= settings.rise) {
      to = "up";
      reason = `${this.#rises} checks passed in a row (last: ${what})`;
    }
    if (to === from) return;
    this.state.setActiveHealth(slot, to, now);
    this.#event({ kind: "health", from, to, reason });
  }

  #updateDrain(drainAnswer: boolean, status: number, now: number): void {
    const { slot } = this.context;
    const admin = this.state.adminState(slot);
    if (drainAnswer) {
      if (admin !== "ready") return;
      this.state.setAdminState(slot, "drain", now);
      this.#drained = true;
      this.#event({
        kind: "state",
        from: "ready",
        to: "drain",
        reason: `health check answered ${status} (drain_status)`,
      });
    } else if (this.#drained) {
      this.#drained = false;
      // Someone else changed it since: theirs stands.
      if (admin !== "drain") return;
      this.state.setAdminState(slot, "ready", now);
      this.#event({
        kind: "state",
        from: "drain",
        to: "ready",
        reason: `health check answered ${status} again`,
      });
    }
  }

  #event(change: Pick<HealthEvent, "kind" | "from" | "to" | "reason">): void {
    const event: HealthEvent = {
      upstream: this.context.upstream.name,
      server: this.context.server.id,
      ...change,
    };
    this.#call(() => this.options.onEvent?.(event));
  }

  #call(callback: () => void): void {
    try {
      callback();
    } catch {
      // A failing logger must not stop the checks.
    }
  }
}

/** "status 500", or the failure code. */
function describeResult(result: ProbeResult): string {
  return result.status !== 0 ? `status ${result.status}` : result.error ?? "no answer";
}
