/**
 * `sticky-gateway healthcheck --config FILE [--ready]`: asks the running gateway's admin
 * listener for `/healthz` (or `/readyz`) and exits 0 when it answers 200, 1 otherwise, 2 for bad
 * arguments or a config without `[admin]`. For container health checks in an image without a
 * shell or curl (podman's `--health-cmd` in exec form).
 *
 * @module
 */
import process from "node:process";
import { ConfigError, loadConfigFile } from "../../config/mod.ts";

/** Usage of the subcommand, for `--help`. */
export const HEALTHCHECK_USAGE =
  "sticky-gateway healthcheck --config FILE [--ready]   exit 0 when the running gateway's admin listener answers /healthz (/readyz) with 200";

/** How long the probe waits for an answer. */
const TIMEOUT_MS = 2000;

/** Runs the subcommand (its arguments after `healthcheck`); resolves to the exit status. */
export async function runHealthcheck(args: readonly string[]): Promise<number> {
  let file: string | undefined;
  let ready = false;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--config" || args[i] === "-c") file = args[++i];
    else if (args[i].startsWith("--config=")) file = args[i].slice("--config=".length);
    else if (args[i] === "--ready") ready = true;
    else return fail(2, `healthcheck: unknown argument "${args[i]}"\n${HEALTHCHECK_USAGE}`);
  }
  if (file === undefined) return fail(2, `healthcheck: --config FILE is required`);
  let url: string;
  try {
    const config = loadConfigFile(file);
    if (config.admin === undefined) {
      return fail(
        2,
        `healthcheck: ${file} has no [admin] listener to ask; add [admin] listen = "…"`,
      );
    }
    url = `http://${probeHost(config.admin.listen.host)}:${config.admin.listen.port}${
      ready ? "/readyz" : "/healthz"
    }`;
  } catch (error) {
    if (error instanceof ConfigError) return fail(2, error.message);
    throw error;
  }
  try {
    const answer = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    const body = (await answer.text()).trim();
    if (answer.status === 200) return 0;
    return fail(1, `healthcheck: ${url} answered ${answer.status}${body ? `: ${body}` : ""}`);
  } catch (error) {
    return fail(1, `healthcheck: ${url}: ${(error as Error).message}`);
  }
}

/** A wildcard listen address is asked on loopback. */
function probeHost(host: string): string {
  if (host === "0.0.0.0") return "127.0.0.1";
  if (host === "::" || host === "[::]") return "[::1]";
  return host.includes(":") ? `[${host}]` : host;
}

function fail(status: number, message: string): number {
  process.stderr.write(`${message}\n`);
  return status;
}
