/**
 * DNS discovery through the reloader (one swap mechanism): `rediscover()` makes the running text
 * with the latest answers the next generation in this thread and every worker (the workers get
 * the same text and answers), state carried by (upstream, server id); a file edited meanwhile is
 * not read by it, while a file reload reads the file and also parses with the latest answers.
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
import type { Discovered } from "../../src/discovery/types.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const TEXT = `[server]
listen = "127.0.0.1:0"
workers = 2
reload_throttle = "0"
[log]
access = "off"
[upstreams.app]
servers = [{ dns = "app.internal:8080" }]
[upstreams.app.sticky]
`;

/** A worker that acknowledges each step (as worker.ts does) and records the commands. */
class FakeWorker extends EventTarget {
  readonly commands: WorkerCommand[] = [];
  postMessage(command: WorkerCommand): void {
    this.commands.push(command);
    const report: WorkerReport | undefined = command.type === "reload"
      ? { type: "reload_prepared", attempt: command.attempt }
      : command.type === "reload_commit"
      ? { type: "reloaded", attempt: command.attempt }
      : undefined;
    if (report !== undefined) {
      setTimeout(() => this.dispatchEvent(new MessageEvent("message", { data: report })), 5);
    }
  }
}

const answers = (...ips: string[]): Discovered =>
  new Map([["A app.internal", ips.map((ip) => ({ ip }))]]);

function setUp(first: Discovered) {
  const dir = mkdtempSync(join(tmpdir(), "rediscover-"));
  dirs.push(dir);
  const file = join(dir, "gateway.toml");
  writeFileSync(file, TEXT);
  const runtime = currentRuntime();
  const config = loadServableConfig(file, runtime, TEXT, first);
  const ops = ThreadOps.create(config, 2);
  const swaps: GatewayConfig[] = [];
  const noop = () => Promise.resolve();
  const instance: Instance = {
    listener: {} as Listener,
    admin: undefined,
    pauseChecks: noop,
    resumeChecks: noop,
    reload: (next, state, metrics) => {
      ops.reload(next, state, metrics);
      swaps.push(next);
      return Promise.resolve();
    },
    bindListener: () => Promise.resolve({ host: "127.0.0.1", port: 1 } as Listener),
    dropListener: noop,
    stop: noop,
  };
  const worker = new FakeWorker();
  const events: string[] = [];
  const reloaded: GatewayConfig[] = [];
  let latest = first;
  const reloader = new Reloader({
    file,
    runtime,
    load: loadServableConfig,
    ops,
    instance: () => instance,
    workers: () => [worker as unknown as Worker],
    log: (_level, event, fields) => events.push(JSON.stringify({ event, ...fields })),
    discovered: () => latest,
    text: TEXT,
    onReloaded: (next) => reloaded.push(next),
  });
  const setAnswers = (next: Discovered) => void (latest = next);
  return { file, ops, reloader, worker, swaps, events, reloaded, setAnswers };
}

const ids = (config: GatewayConfig) => config.upstreams.get("app")!.servers.map((s) => s.id);

describe("Reloader.rediscover", () => {
  it("swaps in the running text with the new answers, in every thread, state carried by id", async () => {
    const t = setUp(answers("10.0.0.1", "10.0.0.2"));
    const slot = t.ops.state.serverSlot("app", "10.0.0.2:8080")!;
    t.ops.state.setAdminState(slot, "maint");
    // An edit not reloaded yet: a DNS change must not apply it.
    writeFileSync(t.file, TEXT.replace("workers = 2", "workers = 3"));
    t.setAnswers(answers("10.0.0.2", "10.0.0.3"));
    const answer = await t.reloader.rediscover();
    assert.equal(answer.ok, true, JSON.stringify(answer));
    assert.deepEqual(ids(t.ops.config), ["10.0.0.2:8080", "10.0.0.3:8080"]);
    assert.deepEqual(answer.ok && answer.changes, {
      added: { app: ["10.0.0.3:8080"] },
      removed: { app: ["10.0.0.1:8080"] },
      changed: {},
    });
    const kept = t.ops.state.serverSlot("app", "10.0.0.2:8080")!;
    assert.equal(t.ops.state.adminState(kept), "maint", "the kept server's state is carried");
    const sent = t.worker.commands.find((c) => c.type === "reload");
    assert.ok(sent?.type === "reload");
    assert.equal(sent.text, TEXT, "the workers parse the running text");
    assert.deepEqual([...sent.discovered!], [...answers("10.0.0.2", "10.0.0.3")]);
    assert.match(t.events.join("\n"), /"event":"config_reloaded","trigger":"dns"/);
    assert.deepEqual(t.reloaded.map(ids), [["10.0.0.2:8080", "10.0.0.3:8080"]]);
  });

  it("a file reload reads the file and parses it with the latest answers", async () => {
    const t = setUp(answers("10.0.0.1"));
    t.setAnswers(answers("10.0.0.1", "10.0.0.5"));
    writeFileSync(
      t.file,
      TEXT.replace("[upstreams.app.sticky]\n", '[upstreams.app.sticky]\nname = "srv"\n'),
    );
    const answer = await t.reloader.reload("api");
    assert.equal(answer.ok, true, JSON.stringify(answer));
    assert.equal(t.ops.config.upstreams.get("app")!.sticky?.name, "srv");
    assert.deepEqual(ids(t.ops.config), ["10.0.0.1:8080", "10.0.0.5:8080"]);
    // The next DNS change reloads that text (the file's, now running), not the start's.
    t.setAnswers(answers("10.0.0.5"));
    assert.equal((await t.reloader.rediscover()).ok, true);
    assert.equal(t.ops.config.upstreams.get("app")!.sticky?.name, "srv");
    assert.deepEqual(ids(t.ops.config), ["10.0.0.5:8080"]);
  });
});
