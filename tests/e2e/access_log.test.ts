/**
 * The access log of the real gateway process (issue 9 point 2): one JSON line per request on
 * stdout by default, every field as the request went (sticky outcome, server id, upstream status,
 * request id sent upstream, failures with their code); nginx's combined format on stderr; a
 * WebSocket's two lines; a file that logrotate moves is reopened on SIGUSR1 (by every worker
 * thread); `access = "off"` writes none.
 */
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  closeSync,
  constants,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import {
  gatewayCommand,
  ROOT,
  type RunningGateway,
  sleep,
  startGateway,
  stopAllGateways,
  withTimeout,
} from "../support/gateway.ts";
import { ask, md5, rawRequest } from "../support/http.ts";
import {
  closeAllUpstreams,
  closedPort,
  type NamedUpstream,
  requestHeaderValues,
  startNamedUpstream,
} from "../support/upstreams.ts";
import {
  startWsUpstreams,
  stopAllNodeUpstreams,
  type WsUpstreams,
} from "../support/node_upstreams.ts";

let A: NamedUpstream;
let B: NamedUpstream;
let deadPort: number;
const dirs: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "access-log-e2e-"));
  dirs.push(dir);
  return dir;
}

/** A (id web-a) and B behind a sticky upstream on /, a dead server on /dead/; `log` as given. */
function config(log: string, workers = 1): string {
  return `
[server]
workers = ${workers}

[log]
${log}

[upstreams.app]
servers = [{ address = "${A.address}", id = "web-a" }, "${B.address}"]

[upstreams.app.sticky]

[upstreams.dead]
servers = [{ address = "127.0.0.1:${deadPort}", id = "gone", max_fails = 0 }]

[[routes]]
path = "/"
upstream = "app"

[[routes]]
path = "/dead/"
upstream = "dead"
`;
}

type JsonLine = Record<string, string | number | null>;

/** The JSON access lines in `text` (other output, e.g. the listening line, left out). */
function jsonLines(text: string): JsonLine[] {
  const lines: JsonLine[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    const parsed = JSON.parse(line) as JsonLine;
    if ("request_id" in parsed) lines.push(parsed);
  }
  return lines;
}

/** Waits until `read()` gives at least `count` items (the log is flushed within ~100 ms). */
async function waitFor<T>(read: () => T[], count: number, what: string): Promise<T[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const items = read();
    if (items.length >= count) return items;
    if (Date.now() > deadline) {
      throw new Error(`${what}: ${items.length} of ${count} lines after 10 s`);
    }
    await sleep(25);
  }
}

describe("access log", () => {
  before(async () => {
    A = await startNamedUpstream("A");
    B = await startNamedUpstream("B");
    deadPort = await closedPort();
  });
  afterEach(stopAllGateways);
  after(async () => {
    await stopAllGateways();
    await closeAllUpstreams();
    await stopAllNodeUpstreams();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it("JSON on stdout by default: one line per request with every field", async () => {
    const gw = await startGateway(config(""));
    const before = Date.now();
    const first = await ask(gw.port, {
      path: "/hello?x=1&y=%20",
      headers: [
        ["User-Agent", "e2e-agent/1.0"],
        ["Referer", "https://example.com/from"],
        ["X-Request-Id", "e2e-request-1"],
      ],
    });
    assert.equal(first.status, 200);
    const served = first.servedBy === "A" ? A : B;
    const posted = await ask(gw.port, {
      method: "POST",
      path: "/upload",
      body: "x".repeat(1000),
      cookies: [`route=${md5(served.address)}`],
    });
    assert.equal(posted.status, 200);
    const invalid = await ask(gw.port, { cookies: ["route=0000"] });
    const failed = await ask(gw.port, { path: "/dead/x" });
    assert.equal(failed.status, 502);

    const lines = await waitFor(() => jsonLines(gw.stdout()), 4, "stdout");
    assert.equal(lines.length, 4, gw.stdout());
    const [get, post, bad, dead] = lines;
    const time = Date.parse(String(get.time));
    assert.match(String(get.time), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    assert.ok(time >= before - 1000 && time <= Date.now(), String(get.time));
    assert.equal(get.kind, "http");
    assert.equal(get.client, "127.0.0.1");
    assert.equal(get.method, "GET");
    assert.equal(get.target, "/hello?x=1&y=%20");
    assert.equal(get.protocol, "HTTP/1.1");
    assert.equal(get.status, 200);
    assert.equal(get.bytes_in, 0);
    assert.equal(get.bytes_out, first.response.body.length);
    assert.equal(get.upstream, "app");
    assert.equal(get.server, served === A ? "web-a" : B.address);
    assert.equal(get.upstream_status, 200);
    assert.equal(get.attempts, 1);
    assert.equal(get.sticky, "new");
    assert.equal(get.code, null);
    assert.equal(get.request_id, "e2e-request-1");
    assert.equal(get.user_agent, "e2e-agent/1.0");
    assert.equal(get.referer, "https://example.com/from");
    assert.ok(typeof get.duration_ms === "number" && get.duration_ms >= 0);
    assert.ok(
      typeof get.upstream_header_ms === "number" && get.upstream_header_ms <= get.duration_ms,
    );
    const received = served.requests.find((r) => r.url === "/hello?x=1&y=%20");
    assert.deepEqual(
      received && requestHeaderValues(received, "x-request-id"),
      ["e2e-request-1"],
      "the request id goes upstream",
    );

    assert.equal(post.method, "POST");
    assert.equal(post.bytes_in, 1000);
    assert.equal(post.sticky, "hit");
    assert.match(String(post.request_id), /\S/, "a request id is made when none came");
    const upload = served.requests.find((r) => r.method === "POST");
    assert.deepEqual(upload && requestHeaderValues(upload, "x-request-id"), [post.request_id]);

    assert.equal(bad.sticky, "invalid");
    assert.equal(bad.status, invalid.status);

    assert.equal(dead.status, 502);
    assert.equal(dead.upstream, "dead");
    assert.equal(dead.code, "connect_refused");
    assert.equal(dead.upstream_status, null);
    assert.equal(dead.upstream_header_ms, null);
    assert.ok(Number(dead.attempts) >= 1);
    assert.equal(dead.sticky, "none");
  });

  it("a client cannot forge fields: quotes, backslashes and non-ASCII are escaped", async () => {
    const gw = await startGateway(config(`format = "combined"\naccess = "stdout"`));
    const answer = await ask(gw.port, {
      path: '/q?"a"=\\x1b',
      headers: [["User-Agent", 'evil" 200 1 "-" "-\u00e9'], ["X-Request-Id", "id with space"]],
    });
    assert.equal(answer.status, 200);
    const lines = await waitFor(
      () => gw.stdout().split("\n").filter((line) => line.includes(" rid=")),
      1,
      "stdout",
    );
    assert.equal(lines.length, 1);
    const line = lines[0];
    // deno-lint-ignore no-control-regex
    assert.doesNotMatch(line, /[\u0000-\u001f\u007f-\uffff]/);
    assert.ok(line.includes('"GET /q?\\x22a\\x22=\\x5Cx1b HTTP/1.1"'), line);
    // é as the client sent it: one byte (E9, the test client writes heads as Latin-1), escaped.
    assert.ok(line.includes('"evil\\x22 200 1 \\x22-\\x22 \\x22-\\xE9"'), line);
    assert.doesNotMatch(line, /rid=id with space/, "an id with spaces is not taken as it is");
  });

  it("nginx combined on stderr, with the gateway's fields as key=value", async () => {
    const gw = await startGateway(config(`access = "stderr"\nformat = "combined"`));
    const answer = await ask(gw.port, {
      path: "/c",
      headers: [["User-Agent", "curl/8.0"], ["X-Request-Id", "rid-combined"]],
    });
    const id = answer.servedBy === "A" ? "web-a" : B.address;
    const pattern =
      /^127\.0\.0\.1 - - \[(\d{2}\/\w{3}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "GET \/c HTTP\/1\.1" 200 (\d+) "-" "curl\/8\.0" rt=(\d+\.\d{3}) uht=(\d+\.\d{3}) us=200 upstream=app server=(\S+) attempts=1 sticky=new code=- rid=rid-combined bytes_in=0$/;
    const lines = await waitFor(
      () => gw.stderr().split("\n").filter((line) => line.includes("rid=rid-combined")),
      1,
      "stderr",
    );
    const match = pattern.exec(lines[0]);
    assert.ok(match, lines[0]);
    assert.equal(Number(match[2]), answer.response.body.length);
    assert.equal(match[5], id);
    assert.equal(jsonLines(gw.stdout()).length, 0, "nothing on stdout");
    assert.doesNotMatch(gw.stdout(), /rid=/);
  });

  it("a WebSocket gives a line at the upgrade and one at its end", async () => {
    const ws: WsUpstreams = await startWsUpstreams(["W"]);
    const gw = await startGateway(`
[upstreams.app]
servers = [{ address = "${ws.address("W")}", id = "ws-1" }]

[[routes]]
path = "/"
upstream = "app"
`);
    const socket = new WebSocket(`ws://127.0.0.1:${gw.port}/socket?room=1`);
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        socket.onopen = () => resolve();
        socket.onerror = () => reject(new Error("WebSocket error"));
      }),
      10_000,
      "WebSocket open",
    );
    socket.send("hello");
    await sleep(100);
    socket.close(1000);
    const lines = await waitFor(() => jsonLines(gw.stdout()), 2, "ws lines");
    const [open, close] = lines;
    assert.equal(open.kind, "ws-open");
    assert.equal(open.status, 101);
    assert.equal(open.target, "/socket?room=1");
    assert.equal(open.server, "ws-1");
    assert.equal(close.kind, "ws-close");
    assert.equal(close.request_id, open.request_id);
    assert.ok(Number(close.duration_ms) >= 100);
    assert.ok(Number(close.bytes_in) >= 5, "the client's message bytes");
  });

  for (const workers of [1, 2]) {
    it(`a file, reopened on SIGUSR1 after logrotate's mv (workers = ${workers})`, async () => {
      const dir = tempDir();
      const file = join(dir, "access.log");
      const gw = await startGateway(config(`access = "${file}"`, workers));
      const fileLines = (path: string) =>
        existsSync(path) ? jsonLines(readFileSync(path, "utf8")) : [];
      await ask(gw.port, { headers: [["X-Request-Id", "before-mv"]] });
      await waitFor(() => fileLines(file), 1, "first line");
      renameSync(file, `${file}.1`);
      // As with nginx: until the signal, lines go on to the moved file.
      await ask(gw.port, { headers: [["X-Request-Id", "after-mv"]] });
      await waitFor(() => fileLines(`${file}.1`), 2, "moved file");
      process.kill(gw.process.pid ?? 0, "SIGUSR1");
      await waitFor(() => (existsSync(file) ? [file] : []), 1, "reopened file");
      await sleep(200); // every worker thread has had the signal passed on
      // New connections, so that with workers = 2 both threads serve some of them.
      for (let i = 0; i < 10; i++) {
        const answer = await rawRequest(gw.port, {
          path: "/",
          headers: [["X-Request-Id", `after-usr1-${i}`], ["Connection", "close"]],
        });
        assert.equal(answer.status, 200);
      }
      const fresh = await waitFor(() => fileLines(file), 10, "new file");
      // Each thread writes its own batches: lines of different threads may come in any order.
      const ids = (lines: JsonLine[]) => lines.map((line) => String(line.request_id)).sort();
      assert.deepEqual(
        ids(fresh),
        Array.from({ length: 10 }, (_, i) => `after-usr1-${i}`).sort(),
      );
      assert.deepEqual(ids(fileLines(`${file}.1`)), ["after-mv", "before-mv"]);
      assert.equal(gw.process.exitCode, null, "SIGUSR1 did not stop the gateway");
      assert.equal(jsonLines(gw.stdout()).length, 0, "nothing on stdout");
      await gw.stop();
    });
  }

  it('access = "off" writes no access line anywhere', async () => {
    const gw: RunningGateway = await startGateway(config(`access = "off"`));
    for (let i = 0; i < 5; i++) assert.equal((await ask(gw.port)).status, 200);
    assert.equal((await ask(gw.port, { path: "/dead/" })).status, 502);
    await sleep(400);
    const output = gw.stdout() + gw.stderr();
    assert.equal(jsonLines(output).length, 0, output);
    assert.doesNotMatch(output, /rid=|"request_id"/);
  });

  it("a stdout nobody reads costs access lines (counted), never requests", async () => {
    const dir = tempDir();
    const fifo = join(dir, "stdout");
    assert.equal(spawnSync("mkfifo", [fifo]).status, 0, "mkfifo");
    // Held open and never read: the gateway's stdout pipe fills (64 KiB) and stays full.
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const configFile = join(dir, "gateway.toml");
    // Ports the OS picks, read from the `started` event on stderr (stdout is the FIFO).
    const toml = config(`access = "stdout"`).replace(
      "[server]",
      `[server]\nlisten = "127.0.0.1:0"`,
    );
    writeFileSync(configFile, `${toml}\n[admin]\nlisten = "127.0.0.1:0"\n`);
    const { command, args } = gatewayCommand(["--config", configFile]);
    const quoted = [command, ...args].map((a) => `'${a}'`).join(" ");
    const child = spawn("sh", ["-c", `exec ${quoted} > '${fifo}'`], {
      cwd: ROOT,
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, NO_COLOR: "1" },
    });
    let stderr = "";
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => stderr += chunk);
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    try {
      const deadline = Date.now() + 20_000;
      let listening: RegExpExecArray | null = null;
      while (listening === null) {
        listening = /"listen":"127\.0\.0\.1:(\d+)","admin":"127\.0\.0\.1:(\d+)"/.exec(stderr);
        assert.ok(Date.now() < deadline && child.exitCode === null, `gateway start: ${stderr}`);
        if (listening === null) await sleep(50);
      }
      const port = Number(listening[1]);
      const adminPort = Number(listening[2]);
      // 800 requests with 2 KiB targets: 1.7 MB of lines, past the pipe and the 1 MiB buffer.
      const long = `/${"p".repeat(2000)}`;
      const started = Date.now();
      for (let i = 0; i < 800; i++) {
        const answer = await rawRequest(port, { path: `${long}?i=${i}` }).catch((error) => {
          throw new Error(`request ${i}: ${error.message}; gateway stderr: ${stderr}`);
        });
        assert.equal(answer.status, 200, `request ${i}`);
      }
      const tookMs = Date.now() - started;
      assert.ok(tookMs < 30_000, `800 requests took ${tookMs} ms`);
      const metrics = (await rawRequest(adminPort, { path: "/metrics" })).body.toString("utf8");
      const dropped = Number(/^sticky_gateway_access_log_dropped_total (\d+)$/m.exec(metrics)?.[1]);
      assert.ok(dropped > 0, `lines dropped and counted: ${dropped}`);
      // The reader wakes up: what comes out is whole lines, about 800 minus the dropped ones.
      let text = "";
      const buffer = Buffer.alloc(1 << 20);
      const readUntil = Date.now() + 5000;
      while (Date.now() < readUntil) {
        let count = 0;
        try {
          count = readSync(reader, buffer, 0, buffer.length, null);
        } catch {
          count = 0; // EAGAIN: nothing now
        }
        text += buffer.toString("utf8", 0, count);
        if (count === 0) await sleep(50);
      }
      const lines = text.split("\n").filter((line) => line.startsWith("{"));
      for (const line of lines) assert.equal(JSON.parse(line).status, 200);
      assert.equal(lines.length + dropped, 800, `${lines.length} written + ${dropped} dropped`);
      process.kill(child.pid ?? 0, "SIGTERM");
      assert.equal(await withTimeout(exited, 10_000, "gateway exit"), 0, stderr);
    } finally {
      child.kill("SIGKILL");
      closeSync(reader);
    }
  });
});
