/**
 * Upstream servers that run as Node.js processes (`/usr/bin/node`, or `$NODE`): the WebSocket
 * upstreams (`ws_upstream.mjs`, on the `ws` package) and the socket.io servers
 * (`socketio_upstream.mjs`). Both speak JSON lines on stdout; this module starts them, collects
 * those lines and waits for the ones a test expects. `stopAllNodeUpstreams()` (from after hooks)
 * kills whatever is still running.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { ROOT, withTimeout } from "./gateway.ts";

/** Node.js for upstream processes: `$NODE`, else /usr/bin/node, else `node` on PATH. */
export const NODE: string = process.env.NODE ??
  (existsSync("/usr/bin/node") ? "/usr/bin/node" : "node");

// deno-lint-ignore no-explicit-any
export type Line = Record<string, any>;

export interface NodeUpstream {
  /** Every JSON line printed so far. */
  readonly lines: readonly Line[];
  /** The first line (already printed or still to come) that `match` accepts. */
  waitFor(match: (line: Line) => boolean, ms: number, what: string): Promise<Line>;
  stderr(): string;
  /** Kills the process and waits for it to exit. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();

/** Runs `node tests/support/SCRIPT ARGS…`, with `env` added to the environment. */
export function startNodeScript(
  script: string,
  args: readonly string[],
  env: Record<string, string> = {},
): NodeUpstream {
  const child = spawn(NODE, [join(ROOT, "tests", "support", script), ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  live.add(child);
  const lines: Line[] = [];
  const waiters = new Set<() => void>();
  let partial = "";
  let err = "";
  child.stdout!.setEncoding("utf8");
  child.stderr!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => {
    partial += chunk;
    for (let end = partial.indexOf("\n"); end >= 0; end = partial.indexOf("\n")) {
      const text = partial.slice(0, end);
      partial = partial.slice(end + 1);
      if (text.trim() !== "") lines.push(JSON.parse(text));
    }
    for (const wake of waiters) wake();
  });
  child.stderr!.on("data", (chunk: string) => {
    err += chunk;
  });
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => {
      live.delete(child);
      for (const wake of waiters) wake();
      resolve();
    });
  });
  return {
    lines,
    waitFor(match, ms, what) {
      let wake: (() => void) | undefined;
      return withTimeout(
        new Promise<Line>((resolve, reject) => {
          wake = () => {
            const found = lines.find(match);
            if (found !== undefined) resolve(found);
            else if (!live.has(child)) reject(new Error(`${script} exited:\n${err}`));
          };
          waiters.add(wake);
          wake();
        }),
        ms,
        `${what} (${script})`,
      ).finally(() => waiters.delete(wake!));
    },
    stderr: () => err,
    async stop() {
      if (live.has(child)) child.kill("SIGKILL");
      await exited;
    },
  };
}

/** Kills every upstream process still running. */
export async function stopAllNodeUpstreams(): Promise<void> {
  const waits: Promise<unknown>[] = [];
  for (const child of live) {
    waits.push(new Promise((resolve) => child.once("exit", resolve)));
    child.kill("SIGKILL");
  }
  await Promise.all(waits);
}

/** WebSocket upstream servers (ws_upstream.mjs), one per name, in one Node.js process. */
export interface WsUpstreams extends NodeUpstream {
  /** `127.0.0.1:PORT` of the server called `name`. */
  address(name: string): string;
}

/** With `tls` (PEM files), the servers speak TLS. */
export async function startWsUpstreams(
  names: readonly string[],
  tls?: { readonly certFile: string; readonly keyFile: string },
): Promise<WsUpstreams> {
  const upstream = startNodeScript(
    "ws_upstream.mjs",
    names,
    tls === undefined ? {} : { WS_TLS_CERT: tls.certFile, WS_TLS_KEY: tls.keyFile },
  );
  const ports = new Map<string, number>();
  for (const name of names) {
    const line = await upstream.waitFor((l) => l.ready === name, 10_000, `upstream ${name}`);
    ports.set(name, line.port);
  }
  return {
    ...upstream,
    address: (name) => `127.0.0.1:${ports.get(name)}`,
  };
}

/** One socket.io server (socketio_upstream.mjs) in its own Node.js process. */
export interface SocketIoUpstream extends NodeUpstream {
  readonly name: string;
  /** `127.0.0.1:PORT` */
  readonly address: string;
}

export async function startSocketIoUpstream(name: string): Promise<SocketIoUpstream> {
  const upstream = startNodeScript("socketio_upstream.mjs", [name]);
  const line = await upstream.waitFor((l) => l.ready === name, 10_000, `socket.io ${name}`);
  return { ...upstream, name, address: `127.0.0.1:${line.port}` };
}
