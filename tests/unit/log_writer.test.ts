/**
 * The access log's writer (issue 9 point 2: "writes are buffered and never block the event loop
 * on a slow terminal; a full or failing log destination never fails a request"): to a file (order,
 * batching, reopen after logrotate's mv), to a FIFO nobody reads (a burst returns at once, lines
 * are dropped and counted, memory stays bounded, every line that comes out is whole), and as a
 * child process's stdout piped to a reader that does not read (the /proc/self/fd way).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import {
  closeSync,
  constants,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { AccessLogWriter } from "../../src/ops/log/writer.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "log-writer-"));
}

/** A line of `size` characters numbered `n` (so order and wholeness can be checked). */
function numbered(n: number, size = 200): string {
  const head = `line ${n} `;
  return head + "x".repeat(size - head.length);
}

const NUMBERED = /^line (\d+) x+$/;

/** Reads what is in a non-blocking descriptor now (EAGAIN = nothing more). */
function readAvailable(fd: number, into: Buffer): number {
  try {
    return readSync(fd, into, 0, into.length, null);
  } catch (error) {
    if ((error as { code?: string }).code === "EAGAIN") return 0;
    throw error;
  }
}

describe("log writer: to a file", () => {
  it("appends lines in order, in batches, after a short delay", async () => {
    const file = join(tempDir(), "access.log");
    writeFileSync(file, "before\n");
    const writer = new AccessLogWriter({ file }, { flushIntervalMs: 50 });
    for (let i = 0; i < 1000; i++) writer.write(numbered(i));
    // 1000 lines of 201 bytes pass flushBytes (32 KiB) several times: some are written already.
    await sleep(10);
    const early = readFileSync(file, "utf8").split("\n").length;
    assert.ok(early > 2, "written once the batch passed flushBytes");
    await writer.flushed();
    const lines = readFileSync(file, "utf8").trimEnd().split("\n");
    assert.equal(lines[0], "before", "appended, not truncated");
    assert.deepEqual(lines.slice(1), Array.from({ length: 1000 }, (_, i) => numbered(i)));
    assert.equal(writer.written, 1000);
    assert.equal(writer.dropped, 0);
    await writer.close();
  });

  it("a few lines wait for the timer, not longer", async () => {
    const file = join(tempDir(), "access.log");
    const writer = new AccessLogWriter({ file }, { flushIntervalMs: 40 });
    writer.write("one");
    assert.equal(readFileSync(file, "utf8"), "", "not at once");
    await sleep(150);
    assert.equal(readFileSync(file, "utf8"), "one\n");
    await writer.close();
  });

  it("reopen() after mv writes to a new file; the moved one keeps what came before", async () => {
    const dir = tempDir();
    const file = join(dir, "access.log");
    const writer = new AccessLogWriter({ file }, { flushIntervalMs: 5 });
    writer.write("first");
    await writer.flushed();
    renameSync(file, `${file}.1`);
    writer.write("second, still to the moved file (as nginx before USR1)");
    await writer.flushed();
    writer.reopen();
    writer.write("third");
    await writer.close();
    assert.equal(
      readFileSync(`${file}.1`, "utf8"),
      "first\nsecond, still to the moved file (as nginx before USR1)\n",
    );
    assert.equal(readFileSync(file, "utf8"), "third\n");
  });

  it("reopen() that fails keeps the old file and reports the error", async () => {
    const dir = tempDir();
    const file = join(dir, "sub", "access.log");
    spawnSync("mkdir", [join(dir, "sub")]);
    const errors: string[] = [];
    const writer = new AccessLogWriter({ file }, { onError: (e) => errors.push(e.message) });
    renameSync(join(dir, "sub"), join(dir, "moved"));
    writer.reopen();
    assert.equal(errors.length, 1);
    writer.write("kept");
    await writer.close();
    assert.equal(readFileSync(join(dir, "moved", "access.log"), "utf8"), "kept\n");
  });

  it("a file that cannot be opened is an error at construction, not per line", () => {
    assert.throws(() => new AccessLogWriter({ file: join(tempDir(), "no", "such.log") }));
  });

  it("close() writes everything queued; lines after close are ignored", async () => {
    const file = join(tempDir(), "access.log");
    const writer = new AccessLogWriter({ file }, { flushIntervalMs: 10_000 });
    writer.write("a");
    writer.write("b");
    await writer.close();
    writer.write("c");
    await sleep(20);
    assert.equal(readFileSync(file, "utf8"), "a\nb\n");
  });

  it("writeNow writes at once when nothing waits", () => {
    const file = join(tempDir(), "events.log");
    const writer = new AccessLogWriter({ file });
    writer.writeNow("now");
    assert.equal(readFileSync(file, "utf8"), "now\n");
    void writer.close();
  });
});

describe("log writer: a pipe nobody reads", () => {
  function fifo(): string {
    const path = join(tempDir(), "fifo");
    const made = spawnSync("mkfifo", [path]);
    assert.equal(made.status, 0, "mkfifo");
    return path;
  }

  it("a burst returns at once; the overflow is dropped and counted; whole lines come out", async () => {
    const path = fifo();
    // The reader end, opened first (a non-blocking writer cannot open a FIFO without one), and
    // not read until the end: the pipe (64 KiB) fills and stays full.
    const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    let dropped = 0;
    const errors: Error[] = [];
    const maxPendingBytes = 256 * 1024;
    const writer = new AccessLogWriter({ file: path }, {
      maxPendingBytes,
      flushIntervalMs: 5,
      onDrop: (lines) => dropped += lines,
      onError: (error) => errors.push(error),
    });
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    const total = 20_000; // 4 MB, 60 times what the pipe holds
    const started = performance.now();
    for (let i = 0; i < total; i++) {
      writer.write(numbered(i));
      assert.ok(writer.pendingBytes <= maxPendingBytes, "memory stays bounded");
    }
    const burstMs = performance.now() - started;
    await sleep(300);
    clearInterval(ticker);
    assert.ok(burstMs < 1000, `the burst took ${burstMs.toFixed(0)} ms`);
    assert.ok(ticks >= 20, `the event loop ran while the pipe was full (${ticks} ticks)`);
    assert.ok(dropped > total / 2, `most lines dropped (${dropped})`);
    assert.equal(writer.dropped, dropped);
    // What the pipe took (64 KiB) left the buffer; the rest waits, nothing more was lost.
    assert.ok(writer.pendingBytes > maxPendingBytes / 2, "what did not fit waits");
    assert.deepEqual(errors, [], "EAGAIN is not an error");

    // The reader wakes up: everything not dropped comes out, whole and in order.
    const received: string[] = [];
    let partial = "";
    const buffer = Buffer.alloc(256 * 1024);
    // Nobody calls flushed() or close(): the writer's own retries and timers must get every
    // line out (lines queued while a retry waited included).
    const deadline = performance.now() + 10_000;
    while (received.length + dropped < total) {
      assert.ok(
        performance.now() < deadline,
        `drained within 10 s: ${received.length} + ${dropped} of ${total}`,
      );
      const count = readAvailable(reader, buffer);
      const lines = (partial + buffer.toString("utf8", 0, count)).split("\n");
      partial = lines.pop() ?? "";
      received.push(...lines);
      if (count === 0) await sleep(5);
    }
    closeSync(reader);
    await writer.close();
    assert.equal(partial, "");
    assert.equal(received.length + dropped, total, "every line written or counted as dropped");
    assert.equal(writer.written, received.length);
    let previous = -1;
    for (const line of received) {
      const match = NUMBERED.exec(line);
      assert.ok(match !== null && line.length === 200, `whole line: ${line.slice(0, 40)}`);
      assert.ok(Number(match[1]) > previous, "in order");
      previous = Number(match[1]);
    }
    assert.equal(received[0], numbered(0), "the first lines were not the ones dropped");
  });

  it("a destination that fails (reader gone: EPIPE) drops and counts lines and reports once", async () => {
    const path = fifo();
    const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    let dropped = 0;
    const errors: string[] = [];
    const writer = new AccessLogWriter({ file: path }, {
      flushIntervalMs: 1,
      onDrop: (lines) => dropped += lines,
      onError: (error) => errors.push((error as { code?: string }).code ?? error.message),
    });
    closeSync(reader);
    for (let round = 0; round < 3; round++) {
      writer.write(`lost ${round}`);
      await writer.flushed();
    }
    assert.equal(dropped, 3);
    assert.deepEqual(errors, ["EPIPE"], "reported once while it keeps failing");
    await writer.close();
  });
});

/**
 * How the child runs: on Deno with `--allow-all` the writer opens /proc/self/fd/1 itself; with
 * the gateway's permissions it cannot, and writes through a `stdio` function (Deno.stdout.write,
 * as the runtime seam gives it). Bun opens /proc/self/fd/1 either way.
 */
const CHILD_MODES = [
  { name: "its own non-blocking descriptor", permissions: ["--allow-all"] },
  {
    name: "the runtime's stdio write (Deno's permissions without --allow-all)",
    permissions: ["--allow-read", "--allow-write", "--allow-env", "--allow-sys"],
  },
];

describe("log writer: stdout of a process whose reader does not read", () => {
  for (const mode of CHILD_MODES) {
    it(`the writer on a blocking stdout pipe keeps the event loop free and drops the overflow: ${mode.name}`, async () => {
      const dir = tempDir();
      const path = join(dir, "fifo");
      assert.equal(spawnSync("mkfifo", [path]).status, 0);
      const writerUrl = new URL("../../src/ops/log/writer.ts", import.meta.url).href;
      const script = join(dir, "child.mjs");
      writeFileSync(
        script,
        `import { AccessLogWriter } from ${JSON.stringify(writerUrl)};
const deno = globalThis.Deno;
const stdio = deno === undefined ? undefined : (fd, bytes) => (fd === 1 ? deno.stdout : deno.stderr).write(bytes);
const writer = new AccessLogWriter("stdout", { maxPendingBytes: 128 * 1024, flushIntervalMs: 5, stdio });
let ticks = 0;
const ticker = setInterval(() => ticks++, 5);
const started = performance.now();
for (let i = 0; i < 10000; i++) writer.write("line " + i + " " + "x".repeat(180));
const burstMs = performance.now() - started;
await new Promise((resolve) => setTimeout(resolve, 300));
clearInterval(ticker);
console.error(JSON.stringify({ burstMs, ticks, dropped: writer.dropped, pending: writer.pendingBytes }));
await writer.close(10000);
console.error(JSON.stringify({ written: writer.written, dropped: writer.dropped }));
`,
      );
      const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
      const runtime = process.execPath;
      const args = "Bun" in globalThis ? [script] : ["run", ...mode.permissions, script];
      const quoted = [runtime, ...args].map((a) => `'${a}'`).join(" ");
      // The shell opens the FIFO for writing without O_NONBLOCK: the child's fd 1 is a blocking
      // pipe, as a terminal or `| less` would be.
      const child = spawn("sh", ["-c", `exec ${quoted} > '${path}'`], {
        stdio: ["ignore", "ignore", "pipe"],
      });
      let stderr = "";
      child.stderr?.setEncoding("utf8");
      child.stderr?.on("data", (chunk: string) => stderr += chunk);
      const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
      let received = "";
      try {
        const deadline = performance.now() + 30_000;
        while (!stderr.includes("\n")) {
          assert.ok(performance.now() < deadline, `child report: ${stderr}`);
          await sleep(20);
        }
        const first = JSON.parse(stderr.split("\n")[0]);
        assert.ok(first.burstMs < 1000, `burst ${first.burstMs} ms`);
        assert.ok(first.ticks >= 20, `the child's event loop ran: ${first.ticks} ticks`);
        assert.ok(first.dropped > 0, "lines dropped while nobody read");
        assert.ok(first.pending <= 128 * 1024);
        // Now read: the child finishes writing and exits.
        const buffer = Buffer.alloc(256 * 1024);
        let code: number | null | undefined;
        void exited.then((c) => code = c);
        while (code === undefined) {
          assert.ok(performance.now() < deadline, "child exit");
          const count = readAvailable(reader, buffer);
          received += buffer.toString("utf8", 0, count);
          await sleep(count === 0 ? 5 : 0);
        }
        received += buffer.toString("utf8", 0, readAvailable(reader, buffer));
        closeSync(reader);
        assert.equal(code, 0, stderr);
      } finally {
        child.kill("SIGKILL"); // only when the test failed half-way: it has exited otherwise
      }
      const last = JSON.parse(stderr.trim().split("\n")[1]);
      const lines = received.split("\n");
      assert.equal(lines.pop(), "");
      assert.equal(lines.length, last.written);
      assert.equal(last.written + last.dropped, 10000);
      for (const line of lines) assert.match(line, /^line \d+ x{180}$/);
    });
  }
});
