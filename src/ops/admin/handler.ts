/**
 * The admin listener's requests → responses (the runtime serves it on `[admin] listen`):
 *
 * | endpoint | |
 * |---|---|
 * | `GET /metrics` | Prometheus text exposition |
 * | `GET /healthz`, `GET /readyz` | Kubernetes probes: 200/503 with a short JSON (no token) |
 * | `GET /api/v1/upstreams`, `GET /api/v1/upstreams/{u}` | servers with state, health, figures |
 * | `PUT /api/v1/upstreams/{u}/servers/{id}/state` | `{"state": "ready" \| "drain" \| "maint"}` |
 * | `POST /api/v1/reload` | reloads the config file: 200 with the generation and changes, or 400 |
 * | `POST /api/v1/keys/reload` | the same (sticky token keys are read with the config) |
 * | `GET /api/v1/upstreams/{u}/cookie?server=ID` or `?decode=VALUE` | a server's cookie value, or what a value says |
 * | `GET /status` | the status page (its data comes from the API) |
 *
 * Every answer is `Cache-Control: no-store`. Wrong Host → 421; missing or wrong token → 401
 * without detail; unknown upstream or server → 404 and bad input → 400, as JSON naming the field.
 *
 * @module
 */
import { pid } from "node:process";
import type { AdminSettings } from "../../config/admin.ts";
import type { ServerState, Upstream } from "../../config/types.ts";
import { decodeCookie, serverCookie } from "../../sticky/inspect.ts";
import { HostCheck, TokenCheck } from "./access.ts";
import { RateSampler, type RecentFigures } from "./rates.ts";
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML } from "./status_page.ts";
import type { AdminView, ServerStatus, StickyCounts, UpstreamStatus } from "./view.ts";

/** One server as `GET /api/v1/upstreams` shows it. */
export interface ServerRow {
  readonly id: string;
  readonly address: string;
  readonly cookieValue: string;
  readonly backup: boolean;
  readonly weight: number;
  readonly state: ServerState;
  readonly health: ServerStatus["health"];
  readonly inFlight: number;
  /** `perSecond` over the last seconds (null until the API has been read twice ≥ 1 s apart). */
  readonly requests: { readonly total: number; readonly perSecond: number | null };
  /** From the view's histogram over the same seconds; null without requests in them. */
  readonly latencyMs: { readonly p50: number | null; readonly p99: number | null };
  readonly sticky: StickyCounts;
  readonly lastStickyMs: number | null;
  /** For a draining server, what a deploy script waits on; null in other states. */
  readonly drain: { readonly inFlight: number; readonly msSinceLastSticky: number | null } | null;
}

/** One upstream as the API shows it. */
export interface UpstreamRow {
  readonly name: string;
  readonly stickyCookie: string | null;
  readonly servers: readonly ServerRow[];
}

/** Test seams. */
export interface AdminHandlerOptions {
  /** The clock (ms since the epoch); default `Date.now`. */
  readonly now?: () => number;
  /** Told of a view that threw (the answer is a 500 without detail); default: nothing. */
  readonly onError?: (error: unknown) => void;
  /** An upstream of the snapshot in use, for the cookie endpoint; absent = it answers 404. */
  readonly upstream?: (name: string) => Upstream | undefined;
}

const STATES: readonly ServerState[] = ["ready", "drain", "maint"];
/** `{"state": "maintenance"}` with room to spare; larger bodies are not read. */
const MAX_BODY_BYTES = 4096;
const COMMON_HEADERS = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
};
const JSON_TYPE = "application/json; charset=utf-8";
const METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8";
const UPSTREAM_PATH = /^\/api\/v1\/upstreams\/([^/]+)$/;
const STATE_PATH = /^\/api\/v1\/upstreams\/([^/]+)\/servers\/([^/]+)\/state$/;
const COOKIE_PATH = /^\/api\/v1\/upstreams\/([^/]+)\/cookie$/;

/** Thrown inside the handler for a 4xx answer. */
class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly field?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(error);
  }
}

/**
 * The admin listener's request handler; it never throws (a failing view gives a 500).
 *
 * @example
 * ```ts ignore
 * const handle = createAdminHandler(view, config.admin!);
 * const response = await handle(new Request("http://127.0.0.1:9901/healthz"));
 * ```
 */
export function createAdminHandler(
  view: AdminView,
  settings: AdminSettings,
  options: AdminHandlerOptions = {},
): (request: Request) => Promise<Response> {
  const now = options.now ?? Date.now;
  const hosts = new HostCheck(settings);
  const tokens = new TokenCheck(settings.token);
  const sampler = new RateSampler();

  const rows = (): { nowMs: number; upstreams: UpstreamRow[] } => {
    const nowMs = now();
    const upstreams = view.upstreams();
    const figures = sampler.observe(upstreams, nowMs);
    return {
      nowMs,
      upstreams: upstreams.map((u) => upstreamRow(u, nowMs, figures)),
    };
  };

  const route = async (request: Request, path: string): Promise<Response> => {
    if (path === "/healthz" || path === "/readyz") {
      allowMethods(request, "GET");
      if (path === "/healthz") return probe(view.healthy(), path);
      const ready = view.ready();
      return probe(ready, path, ready ? undefined : view.unready?.());
    }
    if (!hosts.allows(request.headers.get("host"))) {
      throw new Refusal(421, "the Host header does not name this admin listener");
    }
    if (path === "/status" || path === "/") {
      allowMethods(request, "GET");
      if (path === "/") {
        return new Response(null, { status: 302, headers: { location: "/status" } });
      }
      return new Response(STATUS_PAGE_HTML, {
        headers: {
          "content-type": "text/html; charset=utf-8",
          "content-security-policy": STATUS_PAGE_CSP,
          "x-frame-options": "DENY",
          "referrer-policy": "no-referrer",
        },
      });
    }
    if (!tokens.allows(request.headers.get("authorization"))) {
      throw new Refusal(401, "unauthorized", undefined, { "www-authenticate": "Bearer" });
    }
    if (path === "/metrics") {
      allowMethods(request, "GET");
      return new Response(view.metricsText(), { headers: { "content-type": METRICS_TYPE } });
    }
    if (path === "/api/v1/upstreams") {
      allowMethods(request, "GET");
      return json(200, rows());
    }
    const one = UPSTREAM_PATH.exec(path);
    if (one !== null) {
      allowMethods(request, "GET");
      const name = segment(one[1], "upstream");
      const { nowMs, upstreams } = rows();
      const upstream = upstreams.find((u) => u.name === name);
      if (upstream === undefined) throw noUpstream(name, upstreams);
      return json(200, { nowMs, upstream });
    }
    const cookie = COOKIE_PATH.exec(path);
    if (cookie !== null && options.upstream !== undefined) {
      allowMethods(request, "GET");
      return cookieAnswer(
        options.upstream(segment(cookie[1], "upstream")),
        segment(cookie[1], "upstream"),
        new URL(request.url).searchParams,
        now(),
      );
    }
    if (
      (path === "/api/v1/reload" || path === "/api/v1/keys/reload") && view.reload !== undefined
    ) {
      allowMethods(request, "POST");
      if (!originAllowed(request.headers.get("origin"), hosts)) {
        throw new Refusal(403, "cross-origin requests are refused");
      }
      await request.body?.cancel();
      const answer = await view.reload();
      return answer.ok
        ? json(200, {
          generation: answer.generation,
          changes: answer.changes,
          ...(answer.listen === undefined ? {} : { listen: answer.listen }),
        })
        : json(400, {
          error: "the config has problems; the running one stays",
          generation: answer.generation,
          problems: answer.problems,
        });
    }
    const state = STATE_PATH.exec(path);
    if (state !== null) {
      allowMethods(request, "PUT");
      if (!originAllowed(request.headers.get("origin"), hosts)) {
        throw new Refusal(403, "cross-origin requests are refused");
      }
      return await putState(request, segment(state[1], "upstream"), segment(state[2], "server"));
    }
    throw new Refusal(404, `no endpoint ${path}`);
  };

  const putState = async (request: Request, name: string, id: string): Promise<Response> => {
    const current = view.upstreams();
    const upstream = current.find((u) => u.name === name);
    if (upstream === undefined) throw noUpstream(name, current);
    if (!upstream.servers.some((s) => s.id === id)) throw noServer(upstream, id);
    const target = parseStateBody(await readBody(request));
    const result = view.setServerState(name, id, target);
    // The config may have been reloaded between the look-up and the change.
    if (result === "no_upstream") throw noUpstream(name, view.upstreams());
    if (result === "no_server") throw noServer(upstream, id);
    const after = rows();
    const server = after.upstreams.find((u) => u.name === name)?.servers.find((s) => s.id === id);
    return json(200, { nowMs: after.nowMs, upstream: name, server });
  };

  return async (request) => {
    let response: Response;
    try {
      response = await route(request, normalize(new URL(request.url).pathname));
    } catch (error) {
      if (!(error instanceof Refusal)) {
        options.onError?.(error);
        response = json(500, { error: "internal error" });
      } else {
        const body = error.field === undefined
          ? { error: error.error }
          : { error: error.error, field: error.field };
        response = json(error.status, body, error.headers);
      }
    }
    for (const [key, value] of Object.entries(COMMON_HEADERS)) response.headers.set(key, value);
    if (request.method === "HEAD") {
      await response.body?.cancel();
      return new Response(null, { status: response.status, headers: response.headers });
    }
    return response;
  };
}

/** `GET /api/v1/upstreams/{u}/cookie?server=ID` or `?decode=VALUE` (src/sticky/inspect.ts). */
function cookieAnswer(
  upstream: Upstream | undefined,
  name: string,
  query: URLSearchParams,
  nowMs: number,
): Response {
  if (upstream === undefined) {
    throw new Refusal(404, `no upstream ${JSON.stringify(name)}`, "upstream");
  }
  const server = query.get("server");
  const decode = query.get("decode");
  if ((server === null) === (decode === null)) {
    throw new Refusal(400, "give one of ?server=ID and ?decode=VALUE", "query");
  }
  const answer = server !== null
    ? serverCookie(upstream, server, nowMs)
    : decodeCookie(upstream, decode!, nowMs);
  if (typeof answer === "string") {
    throw new Refusal(404, answer, server !== null ? "server" : "upstream");
  }
  return json(200, answer);
}

function upstreamRow(
  upstream: UpstreamStatus,
  nowMs: number,
  figures: (upstream: string, id: string) => RecentFigures,
): UpstreamRow {
  return {
    name: upstream.name,
    stickyCookie: upstream.stickyCookie,
    servers: upstream.servers.map((s) => {
      const recent = figures(upstream.name, s.id);
      const sinceSticky = s.lastStickyMs === null ? null : Math.max(0, nowMs - s.lastStickyMs);
      return {
        id: s.id,
        address: s.address,
        cookieValue: s.cookieValue,
        backup: s.backup,
        weight: s.weight,
        state: s.state,
        health: s.health,
        inFlight: s.inFlight,
        requests: { total: s.requests, perSecond: round(recent.perSecond) },
        latencyMs: { p50: round(recent.p50Ms), p99: round(recent.p99Ms) },
        sticky: s.sticky,
        lastStickyMs: s.lastStickyMs,
        drain: s.state === "drain"
          ? { inFlight: s.inFlight, msSinceLastSticky: sinceSticky }
          : null,
      };
    }),
  };
}

function round(n: number | null): number | null {
  return n === null ? null : Math.round(n * 100) / 100;
}

function normalize(path: string): string {
  return path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : path;
}

function segment(text: string, field: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new Refusal(400, `the ${field} in the path is not valid percent-encoding`, field);
  }
}

/** GET endpoints answer HEAD too. */
function allowMethods(request: Request, method: "GET" | "PUT" | "POST"): void {
  const allowed = method === "GET" ? ["GET", "HEAD"] : [method];
  if (!allowed.includes(request.method)) {
    throw new Refusal(405, `use ${allowed.join(" or ")}`, undefined, { allow: allowed.join(", ") });
  }
}

/** A browser sends Origin on a PUT; one from another site is refused (no CORS either). */
function originAllowed(origin: string | null, hosts: HostCheck): boolean {
  if (origin === null) return true;
  try {
    const url = new URL(origin);
    return url.protocol === "http:" && hosts.allows(url.host);
  } catch {
    return false;
  }
}

/** `upstreams`: for a 503 from `/readyz`, each upstream that keeps it from being ready, and why. */
function probe(ok: boolean, path: string, upstreams?: Readonly<Record<string, string>>): Response {
  const word = path === "/healthz" ? (ok ? "ok" : "unhealthy") : (ok ? "ready" : "not ready");
  // The pid: during a restart two processes share the admin port, and a script waiting for the
  // new one must tell which answered.
  return json(
    ok ? 200 : 503,
    upstreams === undefined ? { status: word, pid } : { status: word, pid, upstreams },
  );
}

function noUpstream(name: string, upstreams: readonly { name: string }[]): Refusal {
  const known = upstreams.map((u) => u.name).join(", ") || "none";
  return new Refusal(404, `no upstream ${JSON.stringify(name)}; upstreams: ${known}`, "upstream");
}

function noServer(upstream: UpstreamStatus, id: string): Refusal {
  const known = upstream.servers.map((s) => s.id).join(", ");
  return new Refusal(
    404,
    `no server ${JSON.stringify(id)} in upstream ${JSON.stringify(upstream.name)}; ids: ${known}`,
    "server",
  );
}

/** The request body as text, at most MAX_BODY_BYTES. */
async function readBody(request: Request): Promise<string> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) throw tooLarge();
  if (request.body === null) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return new TextDecoder().decode(bytes);
}

function tooLarge(): Refusal {
  return new Refusal(413, `the body is larger than ${MAX_BODY_BYTES} bytes`, "body");
}

const EXAMPLE = `send {"state": "drain"} (one of ${STATES.join(", ")})`;

function parseStateBody(text: string): ServerState {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Refusal(400, `the body is not JSON; ${EXAMPLE}`, "body");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new Refusal(400, `the body is not a JSON object; ${EXAMPLE}`, "body");
  }
  const fields = body as Record<string, unknown>;
  const extra = Object.keys(fields).find((key) => key !== "state");
  if (extra !== undefined) {
    throw new Refusal(400, `unknown field ${JSON.stringify(extra)}; ${EXAMPLE}`, extra);
  }
  const state = fields.state;
  if (state === undefined) throw new Refusal(400, `"state" is missing; ${EXAMPLE}`, "state");
  if (typeof state !== "string" || !(STATES as readonly string[]).includes(state)) {
    throw new Refusal(400, `${JSON.stringify(state)} is not a state; ${EXAMPLE}`, "state");
  }
  return state as ServerState;
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": JSON_TYPE, ...headers },
  });
}
