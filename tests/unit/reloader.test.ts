/**
 * The main thread's reloader (issue 10) without a listener: a good file becomes the next
 * generation in this thread and in every worker (the answer waits for their acknowledgements, the
 * text they get is the text validated), a bad one or one that needs a restart changes nothing and
 * is counted, events name each problem, and the admin view's metrics stay the old generation's
 * until every worker has swapped.
 */
import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { GatewayConfig } from "../../src/config/mod.ts";
import { currentRuntime } from "../../src/runtime/runtime.ts";
import type { Instance } from "../../src/runtime/instance.ts";
import type { Listener } from "../../src/runtime/contracts.ts";
import { ThreadOps } from "../../src/ops/thread_ops.ts";
import { loadServableConfig } from "../../src/serve.ts";
import { Reloader } from "../../src/reload/reloader.ts";
import type { WorkerCommand, WorkerReport } from "../../src/worker.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function toml(servers: string, extra = ""): string {
  return `[server]\nlisten = "127.0.0.1:0"\nworkers = 2\n${extra}
[admin]
listen = "127.0.0.1:0"
[log]
access = "off"
[upstreams.app]
servers = [${servers}]
`;
}

/** Event lines logged while the test runs (`event` and fields as JSON). */
const events: string[] = [];

/** A worker that swaps as worker.ts does (here: records the command and acknowledges). */
class FakeWorker extends EventTarget {
  readonly commands: WorkerCommand[] = [];
  answer: (command: WorkerCommand) => WorkerReport | undefined = (command) =>
    command.type === "reload"
      ? { type: "reload_prepared", attempt: command.attempt }
      : command.type === "reload_commit"
      ? { type: "reloaded", attempt: command.attempt }
      : undefined;

  postMessage(command: WorkerCommand): void {
    this.commands.push(command);
    const report = this.answer(command);
    if (report !== undefined) {
      setTimeout(() => this.dispatchEvent(new MessageEvent("message", { data: report })), 5);
    }
  }
}

function setUp(text: string) {
  const dir = mkdtempSync(join(tmpdir(), "reloader-"));
  dirs.push(dir);
  const file = join(dir, "gateway.toml");
  writeFileSync(file, text);
  const runtime = currentRuntime();
  const config = loadServableConfig(file, runtime);
  const ops = ThreadOps.create(config, 2);
  const swaps: GatewayConfig[] = [];
  const calls: string[] = [];
  const instance: Instance = {
    listener: {} as Listener,
    admin: undefined,
    pauseChecks: () => {
      calls.push("pause");
      return Promise.resolve();
    },
    resumeChecks: () => {
      calls.push("resume");
      return Promise.resolve();
    },
    reload: (next, state, metrics) => {
      calls.push("reload");
      ops.reload(next, state, metrics);
      swaps.push(next);
      return Promise.resolve();
    },
    bindListener: () => {
      calls.push("bind");
      return Promise.resolve({ host: "127.0.0.1", port: 1 } as Listener);
    },
    dropListener: () => {
      calls.push("drop");
      return Promise.resolve();
    },
    stop: () => Promise.resolve(),
  };
  const worker = new FakeWorker();
  const reloader = new Reloader({
    file,
    runtime,
    load: loadServableConfig,
    ops,
    instance: () => instance,
    workers: () => [worker as unknown as Worker],
    log: (_level, event, fields) => events.push(JSON.stringify({ event, ...fields })),
  });
  return { file, ops, reloader, worker, swaps, calls, instance };
}

const A = `{ address = "127.0.0.1:9001", id = "a" }`;
const B = `{ address = "127.0.0.1:9002", id = "b" }`;

describe("Reloader", () => {
  it("makes a good file the next generation in this thread and every worker", async () => {
    const { file, ops, reloader, worker, swaps, calls } = setUp(toml(A));
    const slot = ops.state.serverSlot("app", "a")!;
    ops.state.setAdminState(slot, "drain");
    const text = toml(`${A}, ${B}`);
    writeFileSync(file, text);
    const answer = await reloader.reload("api");
    assert.deepEqual(answer, {
      ok: true,
      generation: 1,
      changes: { added: { app: ["b"] }, removed: {}, changed: {} },
    });
    assert.deepEqual(calls, ["pause", "reload"]);
    assert.deepEqual(worker.commands.map((c) => c.type), ["reload", "reload_commit"]);
    assert.equal(swaps.length, 1);
    assert.equal(ops.config.upstreams.get("app")!.servers.length, 2);
    assert.equal(ops.state.adminState(ops.state.serverSlot("app", "a")!), "drain");
    const [parse, commit] = worker.commands;
    assert.ok(parse.type === "reload" && commit.type === "reload_commit");
    assert.equal(parse.text, text, "the text this thread checked, not the path alone");
    assert.equal(commit.attempt, parse.attempt);
    assert.equal(commit.buffers.state, ops.state.buffers, "the new generation's memory");
    assert.deepEqual(reloader.figures(), { ok: 1, error: 0, generation: 1 });
    assert.equal(reloader.control.metrics(), ops.metrics, "the new metrics once all swapped");
  });

  it("answers only once every worker has acknowledged; the old metrics are read until then", async () => {
    const { file, ops, reloader, worker } = setUp(toml(A));
    const old = ops.metrics;
    let release: (() => void) | undefined;
    worker.answer = (command) => {
      if (command.type === "reload") {
        return { type: "reload_prepared", attempt: command.attempt };
      }
      if (command.type !== "reload_commit") return undefined;
      release = () =>
        worker.dispatchEvent(
          new MessageEvent("message", {
            data: { type: "reloaded", attempt: command.attempt },
          }),
        );
      return undefined;
    };
    writeFileSync(file, toml(`${A}, ${B}`));
    let answered = false;
    const answer = reloader.reload("SIGHUP").then((a) => {
      answered = true;
      return a;
    });
    while (release === undefined) await new Promise((r) => setTimeout(r, 1));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(answered, false);
    assert.equal(reloader.control.metrics(), old, "a scrape reads the old counts meanwhile");
    release();
    assert.equal((await answer).ok, true);
    assert.notEqual(reloader.control.metrics(), old);
  });

  it("changes nothing for a bad file and reports every problem with its key", async () => {
    const { file, ops, reloader, worker, calls } = setUp(toml(A));
    const before = ops.config;
    writeFileSync(file, toml(`{ address = "127.0.0.1:9001", wieght = 2, backup = 3 }`));
    const answer = await reloader.reload("watch");
    assert.equal(answer.ok, false);
    if (answer.ok) return;
    assert.deepEqual(answer.problems.map((p) => p.path).sort(), [
      "upstreams.app.servers[0].backup",
      "upstreams.app.servers[0].wieght",
    ]);
    assert.equal(ops.config, before);
    assert.deepEqual(calls, []);
    assert.deepEqual(
      worker.commands.map((c) => c.type),
      ["reload", "reload_abort"],
      "the workers parse while this thread checks; its problems abort theirs",
    );
    assert.deepEqual(reloader.figures(), { ok: 0, error: 1, generation: 0 });
    assert.ok(events.some((l) => l.includes(`"key":"upstreams.app.servers[0].wieght"`)));
    assert.ok(events.some((l) => l.includes(`"event":"config_reload_failed"`)));
  });

  it("refuses a key that needs a restart, and a file that is gone", async () => {
    const { file, ops, reloader } = setUp(toml(A));
    const before = ops.config;
    writeFileSync(file, toml(A, `upstream_client = "fetch"`));
    const restart = await reloader.reload("api");
    assert.equal(restart.ok, false);
    if (!restart.ok) {
      assert.equal(restart.problems[0].path, "server.upstream_client");
      assert.match(restart.problems[0].message, /needs a restart/);
    }
    rmSync(file);
    const gone = await reloader.reload("watch");
    assert.equal(gone.ok, false);
    if (!gone.ok) assert.match(gone.problems[0].message, /file not found/);
    assert.equal(ops.config, before);
    assert.deepEqual(reloader.figures(), { ok: 0, error: 2, generation: 0 });
  });

  it("throttles a storm: a reload starts at least the gap after the last one ended", async () => {
    const throttle = `reload_throttle = "60ms"`;
    const { file, reloader } = setUp(toml(A, throttle));
    const started = performance.now();
    for (let i = 0; i < 5; i++) {
      writeFileSync(file, toml(i % 2 === 0 ? `${A}, ${B}` : A, throttle));
      assert.equal((await reloader.reload("api")).ok, true);
    }
    // Four gaps between five reloads (the first starts at once).
    const took = performance.now() - started;
    assert.ok(took >= 4 * 60, `5 reloads back to back took ${took.toFixed(0)} ms`);
    // Asked all at once while one waits: one more reload for all of them.
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => reloader.reload("SIGHUP")),
    );
    assert.deepEqual(new Set(answers.map((a) => a.generation)).size <= 2, true);
    assert.ok(reloader.generation <= 7, `generation ${reloader.generation} after 50 asked at once`);
  });

  it("throttles by the config serving: a reload's new reload_throttle applies to the next", async () => {
    const { file, reloader } = setUp(toml(A, `reload_throttle = "0"`));
    // Back to back with no throttle: only the 9× rule (a reload here takes 10-20 ms).
    const gap = async (servers: string, extra: string) => {
      writeFileSync(file, toml(servers, extra));
      const asked = performance.now();
      assert.equal((await reloader.reload("api")).ok, true);
      return performance.now() - asked;
    };
    await gap(`${A}, ${B}`, `reload_throttle = "0"`);
    // This one starts at once (the serving config says 0) and brings in 400 ms.
    const quick = await gap(A, `reload_throttle = "400ms"`);
    // Under the default (1 s) it would wait at least that long.
    assert.ok(quick < 390, `a reload under reload_throttle = "0" waited ${quick.toFixed(0)} ms`);
    const slow = await gap(`${A}, ${B}`, `reload_throttle = "400ms"`);
    assert.ok(slow >= 390, `a reload after one that set 400ms waited ${slow.toFixed(0)} ms`);
    // The default, when the file says nothing: a second.
    await gap(A, "");
    const byDefault = await gap(`${A}, ${B}`, "");
    assert.ok(byDefault >= 990, `the default throttle waited ${byDefault.toFixed(0)} ms`);
  });

  it("joins a reload asked during the gap to the one waiting out the gap", async () => {
    // Was a third reload: the waiting one counted as started, so one asked during its gap queued
    // behind it (the e2e storm of 100 API reloads sometimes saw three generations).
    const throttle = `reload_throttle = "80ms"`;
    const { file, reloader } = setUp(toml(A, throttle));
    writeFileSync(file, toml(`${A}, ${B}`, throttle));
    assert.equal((await reloader.reload("api")).generation, 1);
    writeFileSync(file, toml(A, throttle));
    const waiting = reloader.reload("api");
    await new Promise((resolve) => setTimeout(resolve, 30));
    writeFileSync(
      file,
      toml(`${A}, ${B}, { address = "127.0.0.1:9003", id = "c" }`, throttle),
    );
    const joined = reloader.reload("SIGHUP");
    const answers = await Promise.all([waiting, joined]);
    assert.deepEqual(answers.map((a) => a.generation), [2, 2]);
    // It read the file as it was when it started, after both were asked.
    assert.ok(
      answers[1].ok && answers[1].changes.added.app?.includes("c"),
      JSON.stringify(answers),
    );
  });

  it("a main thread that fails to swap is reported and its checks go on (the workers swapped)", async () => {
    const { file, reloader, calls, instance } = setUp(toml(A));
    instance.reload = () => Promise.reject(new Error("boom"));
    writeFileSync(file, toml(`${A}, ${B}`));
    const answer = await reloader.reload("api");
    assert.equal(answer.ok, true);
    assert.ok(calls.includes("resume"), calls.join());
    const event = events.map((e) => JSON.parse(e)).findLast((e) => e.event === "config_reloaded");
    assert.match(event.workers_failed, /^main thread: boom/);
  });

  it("changes nothing in any thread when a worker cannot prepare the new generation", async () => {
    const { file, ops, reloader, worker, calls } = setUp(toml(A));
    const before = ops.config;
    worker.answer = (command) =>
      command.type === "reload"
        ? { type: "reload_failed", attempt: command.attempt, message: "ca.pem is gone" }
        : undefined;
    writeFileSync(file, toml(`${A}, ${B}`));
    const answer = await reloader.reload("api");
    assert.equal(answer.ok, false);
    if (!answer.ok) assert.equal(answer.problems[0].message, "worker 1: ca.pem is gone");
    assert.equal(ops.config, before);
    assert.deepEqual(calls, ["pause", "resume"], "the checks go on on the running state");
    assert.deepEqual(worker.commands.map((c) => c.type), ["reload", "reload_abort"]);
    assert.deepEqual(reloader.figures(), { ok: 0, error: 1, generation: 0 });
    assert.ok(events.some((l) => l.includes("worker 1: ca.pem is gone")));
  });
});
