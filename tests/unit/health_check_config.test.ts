/**
 * `[upstreams.NAME.health]` (issue 9 point 6): defaults, every key, and each bad value named by
 * its key path with a fix. Read with `readHealthSettings` over the parsed table, as load.ts does.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parse } from "smol-toml";
import { Fields, type TomlTable } from "../../src/config/fields.ts";
import { Problems } from "../../src/config/problems.ts";
import {
  DEFAULT_STATUSES,
  type HealthCheckSettings,
  readHealthSettings,
  statusPasses,
} from "../../src/config/health.ts";

const PATH = "upstreams.app.health";

function read(toml: string): { settings: HealthCheckSettings; problems: Problems["list"] } {
  const problems = new Problems();
  const settings = readHealthSettings(new Fields(parse(toml) as TomlTable, PATH, problems));
  return { settings, problems: problems.list };
}

function problems(toml: string): string[] {
  return read(toml).problems.map((p) => `${p.path}: ${p.message}`);
}

describe("readHealthSettings", () => {
  it("fills HAProxy's defaults around the path", () => {
    const { settings, problems } = read(`path = "/health"`);
    assert.deepEqual(problems, []);
    assert.deepEqual(settings, {
      path: "/health",
      intervalMs: 2000,
      timeoutMs: 1000,
      rise: 2,
      fall: 3,
      statuses: DEFAULT_STATUSES,
    });
    assert.ok(Object.isFrozen(settings));
  });

  it("reads every key", () => {
    const { settings, problems } = read(`
      path = "/healthz?deep=1"
      interval = "200ms"
      timeout = "150ms"
      rise = 1
      fall = 5
      status = ["200-299", 304, "418"]
      host = "app.internal:8080"
      drain_status = 503
    `);
    assert.deepEqual(problems, []);
    assert.deepEqual(settings, {
      path: "/healthz?deep=1",
      intervalMs: 200,
      timeoutMs: 150,
      rise: 1,
      fall: 5,
      statuses: [{ from: 200, to: 299 }, { from: 304, to: 304 }, { from: 418, to: 418 }],
      host: "app.internal:8080",
      drainStatus: 503,
    });
    assert.equal(read(`path = "/"\nhost = "[::1]:81"`).settings.host, "[::1]:81");
  });

  it("tells which statuses pass", () => {
    const { settings } = read(`path = "/"\nstatus = ["200-204", 301]`);
    assert.deepEqual([199, 200, 204, 205, 301, 302].map((s) => statusPasses(settings, s)), [
      false,
      true,
      true,
      false,
      true,
      false,
    ]);
    const defaults = read(`path = "/"`).settings;
    assert.deepEqual([200, 399, 400, 503].map((s) => statusPasses(defaults, s)), [
      true,
      true,
      false,
      false,
    ]);
  });

  it("requires a path that starts with / and fits a request line", () => {
    assert.deepEqual(problems(``), [
      `${PATH}.path: missing; write the path to probe, e.g. path = "/health"`,
    ]);
    for (const bad of [`"health"`, `"/he alth"`, `"/h\\u00e9"`, `""`, `"/a\\r\\nX: y"`]) {
      const [problem, ...more] = problems(`path = ${bad}`);
      assert.match(problem, /^upstreams\.app\.health\.path: .* is not a request path; start it/);
      assert.deepEqual(more, []);
    }
    assert.deepEqual(problems(`path = 5`), [
      `${PATH}.path: 5 is not a string; write it in quotes`,
    ]);
  });

  it("names each bad value with its key and what to write", () => {
    const cases: [string, RegExp][] = [
      [`interval = "soon"`, /^upstreams\.app\.health\.interval: "soon" is not a duration/],
      [`interval = "1ms"`, /interval: "1ms" is too short; the least allowed is 0.01s/],
      [`timeout = "0s"`, /timeout: "0s" is too short/],
      [`rise = 0`, /rise: 0 is not a whole number from 1 to 100/],
      [`fall = 1.5`, /fall: 1.5 is not a whole number from 1 to 100/],
      [`status = "200"`, /status: "200" is not a list of statuses; write a list .* \["200-399"\]/],
      [`status = []`, /status: an empty list passes nothing; write a list/],
      [`status = [99]`, /status: 99 is not a status \(100-599\) or a range "FROM-TO"/],
      [`status = ["300-200"]`, /status: "300-200" is not a status/],
      [`status = ["2xx"]`, /status: "2xx" is not a status/],
      [`host = "a b"`, /host: "a b" is not a host name; write a name/],
      [`drain_status = 600`, /drain_status: 600 is not a whole number from 100 to 599/],
      [`drain_status = "503"`, /drain_status: "503" is not a whole number/],
      [`intreval = "1s"`, /intreval: unknown key; allowed here: path, host, drain_status/],
    ];
    for (const [line, expected] of cases) {
      const found = problems(`path = "/health"\n${line}`);
      assert.equal(found.length, 1, `${line}: ${found.join(" | ")}`);
      assert.match(found[0], expected, line);
    }
  });

  it("leaves out a bad host or drain_status rather than keeping a wrong one", () => {
    const { settings } = read(`path = "/"\nhost = "a/b"\ndrain_status = 42`);
    assert.equal(settings.host, undefined);
    assert.equal(settings.drainStatus, undefined);
  });
});
