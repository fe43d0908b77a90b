/**
 * One state for every worker thread (issue 9 point 7): admin states, passive and active health,
 * in-flight requests, open upstream connections, the last sticky request, and per upstream the
 * round-robin cursors, in one `SharedArrayBuffer`. The main thread creates it from the config
 * snapshot and posts `buffers` to each worker, which attaches to the same memory with its own
 * parse of the same config.
 *
 * Lookups by name (upstream name, server id) are made once into slot numbers; the request path
 * uses `base + Server.index`, O(1). Counters move with `Atomics`; times are Float64 cells written
 * plainly (aligned 8-byte stores, and a stale time costs at most one wrong availability guess).
 *
 * The state belongs to one snapshot: a reload makes a new one ({@link SharedState.carry}) that
 * carries what the gateway learned over by (upstream name, server id).
 *
 * @module
 */
import type { Server, ServerState, Upstream } from "../config/mod.ts";
import {
  ACTIVE,
  ACTIVE_CHANGED_MS,
  ADMIN,
  ADMIN_CHANGED_MS,
  BACKUP_CURSOR,
  computeLayout,
  CONNECTIONS,
  FAILS,
  HISTORY_BITS,
  HISTORY_COUNT,
  HISTORY_LENGTH,
  IN_FLIGHT,
  LAST_CHECK_DURATION_MS,
  LAST_CHECK_MS,
  LAST_CHECK_STATUS,
  LAST_FAILURE_MS,
  LAST_STICKY_MS,
  type Layout,
  PRIMARY_CURSOR,
  SERVER_FLOATS,
  SERVER_INTS,
  UPSTREAM_INTS,
  VERSION,
} from "./layout.ts";

/**
 * Active health of a server: `unchecked` (no health checks for it: counts as up), `unknown`
 * (checks configured, none concluded yet: no traffic), `up`, `down`.
 */
export type ActiveHealth = "unchecked" | "unknown" | "up" | "down";

const ACTIVE_NAMES: readonly ActiveHealth[] = ["unchecked", "unknown", "up", "down"];
const ACTIVE_CODES: Readonly<Record<ActiveHealth, number>> = {
  unchecked: 0,
  unknown: 1,
  up: 2,
  down: 3,
};
/** Codes below this take traffic (unchecked, and up). */
const ACTIVE_UP = ACTIVE_CODES.up;

/** Admin states as stored. */
export const STATE_CODES: Readonly<Record<ServerState, number>> = { ready: 0, drain: 1, maint: 2 };
const STATE_NAMES: readonly ServerState[] = ["ready", "drain", "maint"];

/** What the layout is computed from: a config snapshot's upstreams (a `GatewayConfig` is one). */
export interface StateSource {
  readonly upstreams: ReadonlyMap<string, Upstream>;
}

/** The shared memory, structured-cloneable: post it to a `Worker` and attach there. */
export interface SharedStateBuffers {
  readonly memory: SharedArrayBuffer;
  /** The layout's fingerprint, compared when attaching. */
  readonly fingerprint: readonly string[];
}

/** Where an upstream's records are: resolved once per balancer, not per request. */
export interface UpstreamSlots {
  /** The upstream's record. */
  readonly upstream: number;
  /** Slot of `servers[0]`; a server's slot is `base + Server.index`. */
  readonly base: number;
}

/** The last active check of a server. */
export interface LastCheck {
  readonly atMs: number;
  /** The answer's status; 0 when none came (refused, timed out, bad answer). */
  readonly status: number;
  readonly durationMs: number;
}

/** Shared per-server and per-upstream state (see the module doc). */
export class SharedState {
  /** Post this to workers; `SharedState.attach(config, buffers)` there. */
  readonly buffers: SharedStateBuffers;
  readonly #ints: Int32Array;
  readonly #floats: Float64Array;
  readonly #upstreams = new Map<string, UpstreamSlots>();
  readonly #slotById = new Map<string, Map<string, number>>();
  readonly #slotOfServer = new Map<Server, number>();
  /** Upstream record of each server slot (setAdminState bumps that upstream's version). */
  readonly #upstreamOfSlot: Int32Array;
  /** Earlier generations' states whose requests or connections may still be open (main thread:
   * what the admin view reads sums them). */
  #retired: readonly Retired[] = [];
  /** The state this one was carried from, and when (see {@link SharedState.catchUp}). */
  #carried: (Retired & { readonly atMs: number }) | undefined;

  private constructor(source: StateSource, layout: Layout, memory: SharedArrayBuffer) {
    this.buffers = { memory, fingerprint: layout.fingerprint };
    this.#ints = new Int32Array(memory, 0, layout.floatsByteOffset / 4);
    this.#floats = new Float64Array(
      memory,
      layout.floatsByteOffset,
      layout.servers * SERVER_FLOATS,
    );
    this.#upstreamOfSlot = new Int32Array(layout.servers);
    let base = 0;
    let record = layout.upstreamIntsAt;
    for (const upstream of source.upstreams.values()) {
      this.#upstreams.set(upstream.name, { upstream: record, base });
      const ids = new Map<string, number>();
      for (const server of upstream.servers) {
        ids.set(server.id, base + server.index);
        this.#slotOfServer.set(server, base + server.index);
        this.#upstreamOfSlot[base + server.index] = record;
      }
      this.#slotById.set(upstream.name, ids);
      base += upstream.servers.length;
      record += UPSTREAM_INTS;
    }
  }

  /** New state for a snapshot (main thread): admin states from the config, all else zero. */
  static create(source: StateSource): SharedState {
    const layout = computeLayout(source.upstreams.values());
    const state = new SharedState(source, layout, new SharedArrayBuffer(layout.byteLength));
    for (const upstream of source.upstreams.values()) {
      for (const server of upstream.servers) {
        state.#ints[state.#slotOfServer.get(server)! * SERVER_INTS + ADMIN] =
          STATE_CODES[server.state];
      }
    }
    return state;
  }

  /** The state another thread created, for this thread's parse of the same config. */
  static attach(source: StateSource, buffers: SharedStateBuffers): SharedState {
    const layout = computeLayout(source.upstreams.values());
    const theirs = buffers.fingerprint.join("\n");
    if (theirs !== layout.fingerprint.join("\n") || buffers.memory.byteLength < layout.byteLength) {
      throw new Error("shared state was made for another config (upstreams or servers differ)");
    }
    return new SharedState(source, layout, buffers.memory);
  }

  /**
   * The state of the next generation (main thread, on reload): what `previous` learned is carried
   * over for each server of `source` that `before` had too (same upstream name and server id):
   * passive-health failures and last failure, active health with its history and last check (when
   * the upstream still has health checks), the last sticky request, and the admin state, unless
   * the new file says `state`/`down` for the server (`Server.stateSet`) or the running state is
   * still what the old file said (then the new file's applies). An upstream's round-robin cursor
   * is kept when `sameRotation` says its sequence is unchanged and no admin state moved.
   * In-flight requests and open connections stay counted where they began (the old generation's
   * requests end on its state); {@link SharedState.inFlight} and {@link SharedState.connections}
   * of the new state add up those still open.
   */
  static carry(
    source: StateSource,
    previous: SharedState,
    before: StateSource,
    sameRotation: (before: Upstream, after: Upstream) => boolean,
    nowMs: number = Date.now(),
  ): SharedState {
    const state = SharedState.create(source);
    const slots = new Int32Array(state.#upstreamOfSlot.length).fill(-1);
    for (const upstream of source.upstreams.values()) {
      const old = before.upstreams.get(upstream.name);
      const oldBase = previous.#upstreams.get(upstream.name)?.base;
      if (old === undefined || oldBase === undefined) continue;
      const oldById = new Map(old.servers.map((s) => [s.id, s]));
      let adminMoved = false;
      for (const server of upstream.servers) {
        const was = oldById.get(server.id);
        if (was === undefined) continue;
        const from = oldBase + was.index;
        const to = state.#slotOfServer.get(server)!;
        slots[to] = from;
        state.#copyServer(previous, from, to, upstream.health !== undefined);
        const running = previous.adminState(from);
        const admin = server.stateSet === true || running === was.state ? server.state : running;
        Atomics.store(state.#ints, to * SERVER_INTS + ADMIN, STATE_CODES[admin]);
        state.#floats[to * SERVER_FLOATS + ADMIN_CHANGED_MS] = admin === running
          ? previous.adminChangedMs(from)
          : nowMs;
        if (admin !== running) adminMoved = true;
      }
      if (!adminMoved && sameRotation(old, upstream)) {
        const record = state.#upstreams.get(upstream.name)!.upstream;
        const oldRecord = previous.#upstreams.get(upstream.name)!.upstream;
        for (const cell of [PRIMARY_CURSOR, BACKUP_CURSOR]) {
          Atomics.store(state.#ints, record + cell, Atomics.load(previous.#ints, oldRecord + cell));
        }
      }
    }
    state.#carried = { state: previous, slots, atMs: nowMs };
    // The previous state and those it still sums, mapped to this layout; gone once nothing is
    // open on them.
    const retired: Retired[] = [{ state: previous, slots }];
    for (const older of previous.#retired) {
      retired.push({ state: older.state, slots: slots.map((s) => s < 0 ? -1 : older.slots[s]) });
    }
    state.#retired = retired.filter((r) => r.slots.some((s) => s >= 0 && r.state.#openAt(s)));
    return state;
  }

  /**
   * Just before the swap: admin states set on the previous state since the carry (the admin API
   * writes the state in use until the swap, and the workers took a moment to prepare) are set
   * here too, so none is lost.
   */
  catchUp(): void {
    const carried = this.#carried;
    if (carried === undefined) return;
    const { state: previous, slots, atMs } = carried;
    for (let slot = 0; slot < slots.length; slot++) {
      const from = slots[slot];
      if (from < 0) continue;
      const changed = previous.adminChangedMs(from);
      if (changed >= atMs) this.setAdminState(slot, previous.adminState(from), changed);
    }
  }

  /** Copies what a server learned (not its admin state, not its gauges) from `from` in
   * `previous` to `to` here. */
  #copyServer(previous: SharedState, from: number, to: number, checked: boolean): void {
    const a = previous.#ints;
    const b = this.#ints;
    const i = from * SERVER_INTS;
    const j = to * SERVER_INTS;
    b[j + FAILS] = Atomics.load(a, i + FAILS);
    const f = from * SERVER_FLOATS;
    const g = to * SERVER_FLOATS;
    for (const cell of [LAST_FAILURE_MS, LAST_STICKY_MS]) {
      this.#floats[g + cell] = previous.#floats[f + cell];
    }
    if (!checked) return;
    const active = Atomics.load(a, i + ACTIVE);
    if (active !== ACTIVE_CODES.up && active !== ACTIVE_CODES.down) return;
    b[j + ACTIVE] = active;
    for (const cell of [HISTORY_BITS, HISTORY_COUNT, LAST_CHECK_STATUS]) b[j + cell] = a[i + cell];
    for (const cell of [LAST_CHECK_MS, LAST_CHECK_DURATION_MS, ACTIVE_CHANGED_MS]) {
      this.#floats[g + cell] = previous.#floats[f + cell];
    }
  }

  /** Requests or connections still open at this slot, in this state alone. */
  #openAt(slot: number): boolean {
    return Atomics.load(this.#ints, slot * SERVER_INTS + IN_FLIGHT) !== 0 ||
      Atomics.load(this.#ints, slot * SERVER_INTS + CONNECTIONS) !== 0;
  }

  /** Whether the health checker must check this server before it takes traffic: it has no
   * concluded active health (a new server, or one carried from an upstream without checks). */
  activeConcluded(slot: number): boolean {
    const code = Atomics.load(this.#ints, slot * SERVER_INTS + ACTIVE);
    return code === ACTIVE_CODES.up || code === ACTIVE_CODES.down;
  }

  /** The upstream's records; throws when its servers are not those the state was made for. */
  upstreamSlots(upstream: Upstream): UpstreamSlots {
    const slots = this.#upstreams.get(upstream.name);
    const ids = this.#slotById.get(upstream.name);
    if (
      slots === undefined || ids === undefined || ids.size !== upstream.servers.length ||
      upstream.servers.some((s) => ids.get(s.id) !== slots.base + s.index)
    ) {
      throw new Error(`shared state has no upstream ${upstream.name} with these servers`);
    }
    return slots;
  }

  /** A server's slot by names (admin API paths), or undefined. */
  serverSlot(upstream: string, serverId: string): number | undefined {
    return this.#slotById.get(upstream)?.get(serverId);
  }

  /** A server's slot by its config object (this thread's snapshot), or undefined: for code that
   * sees a `Server` but not its upstream (the upstream client counting connections). */
  slotOf(server: Server): number | undefined {
    return this.#slotOfServer.get(server);
  }

  // --- admin state ---------------------------------------------------------------------------

  /** The server's admin state. */
  adminState(slot: number): ServerState {
    return STATE_NAMES[Atomics.load(this.#ints, slot * SERVER_INTS + ADMIN)];
  }

  /**
   * Sets the admin state for every thread; false when it was already so. A change restarts the
   * upstream's round robin and bumps its version, so each thread rebuilds its cycles.
   */
  setAdminState(slot: number, state: ServerState, nowMs: number = Date.now()): boolean {
    const code = STATE_CODES[state];
    const at = slot * SERVER_INTS + ADMIN;
    if (Atomics.exchange(this.#ints, at, code) === code) return false;
    this.#floats[slot * SERVER_FLOATS + ADMIN_CHANGED_MS] = nowMs;
    const record = this.#upstreamOfSlot[slot];
    Atomics.store(this.#ints, record + PRIMARY_CURSOR, 0);
    Atomics.store(this.#ints, record + BACKUP_CURSOR, 0);
    Atomics.add(this.#ints, record + VERSION, 1);
    return true;
  }

  /** When the admin state last changed (ms), 0 if never since start. */
  adminChangedMs(slot: number): number {
    return this.#floats[slot * SERVER_FLOATS + ADMIN_CHANGED_MS];
  }

  /** The upstream's state version (one Atomics.load: read on every pick). */
  version(upstreamRecord: number): number {
    return Atomics.load(this.#ints, upstreamRecord + VERSION);
  }

  /** The Int32 cells a round-robin cursor lives in, for `WeightedRoundRobin`. */
  cursor(upstreamRecord: number, group: "primaries" | "backups"): SharedCursor {
    const index = upstreamRecord + (group === "primaries" ? PRIMARY_CURSOR : BACKUP_CURSOR);
    return { cells: this.#ints, index };
  }

  // --- passive health ------------------------------------------------------------------------

  /** Failures counted now. */
  failures(slot: number): number {
    return Atomics.load(this.#ints, slot * SERVER_INTS + FAILS);
  }

  /** When the last failure was recorded (ms), 0 if never. */
  lastFailureMs(slot: number): number {
    return this.#floats[slot * SERVER_FLOATS + LAST_FAILURE_MS];
  }

  /** Counts a failure; the count starts anew when the previous one is `failTimeoutMs` old. */
  recordFailure(slot: number, nowMs: number, failTimeoutMs: number): void {
    const at = slot * SERVER_INTS + FAILS;
    const last = slot * SERVER_FLOATS + LAST_FAILURE_MS;
    // Two threads may both reset and add here: the count is then one short, never stuck.
    if (nowMs - this.#floats[last] >= failTimeoutMs) Atomics.store(this.#ints, at, 0);
    Atomics.add(this.#ints, at, 1);
    this.#floats[last] = nowMs;
  }

  /** Clears the count (a success). Read first: every success lands here, and a write to the
   * shared line would make it bounce between the threads' caches. */
  clearFailures(slot: number): void {
    const at = slot * SERVER_INTS + FAILS;
    if (this.#ints[at] !== 0) Atomics.store(this.#ints, at, 0);
  }

  /** Passive health failed it: `maxFails` reached and the last failure within `failTimeoutMs`. */
  passiveFailed(slot: number, server: Server, nowMs: number): boolean {
    if (server.maxFails === 0) return false;
    return this.#ints[slot * SERVER_INTS + FAILS] >= server.maxFails &&
      nowMs - this.#floats[slot * SERVER_FLOATS + LAST_FAILURE_MS] < server.failTimeoutMs;
  }

  // --- active health -------------------------------------------------------------------------

  /** The server's active health. */
  activeHealth(slot: number): ActiveHealth {
    return ACTIVE_NAMES[Atomics.load(this.#ints, slot * SERVER_INTS + ACTIVE)];
  }

  /** Whether active health lets the server take traffic (unchecked or up). */
  activeAllows(slot: number): boolean {
    const code = this.#ints[slot * SERVER_INTS + ACTIVE];
    return code === 0 || code === ACTIVE_UP;
  }

  /** Sets the active health (the health checker, main thread only). */
  setActiveHealth(slot: number, health: ActiveHealth, nowMs: number = Date.now()): void {
    const at = slot * SERVER_INTS + ACTIVE;
    if (Atomics.exchange(this.#ints, at, ACTIVE_CODES[health]) !== ACTIVE_CODES[health]) {
      this.#floats[slot * SERVER_FLOATS + ACTIVE_CHANGED_MS] = nowMs;
    }
  }

  /** When the active health last changed (ms), 0 if never. */
  activeChangedMs(slot: number): number {
    return this.#floats[slot * SERVER_FLOATS + ACTIVE_CHANGED_MS];
  }

  /** Records one check's result in the history (the health checker, main thread only). */
  recordCheck(
    slot: number,
    passed: boolean,
    status: number,
    atMs: number,
    durationMs: number,
  ): void {
    const i = slot * SERVER_INTS;
    const f = slot * SERVER_FLOATS;
    Atomics.store(this.#ints, i + HISTORY_BITS, (this.#ints[i + HISTORY_BITS] << 1) | +passed);
    if (this.#ints[i + HISTORY_COUNT] < HISTORY_LENGTH) {
      Atomics.add(this.#ints, i + HISTORY_COUNT, 1);
    }
    Atomics.store(this.#ints, i + LAST_CHECK_STATUS, status);
    this.#floats[f + LAST_CHECK_MS] = atMs;
    this.#floats[f + LAST_CHECK_DURATION_MS] = durationMs;
  }

  /** The last checks' results, oldest first (true = passed); at most 32. */
  healthHistory(slot: number): boolean[] {
    const i = slot * SERVER_INTS;
    const bits = Atomics.load(this.#ints, i + HISTORY_BITS);
    const count = Atomics.load(this.#ints, i + HISTORY_COUNT);
    const out: boolean[] = [];
    for (let n = count - 1; n >= 0; n--) out.push(((bits >>> n) & 1) === 1);
    return out;
  }

  /** The last check, or undefined before the first. */
  lastCheck(slot: number): LastCheck | undefined {
    const f = slot * SERVER_FLOATS;
    if (this.#ints[slot * SERVER_INTS + HISTORY_COUNT] === 0) return undefined;
    return {
      atMs: this.#floats[f + LAST_CHECK_MS],
      status: Atomics.load(this.#ints, slot * SERVER_INTS + LAST_CHECK_STATUS),
      durationMs: this.#floats[f + LAST_CHECK_DURATION_MS],
    };
  }

  // --- gauges --------------------------------------------------------------------------------

  /** Adds `delta` (1 when a request to the server starts, -1 when it ends). */
  addInFlight(slot: number, delta: number): void {
    Atomics.add(this.#ints, slot * SERVER_INTS + IN_FLIGHT, delta);
  }

  /** Requests in flight to the server, over all threads (and the generations before, whose
   * requests still run). */
  inFlight(slot: number): number {
    let count = Atomics.load(this.#ints, slot * SERVER_INTS + IN_FLIGHT);
    for (const r of this.#retired) {
      const at = r.slots[slot];
      if (at >= 0) count += Atomics.load(r.state.#ints, at * SERVER_INTS + IN_FLIGHT);
    }
    return count;
  }

  /** Adds `delta` (1 when an upstream connection opens, -1 when it closes). */
  addConnections(slot: number, delta: number): void {
    Atomics.add(this.#ints, slot * SERVER_INTS + CONNECTIONS, delta);
  }

  /** Open upstream connections to the server, over all threads (and generations). */
  connections(slot: number): number {
    let count = Atomics.load(this.#ints, slot * SERVER_INTS + CONNECTIONS);
    for (const r of this.#retired) {
      const at = r.slots[slot];
      if (at >= 0) count += Atomics.load(r.state.#ints, at * SERVER_INTS + CONNECTIONS);
    }
    return count;
  }

  /** Notes a request that came pinned to this server by its cookie. */
  markSticky(slot: number, nowMs: number): void {
    this.#floats[slot * SERVER_FLOATS + LAST_STICKY_MS] = nowMs;
  }

  /** When a request last came pinned to this server (ms), 0 if never. */
  lastStickyMs(slot: number): number {
    return this.#floats[slot * SERVER_FLOATS + LAST_STICKY_MS];
  }
}

/** An earlier generation's state, with the slot there of each slot here (-1: a new server). */
interface Retired {
  readonly state: SharedState;
  readonly slots: Int32Array;
}

/** A round-robin cursor in shared memory: `cells[index]`, moved with `Atomics.add`. */
export interface SharedCursor {
  readonly cells: Int32Array;
  readonly index: number;
}
