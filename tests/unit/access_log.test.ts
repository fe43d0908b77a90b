/**
 * The access log's lines (issue 9 point 2): the JSON and combined formatters, field by field, and
 * the escaping of client-provided text (no forged line, no broken field, no terminal escape); the
 * `[log]` config reader; `logEvent`'s line.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RequestRecord } from "../../src/proxy/request_record.ts";
import {
  AccessLog,
  escapeBare,
  escapeQuoted,
  formatAccessCombined,
  formatAccessJson,
  formatEvent,
  safeJson,
  timeLocal,
} from "../../src/ops/log/mod.ts";
import { readLogSettings } from "../../src/config/log.ts";
import { Fields, type TomlTable } from "../../src/config/fields.ts";
import { Problems } from "../../src/config/problems.ts";

const START = Date.UTC(2026, 11, 2, 11, 46, 1, 23);

function record(overrides: Partial<RequestRecord> = {}): RequestRecord {
  return {
    kind: "http",
    startMs: START,
    clientAddress: "192.0.2.7",
    method: "GET",
    target: "/cart?id=3",
    protocol: "HTTP/1.1",
    status: 200,
    bytesIn: 0,
    bytesOut: 1234,
    durationMs: 12.3456789,
    upstream: "app",
    server: "web-1",
    upstreamStatus: 200,
    upstreamHeaderMs: 10.5,
    attempts: 1,
    sticky: "hit",
    error: undefined,
    requestId: "4f1c2a",
    userAgent: "Mozilla/5.0 (X11)",
    referer: "https://example.com/",
    ...overrides,
  };
}

/** Fields of a combined line after the quoted user agent, as key → value. */
function extras(line: string): Map<string, string> {
  const tail = line.slice(line.lastIndexOf('" ') + 2);
  return new Map(
    tail.split(" ").map((pair) => {
      const at = pair.indexOf("=");
      return [pair.slice(0, at), pair.slice(at + 1)];
    }),
  );
}

describe("access log: JSON lines", () => {
  it("has every field, time as RFC 3339 UTC with milliseconds, null where nothing applies", () => {
    assert.deepEqual(JSON.parse(formatAccessJson(record())), {
      time: "2026-12-02T11:46:01.023Z",
      kind: "http",
      client: "192.0.2.7",
      method: "GET",
      target: "/cart?id=3",
      protocol: "HTTP/1.1",
      status: 200,
      bytes_in: 0,
      bytes_out: 1234,
      duration_ms: 12.346,
      upstream: "app",
      server: "web-1",
      upstream_status: 200,
      upstream_header_ms: 10.5,
      attempts: 1,
      sticky: "hit",
      code: null,
      request_id: "4f1c2a",
      user_agent: "Mozilla/5.0 (X11)",
      referer: "https://example.com/",
    });
    const failed = JSON.parse(formatAccessJson(record({
      status: 502,
      server: undefined,
      upstreamStatus: undefined,
      upstreamHeaderMs: undefined,
      attempts: 2,
      sticky: "refused",
      error: "pinned_unavailable",
      userAgent: undefined,
      referer: undefined,
    })));
    assert.equal(failed.server, null);
    assert.equal(failed.upstream_status, null);
    assert.equal(failed.upstream_header_ms, null);
    assert.equal(failed.code, "pinned_unavailable");
    assert.equal(failed.sticky, "refused");
    assert.equal(failed.user_agent, null);
    assert.equal(failed.referer, null);
  });

  it("one line per record whatever the client sent: CR, LF, quotes, ESC, C1, U+2028 escaped", () => {
    const hostile = 'x"\r\n{"status":200}\u001b[31m\u009b2J\u2028\u007f\\';
    const line = formatAccessJson(record({ target: `/${hostile}`, userAgent: hostile }));
    assert.equal(line.split("\n").length, 1);
    // deno-lint-ignore no-control-regex
    assert.doesNotMatch(line, /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/);
    const parsed = JSON.parse(line);
    assert.equal(parsed.user_agent, hostile, "escaped, not altered");
    assert.equal(parsed.target, `/${hostile}`);
    assert.equal(parsed.status, 200);
  });

  it("a WebSocket's lines say ws-open and ws-close", () => {
    assert.equal(
      JSON.parse(formatAccessJson(record({ kind: "ws-open", status: 101 }))).kind,
      "ws-open",
    );
    assert.equal(
      JSON.parse(formatAccessJson(record({ kind: "ws-close", status: 101 }))).kind,
      "ws-close",
    );
  });

  it("a start time that is not a number gives an empty time, not a throw", () => {
    assert.equal(JSON.parse(formatAccessJson(record({ startMs: Number.NaN }))).time, "");
  });
});

describe("access log: nginx combined", () => {
  it("is nginx's combined format, then the gateway's fields as key=value", () => {
    const line = formatAccessCombined(record());
    assert.equal(
      line,
      `192.0.2.7 - - [${timeLocal(START)}] "GET /cart?id=3 HTTP/1.1" 200 1234 ` +
        `"https://example.com/" "Mozilla/5.0 (X11)" rt=0.012 uht=0.011 us=200 upstream=app ` +
        `server=web-1 attempts=1 sticky=hit code=- rid=4f1c2a bytes_in=0`,
    );
  });

  it("parses with the regex log tools use for nginx's combined format", () => {
    const combined =
      /^(\S+) - (\S+) \[([^\]]+)\] "([^"]*)" (\d{3}) (\d+) "([^"]*)" "([^"]*)"( .*)?$/;
    const match = combined.exec(formatAccessCombined(record()));
    assert.ok(match);
    assert.equal(match[5], "200");
    assert.equal(match[4], "GET /cart?id=3 HTTP/1.1");
  });

  it("$time_local is dd/Mon/yyyy:HH:MM:SS ±hhmm in the process's time zone", () => {
    const text = timeLocal(START);
    assert.match(text, /^\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}$/);
    const date = new Date(START);
    const offset = -date.getTimezoneOffset();
    const sign = offset < 0 ? "-" : "+";
    const hh = String(Math.floor(Math.abs(offset) / 60)).padStart(2, "0");
    const mm = String(Math.abs(offset) % 60).padStart(2, "0");
    assert.ok(text.endsWith(` ${sign}${hh}${mm}`), text);
    assert.equal(timeLocal(START + 976), text, "the same second");
    assert.notEqual(timeLocal(START + 977), text);
  });

  it("'-' for what does not apply; failures show their code and upstream status", () => {
    const fields = extras(formatAccessCombined(record({
      status: 504,
      server: "web-2",
      upstreamStatus: undefined,
      upstreamHeaderMs: undefined,
      attempts: 2,
      sticky: "repin",
      error: "read_timeout",
      userAgent: undefined,
      referer: undefined,
      bytesIn: 42,
    })));
    assert.deepEqual(Object.fromEntries(fields), {
      rt: "0.012",
      uht: "-",
      us: "-",
      upstream: "app",
      server: "web-2",
      attempts: "2",
      sticky: "repin",
      code: "read_timeout",
      rid: "4f1c2a",
      bytes_in: "42",
    });
    const noRoute = formatAccessCombined(
      record({ upstream: undefined, server: undefined, status: 404, userAgent: undefined }),
    );
    assert.match(noRoute, / "https:\/\/example.com\/" "-" /);
    assert.match(noRoute, / upstream=- server=- /);
  });

  it("quotes, backslashes, controls and non-ASCII in client text become \\xHH (as nginx)", () => {
    const line = formatAccessCombined(record({
      target: '/a"b\\c\r\nd é',
      userAgent: 'ua" 200 1 "x\u001b[2J',
      referer: "\u2028",
      method: "GET",
    }));
    assert.equal(line.split("\n").length, 1);
    // deno-lint-ignore no-control-regex
    assert.doesNotMatch(line, /[\u0000-\u001f\u007f-\uffff]/);
    assert.ok(line.includes('"GET /a\\x22b\\x5Cc\\x0D\\x0Ad \\xE9 HTTP/1.1"'), line);
    assert.ok(line.includes('"ua\\x22 200 1 \\x22x\\x1B[2J"'), line);
    assert.ok(line.includes('"\\xE2\\x80\\xA8"'), "above U+00FF: its UTF-8 bytes");
  });

  it("a client's request id cannot add or split key=value fields", () => {
    const fields = extras(formatAccessCombined(record({ requestId: "a b=c\nsticky=hit" })));
    assert.equal(fields.get("rid"), "a\\x20b=c\\x0Asticky=hit");
    assert.equal(fields.get("sticky"), "hit");
    assert.equal(fields.size, 10);
  });

  it("a WebSocket's lines end in ws=open and ws=close", () => {
    assert.match(formatAccessCombined(record({ kind: "ws-open", status: 101 })), / ws=open$/);
    assert.match(formatAccessCombined(record({ kind: "ws-close", status: 101 })), / ws=close$/);
    assert.doesNotMatch(formatAccessCombined(record()), / ws=/);
  });
});

describe("escaping helpers", () => {
  it("leave clean text as it is", () => {
    assert.equal(escapeQuoted("/path?a=1&b=2"), "/path?a=1&b=2");
    assert.equal(escapeQuoted("a b"), "a b");
    assert.equal(escapeBare("a b"), "a\\x20b");
    assert.equal(safeJson({ a: "é" }), '{"a":"é"}');
  });
});

describe("[log] settings", () => {
  function read(table: TomlTable | undefined, baseDir?: string) {
    const problems = new Problems();
    const fields = table === undefined ? undefined : new Fields(table, "log", problems);
    const settings = readLogSettings(fields, problems, baseDir);
    return { settings, problems: problems.list };
  }

  it("defaults to JSON lines on stdout, also without a [log] table", () => {
    for (const table of [undefined, {}]) {
      const { settings, problems } = read(table);
      assert.deepEqual(problems, []);
      assert.deepEqual(settings, { access: "stdout", file: undefined, format: "json" });
      assert.ok(Object.isFrozen(settings));
    }
  });

  it("stdout, stderr, off, combined", () => {
    assert.equal(read({ access: "stderr" }).settings.access, "stderr");
    assert.equal(read({ access: "off" }).settings.access, "off");
    assert.equal(read({ format: "combined" }).settings.format, "combined");
  });

  it("a file: absolute, or relative to the config's directory", () => {
    const dir = mkdtempSync(join(tmpdir(), "log-settings-"));
    mkdirSync(join(dir, "logs"));
    assert.deepEqual(read({ access: join(dir, "access.log") }).settings, {
      access: "file",
      file: join(dir, "access.log"),
      format: "json",
    });
    assert.equal(read({ access: "logs/a.log" }, dir).settings.file, join(dir, "logs", "a.log"));
  });

  it("problems name the key and the fix", () => {
    const dir = mkdtempSync(join(tmpdir(), "log-settings-"));
    const missing = read({ access: join(dir, "nope", "access.log") }).problems;
    assert.equal(missing.length, 1);
    assert.equal(missing[0].path, "log.access");
    assert.match(missing[0].message, /does not exist; create it \(mkdir -p\)/);
    const isDir = read({ access: dir }).problems;
    assert.match(isDir[0].message, /is a directory/);
    assert.match(read({ access: "" }).problems[0].message, /use "stdout", "stderr", "off"/);
    const format = read({ format: "text" }).problems;
    assert.deepEqual(format.map((p) => p.path), ["log.format"]);
    assert.match(format[0].message, /is not one of json, combined/);
    assert.match(read({ access: 1 }).problems[0].message, /is not a string/);
    const typo = read({ acess: "off" }).problems;
    assert.deepEqual(typo.map((p) => p.path), ["log.acess"]);
  });
});

describe("AccessLog", () => {
  it("writes one formatted line per record to a file, in the configured format", async () => {
    const dir = mkdtempSync(join(tmpdir(), "access-log-"));
    for (const format of ["json", "combined"] as const) {
      const file = join(dir, `${format}.log`);
      const log = AccessLog.open({ access: "file", file, format });
      assert.ok(log);
      log.log(record());
      log.log(record({ status: 404 }));
      await log.close();
      const formatter = format === "json" ? formatAccessJson : formatAccessCombined;
      assert.deepEqual(readFileSync(file, "utf8").split("\n"), [
        formatter(record()),
        formatter(record({ status: 404 })),
        "",
      ]);
    }
  });

  it("is nothing when off", () => {
    assert.equal(AccessLog.open({ access: "off", file: undefined, format: "json" }), undefined);
  });

  it("counts a record it cannot format as dropped instead of throwing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "access-log-"));
    let dropped = 0;
    const log = AccessLog.open({ access: "file", file: join(dir, "a.log"), format: "combined" }, {
      onDrop: (lines) => dropped += lines,
    });
    assert.ok(log);
    log.log(null as unknown as RequestRecord);
    log.log(record());
    assert.equal(dropped, 1);
    assert.equal(log.dropped, 1);
    await log.close();
    assert.equal(readFileSync(join(dir, "a.log"), "utf8"), `${formatAccessCombined(record())}\n`);
  });
});

describe("event lines", () => {
  it("time, level, event first, then the fields; undefined left out; reserved names kept", () => {
    const line = formatEvent("error", "server_down", {
      upstream: "app",
      server: "web-1",
      failures: 3,
      active: true,
      reason: undefined,
      level: "spoofed",
    }, START);
    assert.equal(
      line,
      '{"time":"2026-12-02T11:46:01.023Z","level":"error","event":"server_down",' +
        '"upstream":"app","server":"web-1","failures":3,"active":true}',
    );
  });
});
