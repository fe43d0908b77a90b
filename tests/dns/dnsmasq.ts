/**
 * A real DNS server for the DNS discovery tests and the bench's dns200 scenario: dnsmasq on a
 * loopback high port, answering only from a hosts file (A, AAAA) and `srv-host` lines (SRV), with
 * a 1 s TTL, forwarding nothing (`--no-resolv`: any other name is REFUSED). `setHosts` rewrites
 * the hosts file and sends SIGHUP (dnsmasq re-reads it); `pause`/`resume` (SIGSTOP/SIGCONT) make
 * it a resolver that times out; `stop` ends it.
 *
 * dnsmasq comes from apt (Debian's dnsmasq-base) through tests/dns/install.sh, which
 * `make test-tools` runs; {@link locateDnsmasq} runs it too when dnsmasq is missing.
 *
 * @module
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { type AddressInfo, createServer } from "node:net";
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const HERE = fileURLToPath(new URL(".", import.meta.url));

function findDnsmasq(): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/sbin"];
  return dirs.filter((dir) => dir.startsWith("/")).map((dir) => join(dir, "dnsmasq"))
    .find((file) => existsSync(file));
}

/** The dnsmasq binary (installed through tests/dns/install.sh when missing), or why there is
 * none: the caller skips, saying so. */
export function locateDnsmasq(): { binary: string } | { reason: string } {
  const found = findDnsmasq();
  if (found !== undefined) return { binary: found };
  const install = spawnSync(join(HERE, "install.sh"), [], { encoding: "utf8", timeout: 300_000 });
  const after = findDnsmasq();
  if (after !== undefined) return { binary: after };
  const said = `${install.stderr ?? ""}${install.error?.message ?? ""}`.trim().split("\n").pop();
  return {
    reason: `skipped: dnsmasq is not installed and tests/dns/install.sh could not install it (${
      said || `exit ${install.status}`
    }); the DNS discovery test needs a real DNS server`,
  };
}

/** A running dnsmasq. */
export interface Dnsmasq {
  /** Its UDP (and TCP) port on 127.0.0.1: `[server] resolver = "127.0.0.1:PORT"`. */
  readonly port: number;
  /** Replaces the hosts file (`"127.0.0.2 app.internal"` lines) and makes dnsmasq re-read it. */
  setHosts(lines: readonly string[]): void;
  /** SIGSTOP: questions time out until {@link resume}. */
  pause(): void;
  resume(): void;
  /** Everything dnsmasq wrote (its log of queries with `logQueries`). */
  output(): string;
  stop(): Promise<void>;
}

/** Options: the first hosts lines, `srv-host=` values (fixed for its life), query logging. */
export interface DnsmasqOptions {
  readonly hosts: readonly string[];
  /** `srv-host` values: `_http._tcp.app.internal,a.internal,8001,10,5` (name, target, port,
   * priority, weight). */
  readonly srv?: readonly string[];
  readonly logQueries?: boolean;
  /** Pin it to these CPUs (`taskset -c`): the bench keeps peers off the proxy's core. */
  readonly cpu?: string;
}

/** A port on 127.0.0.1 free for TCP and UDP both (dnsmasq binds both; bound here and
 * released: dnsmasq takes it right after, and a lost race is tried again). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const socket = createSocket("udp4");
  const free = await new Promise<boolean>((resolve) => {
    socket.once("error", () => resolve(false));
    socket.bind(port, "127.0.0.1", () => resolve(true));
  });
  if (free) await new Promise<void>((resolve) => socket.close(() => resolve()));
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return free ? port : await freePort();
}

/** A signal to the process (process.kill: Deno's ChildProcess.kill sends only the first). */
function signal(child: ChildProcess, name: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(child.pid, name);
  } catch {
    // gone already
  }
}

/** Starts dnsmasq and resolves once it answers. */
export async function startDnsmasq(binary: string, options: DnsmasqOptions): Promise<Dnsmasq> {
  const dir = mkdtempSync(join(tmpdir(), "sticky-gateway-dns-"));
  // dnsmasq may read as another user: the directory and files readable by all.
  chmodSync(dir, 0o755);
  const hostsFile = join(dir, "hosts");
  const confFile = join(dir, "dnsmasq.conf");
  const writeHosts = (lines: readonly string[]) => {
    writeFileSync(hostsFile, lines.map((l) => `${l}\n`).join(""), { mode: 0o644 });
  };
  writeHosts(options.hosts);
  writeFileSync(confFile, (options.srv ?? []).map((s) => `srv-host=${s}\n`).join(""), {
    mode: 0o644,
  });
  let child: ChildProcess | undefined;
  let out = "";
  for (let attempt = 0; attempt < 3 && child === undefined; attempt++) {
    const port = await freePort();
    const command = options.cpu === undefined ? [binary] : ["taskset", "-c", options.cpu, binary];
    const started = spawn(command[0], [
      ...command.slice(1),
      "--keep-in-foreground",
      "--log-facility=-",
      `--port=${port}`,
      "--listen-address=127.0.0.1",
      "--bind-interfaces",
      "--no-resolv",
      "--no-hosts",
      `--addn-hosts=${hostsFile}`,
      `--conf-file=${confFile}`,
      "--local-ttl=1",
      "--pid-file=",
      "--user=root",
      ...(options.logQueries ? ["--log-queries"] : []),
    ], { stdio: ["ignore", "pipe", "pipe"] });
    started.stdout?.on("data", (chunk: Buffer) => out += chunk.toString());
    started.stderr?.on("data", (chunk: Buffer) => out += chunk.toString());
    const exited = new Promise<boolean>((resolve) => started.once("exit", () => resolve(false)));
    const alive = await Promise.race([
      exited,
      new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 300)),
    ]);
    if (alive) {
      child = started;
      // A test or bench that dies on an exception does not leave it behind.
      process.once("exit", () => signal(started, "SIGKILL"));
      const dnsmasq: Dnsmasq = {
        port,
        setHosts(lines) {
          writeHosts(lines);
          signal(started, "SIGHUP");
        },
        pause: () => signal(started, "SIGSTOP"),
        resume: () => signal(started, "SIGCONT"),
        output: () => out,
        async stop() {
          signal(started, "SIGCONT");
          signal(started, "SIGTERM");
          await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 2000))]);
          signal(started, "SIGKILL");
          rmSync(dir, { recursive: true, force: true });
        },
      };
      return dnsmasq;
    }
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`dnsmasq did not start: ${out}`);
}
