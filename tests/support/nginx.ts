/**
 * Real nginx for the differential tests (tests/e2e/nginx_*differential.test.ts): the two builds
 * tests/nginx/build.sh makes from ../shared/reference/nginx-src/ (run by `make test-tools`),
 *
 *   module   nginx 1.26.3 + nginx-sticky-module-ng v1.3.0   .tools/nginx-module/sbin/nginx
 *   native   nginx 1.30.4 with its own `sticky cookie`      .tools/nginx-native/sbin/nginx
 *
 * each started in the foreground (`daemon off; master_process off`: one process, one round-robin
 * state, like the gateway with `workers = 1`) with a generated nginx.conf in a temp prefix, on a
 * loopback port, and stopped (SIGKILL as a last resort) by `stopAllNginx()`.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { ROOT, sleep, withTimeout } from "./gateway.ts";
import { closedPort } from "./upstreams.ts";

/** Which nginx: 1.26.3 with the sticky module, or 1.30.4 with its own `sticky`. */
export type NginxKind = "module" | "native";

/** The nginx sources and their build script, beside the repository. */
export const NGINX_SRC: string = resolve(ROOT, "../shared/reference/nginx-src");

/** Where tests/nginx/build.sh installs each kind. */
export function nginxPrefix(kind: NginxKind): string {
  return join(ROOT, ".tools", `nginx-${kind}`);
}

/** The nginx binary of `kind`. */
export function nginxBinary(kind: NginxKind): string {
  return join(nginxPrefix(kind), "sbin", "nginx");
}

/**
 * Why the tests of `kind` cannot run here, or undefined when they can. Only the sources' absence
 * is a reason to skip: with the sources present, a missing build is a failure of the test run
 * (see {@link requireNginx}), not something to pass over quietly.
 */
export function nginxSkipReason(): string | undefined {
  if (existsSync(join(NGINX_SRC, "build.sh"))) return undefined;
  return `skipped: the nginx sources are absent (${NGINX_SRC}/build.sh not found), so there is ` +
    `no real nginx to compare the gateway with`;
}

/** Throws, saying how to build it, when the binary of `kind` is not there. */
export function requireNginx(kind: NginxKind): string {
  const binary = nginxBinary(kind);
  if (!existsSync(binary)) {
    throw new Error(
      `${binary} is not built: run tests/nginx/build.sh (make test-tools does) before the tests`,
    );
  }
  return binary;
}

/** A started nginx, as {@link startNginx} hands it back. */
export interface RunningNginx {
  readonly kind: NginxKind;
  readonly port: number;
  /** The nginx.conf it runs (the file the importer reads). */
  readonly configFile: string;
  /** Its error log so far (failed connects, "no live upstreams"). */
  errorLog(): string;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
const dirs = new Set<string>();

/**
 * The whole nginx.conf: a one-process nginx whose files all live in the temp prefix, around the
 * `http` block's content `httpBody` (upstreams and a server that listens on `port`).
 */
export function nginxConf(dir: string, httpBody: string): string {
  return `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events {
    worker_connections 256;
}
http {
    access_log off;
    client_body_temp_path ${dir}/client_body;
    proxy_temp_path ${dir}/proxy;
    fastcgi_temp_path ${dir}/fastcgi;
    uwsgi_temp_path ${dir}/uwsgi;
    scgi_temp_path ${dir}/scgi;
${httpBody}
}
`;
}

/** True once something accepts connections on 127.0.0.1:`port`. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/**
 * Starts nginx of `kind` on a free loopback port with the http content `httpBody(port)` and
 * resolves once it accepts connections. A port taken between choosing and binding is retried.
 */
export async function startNginx(
  kind: NginxKind,
  httpBody: (port: number) => string,
): Promise<RunningNginx> {
  const binary = requireNginx(kind);
  for (let attempt = 1;; attempt++) {
    const port = await closedPort();
    const dir = mkdtempSync(join(tmpdir(), `sticky-gateway-nginx-${kind}-`));
    dirs.add(dir);
    mkdirSync(join(dir, "logs"));
    const configFile = join(dir, "nginx.conf");
    writeFileSync(configFile, nginxConf(dir, httpBody(port)));
    const started = await launch(kind, binary, dir, configFile, port);
    if (started !== "port taken" || attempt === 3) {
      if (started === "port taken") throw new Error(`nginx: three ports taken in a row`);
      return started;
    }
  }
}

async function launch(
  kind: NginxKind,
  binary: string,
  dir: string,
  configFile: string,
  port: number,
): Promise<RunningNginx | "port taken"> {
  const child = spawn(binary, ["-p", `${dir}/`, "-c", configFile], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(child);
  let output = "";
  child.stdout?.setEncoding("utf8");
  child.stderr?.setEncoding("utf8");
  child.stdout?.on("data", (chunk: string) => (output += chunk));
  child.stderr?.on("data", (chunk: string) => (output += chunk));
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => {
      live.delete(child);
      resolve();
    });
    child.once("error", (error: Error) => {
      output += `spawn error: ${error.message}\n`;
      live.delete(child);
      resolve();
    });
  });
  const errorLog = () => {
    try {
      return readFileSync(join(dir, "error.log"), "utf8");
    } catch {
      return "";
    }
  };
  let gone = false;
  exited.then(() => (gone = true));
  const deadline = Date.now() + 10_000;
  while (!(await accepts(port))) {
    if (gone) {
      const log = output + errorLog();
      if (/Address already in use/.test(log)) return "port taken";
      throw new Error(`nginx (${kind}) exited before listening:\n${log}`);
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`nginx (${kind}) not listening within 10 s:\n${output}${errorLog()}`);
    }
    await sleep(20);
  }
  const stop = async () => {
    if (!gone) child.kill("SIGTERM");
    await withTimeout(exited, 5000, `nginx (${kind}) exit`).catch(() => child.kill("SIGKILL"));
  };
  return { kind, port, configFile, errorLog, stop };
}

/** Stops every nginx still running and removes the temp prefixes. */
export async function stopAllNginx(): Promise<void> {
  const waits: Promise<unknown>[] = [];
  for (const child of live) {
    waits.push(
      new Promise((resolve) => {
        child.once("exit", resolve);
        setTimeout(resolve, 3000);
      }),
    );
    child.kill("SIGKILL");
  }
  await Promise.all(waits);
  live.clear();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}
