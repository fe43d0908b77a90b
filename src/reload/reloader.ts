/**
 * The main thread's reloader: reads the config file, validates it through the one path start and
 * `--check` take (`loadServableConfig`), refuses what only a restart can change, and turns a good
 * file into the next generation in every thread: the state is carried over by (upstream, server
 * id) ({@link SharedState.carry}). Every worker parses the same text (never the file again)
 * while the main thread checks it, swapping nothing; once the main thread has found it good and
 * every worker has parsed it, the main thread swaps and tells the workers to swap too, on the new
 * shared memory. The answer comes once every worker has. A bad file, or one a worker cannot
 * parse, changes nothing in any thread. Reloads run one at a time, and a storm is one more reload
 * ({@link ReloadQueue}).
 *
 * @module
 */
import { ConfigError, type GatewayConfig, readConfigText } from "../config/mod.ts";
import type { ConfigProblem } from "../config/problems.ts";
import type { Runtime } from "../runtime/runtime.ts";
import type { Instance } from "../runtime/instance.ts";
import { SharedState } from "../state/shared_state.ts";
import { Metrics } from "../ops/metrics/metrics.ts";
import type { ThreadOps } from "../ops/thread_ops.ts";
import type { AdminControl } from "../ops/main_ops.ts";
import type { ReloadAnswer } from "../ops/admin/view.ts";
import type { ReloadFigures } from "../ops/metrics/render.ts";
import { logEvent } from "../ops/log/events.ts";
import type { WorkerCommand, WorkerReport } from "../worker.ts";
import {
  type ConfigChanges,
  configChanges,
  listenerChanged,
  restartProblems,
  sameRotation,
} from "./changes.ts";
import type { Listener } from "../runtime/contracts.ts";
import { ReloadQueue } from "./queue.ts";
import type { Discovered } from "../discovery/types.ts";

/** Validates config text the way start does (serve.ts's `loadServableConfig`), with the DNS
 * answers `dns` server entries expand with. */
export type LoadConfig = (
  file: string,
  runtime: Runtime,
  text: string,
  discovered?: Discovered,
) => GatewayConfig;

/** What the reloader works on; `instance` and `workers` are read when a reload runs. */
export interface ReloaderOptions {
  readonly file: string;
  readonly runtime: Runtime;
  readonly load: LoadConfig;
  /** The main thread's operations: the snapshot, state and metrics in use. */
  readonly ops: ThreadOps;
  readonly instance: () => Instance | undefined;
  readonly workers: () => readonly Worker[];
  /** How long a worker may take to swap before the reload reports it (default 10 s). */
  readonly workerTimeoutMs?: number;
  /** Where events go (default the process's event log; tests collect them). */
  readonly log?: typeof logEvent;
  /** DNS discovery (src/discovery/): the latest answers, which every reload parses with. */
  readonly discovered?: () => Discovered;
  /** The text the running generation was parsed from (start's): what {@link Reloader.rediscover}
   * reloads when no file reload was asked for since. Absent: the file is read. */
  readonly text?: string;
  /** Told of every generation swapped in (discovery follows its `dns` entries). */
  readonly onReloaded?: (config: GatewayConfig) => void;
}

/** What asked for a reload, for the event log. */
export type ReloadTrigger = "SIGHUP" | "api" | "watch" | "dns";

/** Reloads the config file into every thread (see the module doc). */
export class Reloader {
  readonly #options: ReloaderOptions;
  readonly #queue: ReloadQueue<ReloadAnswer>;
  readonly #log: typeof logEvent;
  #generation = 0;
  #ok = 0;
  #error = 0;
  #trigger: ReloadTrigger = "api";
  /** Reloads tried: the workers' messages name theirs (a late answer to an aborted one is
   * never taken for the next one's). */
  #attempts = 0;
  /** What scrapes read while a reload applies: the last generation's metrics, until every
   * thread has carried its counts into the new ones. */
  #published: Metrics | undefined;
  /** When the next reload may start (performance.now()). */
  #nextStart = 0;
  /** The running generation's text: a DNS change reloads it, not the file. */
  #text: string | undefined;
  /** A reload of the file was asked for since the last run started (else only answers changed). */
  #readFile = false;

  constructor(options: ReloaderOptions) {
    this.#options = options;
    this.#log = options.log ?? logEvent;
    // The gap is waited out in the queue, where a reload asked meanwhile still joins it.
    this.#queue = new ReloadQueue(() => this.#reload(), () => this.#nextStart - performance.now());
    this.#text = options.text;
  }

  /** Reloads the file (after the reload under way, if any; joined with others asked meanwhile).
   * Never rejects: a failure is an answer with problems. */
  reload(trigger: ReloadTrigger): Promise<ReloadAnswer> {
    this.#trigger = trigger;
    this.#readFile = true;
    return this.#queue.request();
  }

  /** DNS answers changed: the running text again with the latest answers, the same swap (joined
   * with a file reload asked for meanwhile, which then reads the file). */
  rediscover(): Promise<ReloadAnswer> {
    if (!this.#readFile) this.#trigger = "dns";
    return this.#queue.request();
  }

  /** The generation serving: 0 at start, one more per successful reload. */
  get generation(): number {
    return this.#generation;
  }

  /** Reload counts and the generation, for `/metrics`. */
  figures(): ReloadFigures {
    return { ok: this.#ok, error: this.#error, generation: this.#generation };
  }

  /** For the admin listener. */
  readonly control: AdminControl = {
    metrics: () => this.#published ?? this.#options.ops.metrics,
    reload: () => this.reload("api"),
    reloads: () => this.figures(),
  };

  async #reload(): Promise<ReloadAnswer> {
    const trigger = this.#trigger;
    const started = performance.now();
    try {
      return await this.#apply(trigger);
    } catch (error) {
      // Not the file's fault (a worker failed, a bug): reported as a problem all the same.
      this.#error++;
      const message = (error as Error).message;
      this.#log("error", "config_reload_failed", {
        trigger,
        file: this.#options.file,
        error: message,
      });
      return { ok: false, generation: this.#generation, problems: [{ path: "", message }] };
    } finally {
      // The throttle of the config now serving (the new one's after a good reload): a storm of
      // reloads (a script, a file rewritten in a loop) runs at most 1/throttle a second, each
      // taking at most a tenth of a thread, and what is asked for meanwhile joins the next one
      // (Traefik's `providersThrottleDuration` is the same idea, at 2 s). Each new generation
      // costs the request path more than its own CPU (its collections, code compiled again): the
      // bench's `reloads` rows measure the whole.
      const ended = performance.now();
      const throttle = this.#options.ops.config.server.reloadThrottleMs;
      this.#nextStart = ended + Math.max(throttle, 9 * (ended - started));
    }
  }

  async #apply(trigger: ReloadTrigger): Promise<ReloadAnswer> {
    const { file, runtime, load, ops } = this.#options;
    const instance = this.#options.instance();
    if (instance === undefined) throw new Error("the gateway is not serving yet");
    const started = performance.now();
    const before = ops.config;
    const attempt = ++this.#attempts;
    const fromFile = this.#readFile || this.#text === undefined;
    this.#readFile = false;
    const discovered = this.#options.discovered?.();
    let text: string;
    try {
      text = fromFile ? readConfigText(file) : this.#text!;
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      return this.#refuse(trigger, error.problems);
    }
    // Phase 1: every worker parses the same text while this thread checks it (in parallel: the
    // parse is most of a reload's time); nothing swaps yet. Whatever this thread finds wrong
    // aborts theirs.
    const prepared = this.#tellWorkers({ type: "reload", file, text, attempt, discovered });
    // A worker handles its messages in order: the abort comes after its parse, whenever.
    const abort = () => void this.#tellWorkers({ type: "reload_abort", attempt });
    let config: GatewayConfig;
    try {
      config = load(file, runtime, text, discovered);
    } catch (error) {
      abort();
      if (!(error instanceof ConfigError)) throw error;
      return this.#refuse(trigger, error.problems);
    }
    const restart = restartProblems(before, config);
    if (restart.length > 0) {
      abort();
      return this.#refuse(trigger, restart);
    }
    const changes = configChanges(before, config);
    const generation = this.#generation + 1;
    // A listener that moves is bound first, beside the running one: if it cannot be, nothing
    // changes. It takes over at the swap.
    let bound: Listener | undefined;
    if (listenerChanged(before, config)) {
      try {
        // The same address (a new certificate or limits): the port bound now, also when the
        // file says port 0.
        const samePort = config.server.listen.text === before.server.listen.text;
        bound = await instance.bindListener(config, samePort ? instance.listener.port : undefined);
      } catch (error) {
        abort();
        return this.#refuse(trigger, [bindProblem(before, config, error)]);
      }
    }

    // The checks stop before the state is copied: none may write the old one after.
    await instance.pauseChecks();
    let state: SharedState;
    let metrics: Metrics | undefined;
    let refused: string[];
    try {
      state = SharedState.carry(config, ops.state, before, sameRotation);
      metrics = ops.metrics && Metrics.create(config, ops.metrics.buffers.threads);
      // A worker that could not parse it (a file the config names changed since) leaves every
      // thread on the running generation.
      refused = await prepared;
    } catch (error) {
      abort();
      if (bound !== undefined) await instance.dropListener();
      await instance.resumeChecks();
      throw error;
    }
    if (refused.length > 0) {
      abort();
      if (bound !== undefined) await instance.dropListener();
      await instance.resumeChecks();
      return this.#refuse(trigger, refused.map((message) => ({ path: "", message })));
    }
    // Phase 2: every thread swaps at once, the workers while this one does (a new server is
    // unchecked in the new state, so no thread sends it traffic before its first check).
    this.#published = ops.metrics;
    state.catchUp();
    const buffers = { state: state.buffers, metrics: metrics?.buffers };
    const committed = this.#tellWorkers({
      type: "reload_commit",
      attempt,
      buffers,
      port: bound?.port,
    });
    let swapFailed: string | undefined;
    try {
      await instance.reload(config, state, metrics);
    } catch (error) {
      // A bug, not the file: the workers swap all the same; the checks go on, and the event says
      // which thread did not.
      swapFailed = `main thread: ${(error as Error).message}`;
      await instance.resumeChecks().catch(() => {});
    }
    const failed = await committed;
    if (swapFailed !== undefined) failed.unshift(swapFailed);
    const listen = bound && shownAddress(bound);
    this.#published = metrics;
    this.#generation = generation;
    this.#ok++;
    this.#text = text;
    this.#options.onReloaded?.(config);
    this.#log(failed.length === 0 ? "info" : "error", "config_reloaded", {
      trigger,
      file,
      generation,
      added: count(changes.added),
      removed: count(changes.removed),
      changed: count(changes.changed),
      ...(listen === undefined ? {} : { listen }),
      // From reading the file to the last thread's swap (the target: 50 ms for 1,000
      // servers); a new server's first health check is part of it.
      duration_ms: Math.round((performance.now() - started) * 10) / 10,
      ...(failed.length === 0 ? {} : { workers_failed: failed.join("; ") }),
    });
    return { ok: true, generation, changes, ...(listen === undefined ? {} : { listen }) };
  }

  #refuse(trigger: ReloadTrigger, problems: readonly ConfigProblem[]): ReloadAnswer {
    this.#error++;
    const file = this.#options.file;
    for (const problem of problems) {
      this.#log("error", "config_reload_problem", {
        trigger,
        file,
        key: problem.path,
        problem: problem.message,
      });
    }
    this.#log("error", "config_reload_failed", {
      trigger,
      file,
      problems: problems.length,
      generation: this.#generation,
    });
    return { ok: false, generation: this.#generation, problems };
  }

  /**
   * Posts a reload step to every worker; resolves with their failures once all have answered
   * (`reload` → `reload_prepared`, `reload_commit` → `reloaded`; `reload_abort` is not answered).
   */
  #tellWorkers(
    command: Extract<WorkerCommand, { type: "reload" | "reload_commit" | "reload_abort" }>,
  ): Promise<string[]> {
    const timeoutMs = this.#options.workerTimeoutMs ?? 10_000;
    const workers = this.#options.workers();
    const { attempt } = command;
    const expected = command.type === "reload" ? "reload_prepared" : "reloaded";
    if (command.type === "reload_abort") {
      for (const worker of workers) worker.postMessage(command);
      return Promise.resolve([]);
    }
    return Promise.all(workers.map((worker, i) =>
      new Promise<string | undefined>((resolve) => {
        const done = (failure: string | undefined) => {
          clearTimeout(timer);
          worker.removeEventListener("message", onMessage);
          resolve(failure);
        };
        const onMessage = (event: MessageEvent<WorkerReport>) => {
          const report = event.data;
          if (!("attempt" in report) || report.attempt !== attempt) return;
          if (report.type === expected) done(undefined);
          if (report.type === "reload_failed") done(`worker ${i + 1}: ${report.message}`);
        };
        const timer = setTimeout(
          () => done(`worker ${i + 1}: no answer within ${timeoutMs} ms`),
          timeoutMs,
        );
        worker.addEventListener("message", onMessage);
        worker.postMessage(command);
      })
    )).then((failures) => failures.filter((f): f is string => f !== undefined));
  }
}

/** Why the new listener could not be bound (the running one stays). */
function bindProblem(before: GatewayConfig, after: GatewayConfig, error: unknown): ConfigProblem {
  const samePort = before.server.listen.port === after.server.listen.port;
  const reused = before.server.reusePort || before.server.workers > 1;
  const hint = samePort && !reused
    ? "; the running listener holds the port without SO_REUSEPORT (reuse_port = false): a restart applies it"
    : "";
  return {
    path: "server.listen",
    message: `cannot listen on ${after.server.listen.text}: ${
      (error as Error).message
    }${hint}; the running listener on ${before.server.listen.text} stays`,
  };
}

/** `host:port` as bound, IPv6 in brackets. */
function shownAddress({ host, port }: Listener): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

function count(servers: ConfigChanges["added"]): number {
  let n = 0;
  for (const ids of Object.values(servers)) n += ids.length;
  return n;
}
