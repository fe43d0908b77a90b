/**
 * A differential scenario: one sticky upstream (its servers, their spellings, weights, `down`,
 * `backup`, and the `sticky` arguments), the locations that use it, and a script of requests.
 * From it come the nginx.conf lines (module syntax or nginx 1.30's `sticky cookie`) and, until
 * the gateway's importer reads that file, the equivalent TOML ({@link scenarioToml}).
 *
 * @module
 */
import type { Backend } from "./backend.ts";
import type { Probe } from "./probe.ts";

/** How the address of a server is written in nginx.conf (and so in the TOML: byte-identical). */
export type Spelling = "ip" | "localhost" | "zero-port" | "ipv6";

/** One `server` line of the upstream. */
export interface ServerSpec {
  /** The backend's letter (A, B, …): the name it answers with in `x-upstream`. */
  readonly backend: string;
  readonly spelling?: Spelling;
  readonly weight?: number;
  readonly maxFails?: number;
  /** As written in nginx.conf ("1s"). */
  readonly failTimeout?: string;
  readonly down?: boolean;
  readonly backup?: boolean;
  /** nginx 1.30's `route=` server parameter. */
  readonly route?: string;
}

/** The module's value modes (`hash=`, `hmac=`, `text=raw`). */
export type ModuleMode = "md5" | "sha1" | "index" | "hmac-md5" | "hmac-sha1" | "raw";

/** The `sticky` directive's arguments, for either syntax. */
export interface StickySpec {
  /** The module's `hash=/hmac=/text=`; undefined = no argument (md5). Not for nginx 1.30. */
  readonly mode?: ModuleMode;
  readonly hmacKey?: string;
  /** `name=` of the module, the NAME of `sticky cookie NAME` (required there; default "route"). */
  readonly name?: string;
  readonly domain?: string;
  readonly path?: string;
  /** As written in nginx.conf: "1h", "90", "1h30m", "max" (nginx 1.30 only). */
  readonly expires?: string;
  readonly secure?: boolean;
  readonly httponly?: boolean;
  /** nginx 1.30 only: strict, lax, none as written. */
  readonly samesite?: string;
  /** The module's `no_fallback` argument. */
  readonly noFallback?: boolean;
  /** nginx 1.30's `sticky route $a $b …` (instead of `sticky cookie`): the variables. */
  readonly routeVars?: readonly string[];
}

/** One differential scenario (see the module comment). */
export interface Scenario {
  /** Short id, also the upstream's name and the location prefix (`/ID/`). */
  readonly id: string;
  readonly title: string;
  readonly servers: readonly ServerSpec[];
  readonly sticky: StickySpec;
  /** `sticky_no_fallback;` in the location `/ID/nf/` (module only). */
  readonly locationNoFallback?: boolean;
  /**
   * `sticky_no_fallback;` at server level (module only): a second `server` block for the Host
   * `ID.nofallback.test` on the same port, whose `location /` uses this upstream.
   */
  readonly serverNoFallback?: boolean;
  /** Every request ends in nginx's own answer (so "nginx reached a backend" is not asked). */
  readonly reachesNoBackend?: boolean;
  /** The requests, run the same way against nginx and then against the gateway. */
  readonly script: (probe: Probe) => Promise<void>;
  /**
   * Set when this scenario shows a difference that is neither zero nor one of the documented
   * deliberate ones: the test is skipped with this note (for the lead to decide), and the
   * scenario stays here, ready to run once decided.
   */
  readonly undocumented?: string;
  /** Set when the gateway lacks what the scenario needs (a key not landed yet): skipped with it. */
  readonly pending?: string;
  /** What the gateway must accept to run it (a key still being built); checked with --check. */
  readonly requires?: Requirement;
}

/** A config the gateway must take (`--check` exit 0) for a scenario to run, and what it shows. */
export interface Requirement {
  readonly what: string;
  readonly toml: string;
}

/** Where the backend of `spec` listens: ::1 for a server written `[::1]:port`. */
export function backendHost(spec: ServerSpec): string {
  return spec.spelling === "ipv6" ? "::1" : "127.0.0.1";
}

/** The server address text of `spec` for a backend listening on 127.0.0.1:`port`. */
export function addressText(spec: ServerSpec, port: number): string {
  switch (spec.spelling ?? "ip") {
    case "ip":
      return `127.0.0.1:${port}`;
    case "localhost":
      return `localhost:${port}`;
    case "zero-port":
      return `127.0.0.1:0${port}`;
    case "ipv6":
      return `[::1]:${port}`;
  }
}

/** A scenario's backends by letter. */
export type Backends = ReadonlyMap<string, Backend>;

function portOf(backends: Backends, letter: string): number {
  const backend = backends.get(letter);
  if (backend === undefined) throw new Error(`no backend ${letter}`);
  return backend.port;
}

/** The `upstream` block of `scenario`, for the module or for nginx 1.30. */
export function upstreamBlock(
  scenario: Scenario,
  backends: Backends,
  kind: "module" | "native",
): string {
  const lines = [`    upstream ${scenario.id} {`];
  const server = (spec: ServerSpec) => {
    const params = [
      addressText(spec, portOf(backends, spec.backend)),
      ...(spec.weight === undefined ? [] : [`weight=${spec.weight}`]),
      ...(spec.maxFails === undefined ? [] : [`max_fails=${spec.maxFails}`]),
      ...(spec.failTimeout === undefined ? [] : [`fail_timeout=${spec.failTimeout}`]),
      ...(spec.route === undefined ? [] : [`route=${spec.route}`]),
      ...(spec.down ? ["down"] : []),
      ...(spec.backup ? ["backup"] : []),
    ];
    lines.push(`        server ${params.join(" ")};`);
  };
  // The module refuses `backup` after `sticky`: backups are declared before it.
  for (const spec of scenario.servers) if (spec.backup) server(spec);
  if (kind === "module") {
    lines.push(`        ${["sticky", ...moduleArgs(scenario.sticky).map(nginxWord)].join(" ")};`);
  }
  for (const spec of scenario.servers) if (!spec.backup) server(spec);
  if (kind === "native") {
    lines.push(`        sticky ${nativeArgs(scenario.sticky).map(nginxWord).join(" ")};`);
  }
  lines.push("    }");
  return lines.join("\n");
}

/** `word` as one nginx.conf argument: in double quotes when it has a blank, quote or `;`. */
function nginxWord(word: string): string {
  return /[\s"';{}\\]/.test(word) ? `"${word.replace(/["\\]/g, (c) => `\\${c}`)}"` : word;
}

function moduleArgs(sticky: StickySpec): string[] {
  const args: string[] = [];
  const mode = sticky.mode;
  if (mode === "md5" || mode === "sha1" || mode === "index") args.push(`hash=${mode}`);
  if (mode === "hmac-md5" || mode === "hmac-sha1") {
    args.push(`hmac=${mode.slice(5)}`, `hmac_key=${sticky.hmacKey ?? "secret"}`);
  }
  if (mode === "raw") args.push("text=raw");
  if (sticky.name !== undefined) args.push(`name=${sticky.name}`);
  if (sticky.domain !== undefined) args.push(`domain=${sticky.domain}`);
  if (sticky.path !== undefined) args.push(`path=${sticky.path}`);
  if (sticky.expires !== undefined) args.push(`expires=${sticky.expires}`);
  if (sticky.secure) args.push("secure");
  if (sticky.httponly) args.push("httponly");
  if (sticky.noFallback) args.push("no_fallback");
  return args;
}

function nativeArgs(sticky: StickySpec): string[] {
  if (sticky.routeVars !== undefined) return ["route", ...sticky.routeVars];
  const args = ["cookie", sticky.name ?? "route"];
  if (sticky.expires !== undefined) args.push(`expires=${sticky.expires}`);
  if (sticky.domain !== undefined) args.push(`domain=${sticky.domain}`);
  if (sticky.path !== undefined) args.push(`path=${sticky.path}`);
  if (sticky.samesite !== undefined) args.push(`samesite=${sticky.samesite}`);
  if (sticky.secure) args.push("secure");
  if (sticky.httponly) args.push("httponly");
  return args;
}

/** nginx's proxy settings in every location (the gateway's defaults where they matter). */
const PROXY = "proxy_pass";

/** The `server` blocks for all scenarios on `port` (plus one per server-level no_fallback). */
export function serverBlocks(scenarios: readonly Scenario[], port: number): string {
  const locations: string[] = [];
  for (const s of scenarios) {
    locations.push(`        location /${s.id}/ {\n            ${PROXY} http://${s.id};\n        }`);
    if (s.locationNoFallback) {
      locations.push(
        `        location /${s.id}/nf/ {\n            sticky_no_fallback;\n            ${PROXY} http://${s.id};\n        }`,
      );
    }
  }
  const blocks = [
    `    server {\n        listen 127.0.0.1:${port};\n        proxy_connect_timeout 2s;\n${
      locations.join("\n")
    }\n    }`,
  ];
  for (const s of scenarios.filter((s) => s.serverNoFallback)) {
    blocks.push(
      `    server {\n        listen 127.0.0.1:${port};\n        server_name ${s.id}.nofallback.test;\n` +
        `        proxy_connect_timeout 2s;\n        sticky_no_fallback;\n` +
        `        location / {\n            ${PROXY} http://${s.id};\n        }\n    }`,
    );
  }
  return blocks.join("\n");
}

/** The http block's content for `scenarios`: their upstreams and the servers on `port`. */
export function httpBody(
  scenarios: readonly Scenario[],
  backends: ReadonlyMap<string, Backends>,
  kind: "module" | "native",
  port: number,
): string {
  const upstreams = scenarios.map((s) => upstreamBlock(s, backends.get(s.id)!, kind));
  return `${upstreams.join("\n")}\n${serverBlocks(scenarios, port)}`;
}
