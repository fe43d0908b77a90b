/**
 * The gateway's config for a set of scenarios: by the gateway's own importer
 * (`sticky-gateway import nginx.conf -o gw.toml`, run the way the gateway under test runs, so the
 * binary's importer is covered too), or by the small translation below, written from the same
 * scenarios as the nginx.conf (to tell the importer's part of a failure from the proxy's).
 *
 * Either way the result gets the test harness's own listener: the nginx.conf listens where nginx
 * does, and the gateway runs beside it on a port of its own with one worker thread (as nginx runs
 * one process here, so that both have one round-robin sequence).
 *
 * @module
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { runGateway, writeTempFile } from "../support/gateway.ts";
import { addressText, type Backends, type Scenario, type ServerSpec } from "./scenario.ts";

/**
 * Whether the configs come from the gateway's importer (the default), or from the translation
 * below, written from the same scenarios (`NGINX_DIFF_IMPORTER=0`): when a scenario fails, running
 * it both ways tells the importer's part from the proxy's.
 */
export const USE_IMPORTER: boolean = process.env.NGINX_DIFF_IMPORTER !== "0";

/** The TOML the importer writes for `nginxConf` (warnings are fine; exit 2 is not). */
export async function importNginxConf(nginxConf: string): Promise<{ toml: string; log: string }> {
  const output = writeTempFile("gw.toml", "");
  const result = await runGateway(["import", nginxConf, "-o", output]);
  if (result.code !== 0) {
    throw new Error(
      `sticky-gateway import ${nginxConf} exited ${result.code}:\n${result.stderr}${result.stdout}`,
    );
  }
  return { toml: readFileSync(output, "utf8"), log: result.stderr };
}

/**
 * `toml` with `[server] listen` on an ephemeral loopback port and `workers = 1` (whatever the
 * nginx.conf's `listen` and `worker_processes` became).
 */
export function ownListener(toml: string): string {
  const lines = toml.split("\n").filter((line, i, all) => {
    const section = sectionAt(all, i);
    return !(section === "server" && /^\s*(listen|workers)\s*=/.test(line));
  });
  const at = lines.findIndex((line) => /^\s*\[server\]\s*$/.test(line));
  const ours = [`listen = "127.0.0.1:0"`, "workers = 1"];
  if (at < 0) return `[server]\n${ours.join("\n")}\n\n${lines.join("\n")}`;
  lines.splice(at + 1, 0, ...ours);
  return lines.join("\n");
}

/** The `[table]` the line `i` is in ("" before the first). */
function sectionAt(lines: readonly string[], i: number): string {
  for (let j = i; j >= 0; j--) {
    const header = /^\s*\[{1,2}([^\]]+)\]{1,2}\s*$/.exec(lines[j]);
    if (header !== null) return header[1].trim();
  }
  return "";
}

const quote = (text: string) => JSON.stringify(text);

function serverEntry(spec: ServerSpec, backends: Backends): string {
  const fields = [`address = ${quote(addressText(spec, backends.get(spec.backend)!.port))}`];
  if (spec.weight !== undefined) fields.push(`weight = ${spec.weight}`);
  if (spec.maxFails !== undefined) fields.push(`max_fails = ${spec.maxFails}`);
  if (spec.failTimeout !== undefined) fields.push(`fail_timeout = ${quote(spec.failTimeout)}`);
  if (spec.down) fields.push("down = true");
  if (spec.backup) fields.push("backup = true");
  if (spec.route !== undefined) fields.push(`route = ${quote(spec.route)}`);
  return `  { ${fields.join(", ")} },`;
}

/** `$cookie_X` → `cookie:X`, `$http_x_route` → `header:X-Route`, `$arg_r` → `query:r`. */
function routeSource(variable: string): string {
  const [, kind, name] = /^\$(cookie|http|arg)_(.+)$/.exec(variable) ?? [];
  if (kind === "cookie") return `cookie:${name}`;
  if (kind === "arg") return `query:${name}`;
  if (kind === "http") {
    return `header:${name.split("_").map((w) => w[0].toUpperCase() + w.slice(1)).join("-")}`;
  }
  throw new Error(`no route source for ${variable}`);
}

function stickyTable(scenario: Scenario, kind: "module" | "native"): string[] {
  const s = scenario.sticky;
  const lines = [`[upstreams.${scenario.id}.sticky]`];
  if (s.routeVars !== undefined) {
    // nginx compares the whole variable's value: no delimiter.
    const from = s.routeVars.map(routeSource).map(quote).join(", ");
    return [...lines, "cookie = false", `route_from = [${from}]`, `route_delimiter = ""`];
  }
  if (kind === "native") lines.push(`format = "nginx"`);
  const mode = s.mode;
  if (mode === "md5" || mode === "sha1" || mode === "index") lines.push(`hash = "${mode}"`);
  if (mode === "hmac-md5" || mode === "hmac-sha1") {
    lines.push(`hmac = "${mode.slice(5)}"`, `hmac_key = ${quote(s.hmacKey ?? "secret")}`);
  }
  if (mode === "raw") lines.push(`text = "raw"`);
  if (s.name !== undefined) lines.push(`name = ${quote(s.name)}`);
  if (s.domain !== undefined) lines.push(`domain = ${quote(s.domain)}`);
  if (s.path !== undefined) lines.push(`path = ${quote(s.path)}`);
  if (s.expires !== undefined) lines.push(`expires = ${quote(s.expires)}`);
  if (s.secure) lines.push("secure = true");
  if (s.httponly) lines.push("httponly = true");
  if (s.samesite !== undefined) {
    // nginx 1.30 writes it as given (format = "nginx" takes any case); the module has none.
    lines.push(`samesite = ${quote(s.samesite)}`);
  }
  if (s.noFallback) lines.push("no_fallback = true");
  return lines;
}

/** The TOML for `scenarios`, as the nginx.conf made by scenario.ts says it (no importer). */
export function scenarioToml(
  scenarios: readonly Scenario[],
  backends: ReadonlyMap<string, Backends>,
  kind: "module" | "native",
): string {
  const out = [`[server]`, `connect_timeout = "2s"`, ""];
  const routes: string[] = [];
  for (const s of scenarios) {
    const own = backends.get(s.id)!;
    out.push(`[upstreams.${s.id}]`, "servers = [");
    for (const spec of s.servers) out.push(serverEntry(spec, own));
    out.push("]", ...stickyTable(s, kind), "");
    routes.push(`[[routes]]`, `path = "/${s.id}/"`, `upstream = "${s.id}"`, "");
    if (s.locationNoFallback) {
      routes.push(
        `[[routes]]`,
        `path = "/${s.id}/nf/"`,
        `upstream = "${s.id}"`,
        "no_fallback = true",
        "",
      );
    }
    if (s.serverNoFallback) {
      routes.push(
        `[[routes]]`,
        `host = "${s.id}.nofallback.test"`,
        `path = "/"`,
        `upstream = "${s.id}"`,
        "no_fallback = true",
        "",
      );
    }
  }
  return [...out, ...routes].join("\n");
}
