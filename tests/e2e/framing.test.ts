/**
 * Client-side framing on a plain-HTTP listener (issue 8, points 1-8): every ambiguous or
 * malformed request is refused with the catalogue's answer and its connection closed, and above
 * all nothing but the requests the client meant ever reaches the upstream. The upstream is a
 * recording server that parses strictly what it receives (tests/support/recording_upstream.ts),
 * the client a raw socket (tests/support/raw_client.ts).
 *
 * After every case a probe (a new client, `GET /probe-K`) must be served by the upstream, on the
 * gateway's pooled connection when there is one: the gateway keeps serving, and a request it let
 * through (or a body it left behind on the upstream connection) shows up in what the upstream saw
 * or in the probe's answer.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { startGateway, stopAllGateways } from "../support/gateway.ts";
import { header, sha256 } from "../support/http.ts";
import { converse, type RawConversation, type Sendable } from "../support/raw_client.ts";
import {
  type RecordingUpstream,
  type SeenRequest,
  startRecordingUpstream,
} from "../support/recording_upstream.ts";
import { eventually } from "../support/realtime.ts";
import { PATTERN } from "../support/upstreams.ts";

const HOST = "Host: gw.test\r\n";
/** A complete request that must never reach the upstream when it rides in another's bytes. */
const SMUGGLED = `GET /SMUGGLED HTTP/1.1\r\n${HOST}\r\n`;
/** "GET /SMUGGLED HTTP/1.1" is exactly 22 bytes: the body of a GET with Content-Length: 22. */
const SMUGGLED_LINE = "GET /SMUGGLED HTTP/1.1";
/** A request's bytes as the data of a valid body: must arrive as body bytes, nothing else. */
const IN_BODY = `GET /IN-BODY HTTP/1.1\r\n${HOST}\r\n`;

/** A request as the upstream saw it: `METHOD target`, and its body when it has one. */
function seen(request: SeenRequest): string {
  const body = request.body.length > 0 ? ` body=${bodyText(request.body)}` : "";
  return `${request.method} ${request.target}${body}`;
}

/** A body as text: short ones as a JSON string, long ones by length and sha256. */
function bodyText(body: Uint8Array): string {
  if (body.length <= 200) return JSON.stringify(Buffer.from(body).toString("latin1"));
  return `<${body.length} bytes, sha256 ${sha256(body).slice(0, 16)}>`;
}

/** A response as `status code-or-body`: the gateway's errors by code, the upstream's by body. */
function answered(conversation: RawConversation): string[] {
  return conversation.responses.map((r) =>
    `${r.status} ${header(r, "x-gateway-error") ?? r.body.toString("latin1")}`
  );
}

/** deepEqual with both sides printed whole: both test runners cut long diffs short. */
function same<T>(actual: T, expected: T): void {
  assert.deepEqual(
    actual,
    expected,
    `\n  got:      ${JSON.stringify(actual)}\n  expected: ${JSON.stringify(expected)}`,
  );
}

/** Everything a case decides, compared at once so a failure shows every difference. */
interface Verdict {
  /** The client's responses. */
  answers: string[];
  /** Bytes after the last whole response. */
  rest: string;
  /** The gateway closed the client's connection. */
  closed: boolean;
  /** What reached the upstream during the case (the probe last). */
  upstream: string[];
  /** Strictness violations the upstream found in what the gateway sent. */
  violations: string[];
  /** The probe's answer. */
  probe: string;
}

describe("client-side framing on a plain-HTTP listener", () => {
  let U: RecordingUpstream;
  let port = 0;
  let probes = 0;
  before(async () => {
    U = await startRecordingUpstream();
    // max_fails = 0: a case where the upstream drops what the gateway let through (a 502) must
    // not make the server unavailable for the cases after it.
    const gw = await startGateway(`
[upstreams.app]
servers = [{ address = "${U.address}", max_fails = 0 }]
[upstreams.app.sticky]
`);
    port = gw.port;
  });
  after(async () => {
    await stopAllGateways();
    await U?.close();
  });

  /**
   * Waits until no new request has reached the upstream for 300 ms (at most 3 s): a case that
   * failed can leave requests in flight, which must not land in the next case's record.
   */
  async function quiet(): Promise<void> {
    const deadline = Date.now() + 3000;
    for (let count = -1; count !== U.requests().length && Date.now() < deadline;) {
      count = U.requests().length;
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  }

  /** A new client's `GET /probe-K`, answered as `status body` (or what went wrong). */
  async function probe(): Promise<{ path: string; answer: string }> {
    const path = `/probe-${++probes}`;
    const talk = await converse(port, `GET ${path} HTTP/1.1\r\n${HOST}Connection: close\r\n\r\n`, {
      timeoutMs: 5000,
    });
    const answer = talk.responses.length === 1
      ? answered(talk)[0]
      : `no single answer: ${JSON.stringify(talk.bytes.toString("latin1").slice(0, 300))}`;
    return { path, answer };
  }

  /**
   * Sends `bytes` on a new connection, reads until the gateway closes it (at most 4 s), then
   * probes. Returns the verdict and what the probe's expected entries are.
   */
  async function run(
    bytes: Sendable,
    heads: boolean[] = [],
  ): Promise<{ verdict: Verdict; probeLine: string; probeAnswer: (n: number) => string }> {
    const mark = U.requests().length;
    const violationsBefore = U.violations().length;
    const talk = await converse(port, bytes, { timeoutMs: 4000, heads });
    const p = await probe();
    const verdict: Verdict = {
      answers: answered(talk),
      rest: talk.rest.toString("latin1"),
      closed: talk.closed,
      upstream: U.requests().slice(mark).map(seen),
      violations: U.violations().slice(violationsBefore),
      probe: p.answer,
    };
    return {
      verdict,
      probeLine: `GET ${p.path}`,
      // The probe is the n-th request the upstream saw: after the case's intended ones.
      probeAnswer: (intended: number) => `200 seen ${mark + intended + 1}: GET ${p.path}`,
    };
  }

  /** The case must be refused with `status code`, closed, and nothing of it reach the upstream. */
  async function assertRefused(
    bytes: Sendable,
    status: number,
    code: string,
    heads: boolean[] = [],
  ): Promise<void> {
    const { verdict, probeLine, probeAnswer } = await run(bytes, heads);
    same(verdict, {
      answers: [`${status} ${code}`],
      rest: "",
      closed: true,
      upstream: [probeLine],
      violations: [],
      probe: probeAnswer(0),
    });
  }

  /** The case must be served: `answers` from the upstream, which saw exactly `upstream`. */
  async function assertServed(
    bytes: Sendable,
    expected: { answers: (n: number) => string[]; upstream: string[]; closed: boolean },
  ): Promise<SeenRequest[]> {
    const mark = U.requests().length;
    const { verdict, probeLine, probeAnswer } = await run(bytes);
    same(verdict, {
      answers: expected.answers(mark),
      rest: "",
      closed: expected.closed,
      upstream: [...expected.upstream, probeLine],
      violations: [],
      probe: probeAnswer(expected.upstream.length),
    });
    return U.requests().slice(mark, mark + expected.upstream.length);
  }

  describe("positive controls (the tools work: these pass with or without the fix)", () => {
    it("the recording upstream and the raw client, without the gateway: two pipelined requests, in order, then closed", async () => {
      const mark = U.requests().length;
      const talk = await converse(U.port, [
        `POST /direct-1 HTTP/1.1\r\n${HOST}Content-Length: 5\r\n\r\nhel`,
        `lo`,
        `GET /direct-2 HTTP/1.1\r\n${HOST}Connection: close\r\n\r\n`,
      ]);
      same(answered(talk), [
        `200 seen ${mark + 1}: POST /direct-1`,
        `200 seen ${mark + 2}: GET /direct-2`,
      ]);
      assert.equal(talk.closed, true);
      same(U.requests().slice(mark).map(seen), [
        'POST /direct-1 body="hello"',
        "GET /direct-2",
      ]);
    });

    it("the recording upstream refuses what a strict server refuses (here Content-Length + Transfer-Encoding) and closes", async () => {
      const mark = U.requests().length;
      const before = U.violations().length;
      const talk = await converse(
        U.port,
        `POST /direct-bad HTTP/1.1\r\n${HOST}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      );
      assert.equal(talk.closed, true);
      same(talk.responses, []);
      assert.equal(U.requests().length, mark);
      assert.equal(U.violations().length, before + 1);
      assert.match(U.violations()[before], /Content-Length with Transfer-Encoding/);
    });

    const refusedDirectly: [string, string][] = [
      ["bare LF", `GET /d HTTP/1.1\n${HOST}\r\n`],
      ["obs-fold", `GET /d HTTP/1.1\r\n${HOST}X-A: a\r\n b\r\n\r\n`],
      [
        "two Content-Lengths",
        `POST /d HTTP/1.1\r\n${HOST}Content-Length: 1\r\nContent-Length: 1\r\n\r\nx`,
      ],
      ["Content-Length: 1,1", `POST /d HTTP/1.1\r\n${HOST}Content-Length: 1,1\r\n\r\nx`],
      [
        "Transfer-Encoding: gzip, chunked",
        `POST /d HTTP/1.1\r\n${HOST}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`,
      ],
      ["HTTP/1.1 without Host", `GET /d HTTP/1.1\r\n\r\n`],
      ["two Host headers", `GET /d HTTP/1.1\r\n${HOST}${HOST}\r\n`],
      ["a bad chunk size", `POST /d HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\n\r\nzz\r\n`],
      [
        "chunk data without CRLF",
        `POST /d HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n`,
      ],
      ["a space in the target", `GET /a b HTTP/1.1\r\n${HOST}\r\n`],
    ];
    for (const [name, bytes] of refusedDirectly) {
      it(`the recording upstream refuses ${name} (so the gateway cannot pass it unseen)`, async () => {
        const mark = U.requests().length;
        const before = U.violations().length;
        const talk = await converse(U.port, bytes);
        same(
          { closed: talk.closed, answers: talk.responses.length, requests: U.requests().length },
          { closed: true, answers: 0, requests: mark },
        );
        assert.equal(U.violations().length, before + 1);
      });
    }

    it("a plain GET through the gateway reaches the upstream as sent and is answered", async () => {
      await assertServed(`GET /plain?q=1 HTTP/1.1\r\n${HOST}Connection: close\r\n\r\n`, {
        answers: (m) => [`200 seen ${m + 1}: GET /plain?q=1`],
        upstream: ["GET /plain?q=1"],
        closed: true,
      });
    });
  });

  describe("1. Content-Length and Transfer-Encoding together → 400, closed", () => {
    it("Content-Length then Transfer-Encoding (CL.TE)", async () => {
      await assertRefused(
        `POST /cl-te HTTP/1.1\r\n${HOST}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`,
        400,
        "bad_request",
      );
    });
    it("Transfer-Encoding then Content-Length (TE.CL)", async () => {
      await assertRefused(
        `POST /te-cl HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n` +
          `${SMUGGLED.length.toString(16)}\r\n${SMUGGLED}\r\n0\r\n\r\n`,
        400,
        "bad_request",
      );
    });
  });

  describe("2. more than one Content-Length, or one that is not 1*DIGIT → 400, closed", () => {
    it("two equal Content-Lengths", async () => {
      await assertRefused(
        `POST /dup-cl HTTP/1.1\r\n${HOST}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello`,
        400,
        "bad_request",
      );
    });
    it("two different Content-Lengths (0, then the smuggled request's length)", async () => {
      await assertRefused(
        `POST /dup-cl-diff HTTP/1.1\r\n${HOST}Content-Length: 0\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`,
        400,
        "bad_request",
      );
    });
    for (
      const [value, body] of [["+2", "ok"], ["1,1", "o"], [" ", ""], ["0x2", "ok"], ["-1", ""]]
    ) {
      it(`Content-Length: ${JSON.stringify(value)}`, async () => {
        await assertRefused(
          `POST /cl-value HTTP/1.1\r\n${HOST}Content-Length:${value}\r\n\r\n${body}`,
          400,
          "bad_request",
        );
      });
    }
  });

  describe("3. Transfer-Encoding other than chunked → 501, closed; on HTTP/1.0 → 400, closed", () => {
    const body = "5\r\nhello\r\n0\r\n\r\n";
    for (const coding of ["chunked, identity", "gzip, chunked", "identity"]) {
      it(`Transfer-Encoding: ${coding}`, async () => {
        await assertRefused(
          `POST /te HTTP/1.1\r\n${HOST}Transfer-Encoding: ${coding}\r\n\r\n${body}${SMUGGLED}`,
          501,
          "unsupported_transfer_coding",
        );
      });
    }
    it("Transfer-Encoding: chunked on HTTP/1.0", async () => {
      await assertRefused(
        `POST /te10 HTTP/1.0\r\n${HOST}Transfer-Encoding: chunked\r\n\r\n${body}`,
        400,
        "bad_request",
      );
    });
    it("`Transfer-Encoding:  Chunked ` (case and surrounding whitespace) is chunked: the body arrives byte-exact", async () => {
      const [request] = await assertServed(
        `POST /te-case HTTP/1.1\r\n${HOST}Transfer-Encoding:  Chunked \r\nConnection: close\r\n\r\n${body}`,
        {
          answers: (m) => [`200 seen ${m + 1}: POST /te-case`],
          upstream: ['POST /te-case body="hello"'],
          closed: true,
        },
      );
      assert.notEqual(request.framing, "none");
    });
  });

  describe("4. malformed heads → 400, closed", () => {
    const cases: [string, string][] = [
      ["obs-fold (SP)", `GET /fold HTTP/1.1\r\n${HOST}X-A: a\r\n b\r\n\r\n`],
      ["obs-fold (HTAB)", `GET /fold HTTP/1.1\r\n${HOST}X-A: a\r\n\tb\r\n\r\n`],
      ["obs-fold on the first header line", `GET /fold HTTP/1.1\r\n X-A: a\r\n${HOST}\r\n`],
      ["bare LF ending the request line", `GET /lf HTTP/1.1\n${HOST}\r\n`],
      ["bare LF ending a header line", `GET /lf HTTP/1.1\r\n${HOST}X-A: a\nX-B: b\r\n\r\n`],
      // A lenient parser ends the head at "\r\n\n" and reads "X-C: c" as the next request; a
      // strict one finds the bare LF inside a head that ends at the "\r\n\r\n".
      ["bare LF as an empty line", `GET /lf HTTP/1.1\r\n${HOST}\nX-C: c\r\n\r\n`],
      ["space before the colon", `GET /name HTTP/1.1\r\n${HOST}X-A : a\r\n\r\n`],
      [
        "space before the colon of Transfer-Encoding",
        `POST /name HTTP/1.1\r\n${HOST}Content-Length: 5\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n`,
      ],
      ["a non-token header name", `GET /name HTTP/1.1\r\n${HOST}X(A): a\r\n\r\n`],
      ["a header line without a colon", `GET /name HTTP/1.1\r\n${HOST}X-A a\r\n\r\n`],
      ["NUL in a header value", `GET /value HTTP/1.1\r\n${HOST}X-A: a\x00b\r\n\r\n`],
      ["CR in a header value", `GET /value HTTP/1.1\r\n${HOST}X-A: a\rb\r\n\r\n`],
      ["two spaces in the request line", `GET  /line HTTP/1.1\r\n${HOST}\r\n`],
      ["a version other than HTTP/1.0|1.1", `GET /line HTTP/1.2\r\n${HOST}\r\n`],
      ["a lower-case version", `GET /line http/1.1\r\n${HOST}\r\n`],
      ["no version", `GET /line\r\n${HOST}\r\n`],
      ["a fourth request-line part", `GET /line HTTP/1.1 extra\r\n${HOST}\r\n`],
      ["a target that is not origin-form", `GET line HTTP/1.1\r\n${HOST}\r\n`],
      ["a space in the target", `GET /a b HTTP/1.1\r\n${HOST}\r\n`],
      ["a control character in the target", `GET /a\x01b HTTP/1.1\r\n${HOST}\r\n`],
      ["HTAB in the target", `GET /a\tb HTTP/1.1\r\n${HOST}\r\n`],
      ["DEL in the target", `GET /a\x7fb HTTP/1.1\r\n${HOST}\r\n`],
    ];
    for (const [name, bytes] of cases) {
      it(name, async () => {
        await assertRefused(Buffer.from(bytes, "latin1"), 400, "bad_request");
      });
    }
    it("absolute-form is accepted", async () => {
      const mark = U.requests().length;
      const { verdict } = await run(
        `GET http://gw.test/abs HTTP/1.1\r\n${HOST}Connection: close\r\n\r\n`,
      );
      // What the upstream gets as the target is not specified: origin-form or the URL as sent.
      const target = U.requests()[mark]?.target;
      assert.ok(target === "/abs" || target === "http://gw.test/abs", `target ${target}`);
      same(verdict.answers, [`200 seen ${mark + 1}: GET ${target}`]);
      same(verdict.violations, []);
      assert.equal(verdict.upstream.length, 2);
    });
    it("OPTIONS * is accepted (not 400)", async () => {
      const { verdict } = await run(`OPTIONS * HTTP/1.1\r\n${HOST}Connection: close\r\n\r\n`);
      assert.equal(verdict.answers.length, 1, JSON.stringify(verdict));
      assert.doesNotMatch(verdict.answers[0], /^400 /);
      same(verdict.violations, []);
      // Forwarded or answered by the gateway itself (not specified); never as something else.
      assert.ok(
        verdict.upstream.length === 1 || verdict.upstream[0] === "OPTIONS *",
        JSON.stringify(verdict.upstream),
      );
    });
  });

  describe("5. Host", () => {
    it("two Host headers on HTTP/1.1 → 400", async () => {
      const { verdict, probeLine } = await run(
        `GET /hosts HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\nConnection: close\r\n\r\n`,
      );
      same([verdict.answers, verdict.upstream, verdict.violations], [
        ["400 bad_request"],
        [probeLine],
        [],
      ]);
      assert.match(verdict.probe, /^200 /);
    });
    it("two equal Host headers on HTTP/1.0 → 400", async () => {
      const { verdict, probeLine } = await run(
        `GET /hosts HTTP/1.0\r\nHost: a.test\r\nHost: a.test\r\n\r\n`,
      );
      same([verdict.answers, verdict.upstream, verdict.violations], [
        ["400 bad_request"],
        [probeLine],
        [],
      ]);
    });
    it("HTTP/1.1 without Host → 400", async () => {
      const { verdict, probeLine } = await run(
        `GET /no-host HTTP/1.1\r\nConnection: close\r\n\r\n`,
      );
      same([verdict.answers, verdict.upstream, verdict.violations], [
        ["400 bad_request"],
        [probeLine],
        [],
      ]);
    });
    it("HTTP/1.0 without Host is served (the host-less route)", async () => {
      await assertServed(`GET /no-host-10 HTTP/1.0\r\n\r\n`, {
        answers: (m) => [`200 seen ${m + 1}: GET /no-host-10`],
        upstream: ["GET /no-host-10"],
        closed: true,
      });
    });
  });

  describe("6. GET or HEAD with a body → 400, closed, never forwarded", () => {
    it("GET + Content-Length: 22 + 22 bytes, then a second request: nothing reaches the upstream", async () => {
      assert.equal(SMUGGLED_LINE.length, 22);
      await assertRefused(
        `GET /get-body HTTP/1.1\r\n${HOST}Content-Length: 22\r\n\r\n${SMUGGLED_LINE}\r\n${HOST}\r\n${SMUGGLED}`,
        400,
        "bad_request",
      );
    });
    it("GET + Content-Length: 22, the body in a later write", async () => {
      await assertRefused(
        [
          `GET /get-body HTTP/1.1\r\n${HOST}Content-Length: 22\r\n\r\n`,
          `${SMUGGLED_LINE}${SMUGGLED}`,
        ],
        400,
        "bad_request",
      );
    });
    it("HEAD + Content-Length: 22 + 22 bytes, then a second request", async () => {
      await assertRefused(
        `HEAD /head-body HTTP/1.1\r\n${HOST}Content-Length: 22\r\n\r\n${SMUGGLED_LINE}\r\n${HOST}\r\n${SMUGGLED}`,
        400,
        "bad_request",
        [true],
      );
    });
    it("GET + Transfer-Encoding: chunked", async () => {
      await assertRefused(
        `GET /get-chunked HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`,
        400,
        "bad_request",
      );
    });
    it("a second client's request, sent while the first client's connection is still open, gets its own answer and nothing smuggled reaches the upstream", async () => {
      const mark = U.requests().length;
      const violationsBefore = U.violations().length;
      const first = converse(
        port,
        `GET /get-body HTTP/1.1\r\n${HOST}Content-Length: 22\r\n\r\n${SMUGGLED_LINE}\r\n${HOST}\r\n${SMUGGLED}`,
        { timeoutMs: 4000 },
      );
      // The second client starts once the first one's bytes are in (or at the latest when the
      // gateway has forwarded something of them): the gateway's pooled upstream connection is
      // where a left-behind body or a smuggled request would be.
      await eventually(() => U.requests().length > mark, 300, "first client's bytes").catch(
        () => {},
      );
      const second = converse(port, `GET /second HTTP/1.1\r\n${HOST}Connection: close\r\n\r\n`, {
        timeoutMs: 4000,
      });
      const [a, b] = await Promise.all([first, second]);
      await quiet();
      same(
        {
          first: answered(a),
          firstClosed: a.closed,
          second: answered(b).map((s) => s.replace(/seen \d+/, "seen N")),
          upstream: U.requests().slice(mark).map(seen),
          violations: U.violations().slice(violationsBefore),
        },
        {
          first: ["400 bad_request"],
          firstClosed: true,
          second: ["200 seen N: GET /second"],
          upstream: ["GET /second"],
          violations: [],
        },
      );
    });
    it("GET + Content-Length: 0 is fine", async () => {
      await assertServed(
        `GET /get-zero HTTP/1.1\r\n${HOST}Content-Length: 0\r\nConnection: close\r\n\r\n`,
        {
          answers: (m) => [`200 seen ${m + 1}: GET /get-zero`],
          upstream: ["GET /get-zero"],
          closed: true,
        },
      );
    });
  });

  describe("7. malformed chunked body → 400, closed, the upstream connection destroyed", () => {
    // [name, valid start, malformed rest]: the rest goes once the upstream has the request's
    // first bytes (or after 1.5 s), so an upstream connection is mid-body when the error comes.
    // A null start: head and malformed body in one write.
    const cases: [string, string | null, string][] = [
      ["a bad size line", "5\r\nhello\r\n", "zz\r\nmore\r\n0\r\n\r\n"],
      ["a bad size line, in one write with the head", null, "5\r\nhello\r\nzz\r\n0\r\n\r\n"],
      ["a bad size line as the first chunk", "", "zz\r\nmore\r\n0\r\n\r\n"],
      ["no CRLF after the chunk data", "5\r\nhello\r\n", "3\r\nabcXX\r\n0\r\n\r\n"],
      ["a size over 2^53", "5\r\nhello\r\n", "20000000000001\r\nhello\r\n0\r\n\r\n"],
      ["a size line with a space inside", "5\r\nhello\r\n", "5 5\r\nhello\r\n0\r\n\r\n"],
    ];
    for (const [name, start, rest] of cases) {
      it(name, async () => {
        const target = `/chunk-bad-${name.replace(/[^a-z0-9]+/gi, "-")}`;
        const carrying = () => U.connections.filter((c) => c.bytes().includes(target));
        const head = `POST ${target} HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\n\r\n`;
        const { verdict, probeLine, probeAnswer } = await run(
          start === null ? `${head}${rest}${SMUGGLED}` : [
            `${head}${start}`,
            () => eventually(() => carrying().length > 0, 1500, "the POST upstream"),
            `${rest}${SMUGGLED}`,
          ],
        );
        same(verdict, {
          answers: ["400 bad_request"],
          rest: "",
          closed: true,
          // The POST may have started upstream, but never completed there.
          upstream: [probeLine],
          violations: [],
          probe: probeAnswer(0),
        });
        // Every upstream connection that carried any of it is closed, and nothing came on it
        // after the POST began (never pooled: the probe would have been read as its body).
        const carried = carrying();
        await eventually(() => carried.every((c) => c.closed), 3000, "upstream connections closed")
          .catch(() => {});
        same(
          carried.map((c) => {
            const start = c.bytes().indexOf(`POST ${target}`);
            return { closed: c.closed, after: c.requests.filter((r) => r.at > start).map(seen) };
          }),
          carried.map(() => ({ closed: true, after: [] })),
        );
      });
    }
  });

  describe("8. pipelining: answered in order, each exactly once", () => {
    it("3 pipelined GETs in one write (the first answered last by the upstream)", async () => {
      const mark = U.requests().length;
      const violationsBefore = U.violations().length;
      const paths = ["/pipe-1?delay=400", "/pipe-2?delay=150", "/pipe-3"];
      const bytes = paths.map((p, i) =>
        `GET ${p} HTTP/1.1\r\n${HOST}${i === 2 ? "Connection: close\r\n" : ""}\r\n`
      ).join("");
      const talk = await converse(port, bytes, { timeoutMs: 6000 });
      await quiet();
      const upstream = U.requests().slice(mark);
      // Each answer is the one for its own request (the upstream numbers them as they arrive).
      const expected = paths.map((p) => {
        const n = upstream.find((r) => r.target === p)?.n;
        return `200 seen ${n}: GET ${p}`;
      });
      same(
        { answers: answered(talk), closed: talk.closed, rest: talk.rest.toString("latin1") },
        { answers: expected, closed: true, rest: "" },
      );
      same(upstream.map(seen).sort(), paths.map((p) => `GET ${p}`).sort());
      same(U.violations().slice(violationsBefore), []);
    });
    it("pipelined POST (Content-Length), GET, POST (chunked): each body arrives byte-exact, answers in order", async () => {
      const chunkedBody = "3\r\nabc\r\n4\r\n\r\n0\r\r\n0\r\n\r\n";
      try {
        await assertServed(
          `POST /pp-1 HTTP/1.1\r\n${HOST}Content-Length: 5\r\n\r\nhello` +
            `GET /pp-2 HTTP/1.1\r\n${HOST}\r\n` +
            `POST /pp-3 HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunkedBody}`,
          {
            answers: (m) => [
              `200 seen ${m + 1}: POST /pp-1`,
              `200 seen ${m + 2}: GET /pp-2`,
              `200 seen ${m + 3}: POST /pp-3`,
            ],
            upstream: ['POST /pp-1 body="hello"', "GET /pp-2", 'POST /pp-3 body="abc\\r\\n0\\r"'],
            closed: true,
          },
        );
      } finally {
        // Stragglers of a failed case must not land in the next one.
        await quiet();
      }
    });
  });

  describe("8. pipelining with HEAD", () => {
    it("HEAD, GET, HEAD pipelined: the HEAD answers carry no body, each answer is its own request's", async () => {
      const mark = U.requests().length;
      const talk = await converse(
        port,
        `HEAD /ph-1 HTTP/1.1\r\n${HOST}\r\nGET /ph-2 HTTP/1.1\r\n${HOST}\r\n` +
          `HEAD /ph-3 HTTP/1.1\r\n${HOST}Connection: close\r\n\r\n`,
        { heads: [true, false, true] },
      );
      await quiet();
      const upstream = U.requests().slice(mark);
      // X-Seen names the upstream request an answer belongs to.
      const n = (target: string) => upstream.find((r) => r.target === target)?.n;
      same(
        {
          answers: talk.responses.map((r) => `${r.status} x-seen=${header(r, "x-seen")} ${r.body}`),
          rest: talk.rest.toString("latin1"),
          closed: talk.closed,
          upstream: upstream.map(seen).sort(),
        },
        {
          answers: [
            `200 x-seen=${n("/ph-1")} `,
            `200 x-seen=${n("/ph-2")} seen ${n("/ph-2")}: GET /ph-2`,
            `200 x-seen=${n("/ph-3")} `,
          ],
          rest: "",
          closed: true,
          upstream: ["GET /ph-2", "HEAD /ph-1", "HEAD /ph-3"],
        },
      );
    });
  });

  describe("8. pipelining behind a malformed request", () => {
    it("a good request, then a malformed one: the first answered, then 400 and close; nothing more reaches the upstream", async () => {
      const mark = U.requests().length;
      const { verdict, probeLine, probeAnswer } = await run(
        `GET /pipe-ok HTTP/1.1\r\n${HOST}\r\n` +
          `GET /pipe-bad HTTP/1.1\r\n${HOST}X-A: a\r\n b\r\n\r\n${SMUGGLED}`,
      );
      same(verdict, {
        answers: [`200 seen ${mark + 1}: GET /pipe-ok`, "400 bad_request"],
        rest: "",
        closed: true,
        upstream: ["GET /pipe-ok", probeLine],
        violations: [],
        probe: probeAnswer(1),
      });
    });
  });

  describe("valid bodies arrive byte-exact, framed by the gateway", () => {
    it("a Content-Length POST: exactly its bytes, with exactly that Content-Length", async () => {
      const body = `hello\r\n\r\n${IN_BODY}`;
      const [request] = await assertServed(
        `POST /cl-post HTTP/1.1\r\n${HOST}Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
        {
          answers: (m) => [`200 seen ${m + 1}: POST /cl-post`],
          upstream: [`POST /cl-post body=${JSON.stringify(body)}`],
          closed: true,
        },
      );
      assert.equal(request.framing, "length");
      same(
        request.headers.filter(([n]) => n.toLowerCase() === "content-length").map(([, v]) => v),
        [String(body.length)],
      );
    });
    it("Content-Length: 007 (1*DIGIT with leading zeros) is 7", async () => {
      await assertServed(
        `POST /cl-zeros HTTP/1.1\r\n${HOST}Content-Length: 007\r\nConnection: close\r\n\r\nsevenB!`,
        {
          answers: (m) => [`200 seen ${m + 1}: POST /cl-zeros`],
          upstream: ['POST /cl-zeros body="sevenB!"'],
          closed: true,
        },
      );
    });
    it("a 1 MiB Content-Length POST, written in pieces cut mid-body: exactly its bytes", async () => {
      const body = PATTERN.subarray(0, 1 << 20);
      const head =
        `POST /big-cl HTTP/1.1\r\n${HOST}Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
      await assertServed(
        [
          Buffer.concat([Buffer.from(head), body.subarray(0, 1)]),
          body.subarray(1, 65_537),
          body.subarray(65_537),
        ],
        {
          answers: (m) => [`200 seen ${m + 1}: POST /big-cl`],
          upstream: [`POST /big-cl body=${bodyText(body)}`],
          closed: true,
        },
      );
    });
    it("a 1 MiB chunked POST of uneven chunks, written in pieces that cut through size lines and CRLFs", async () => {
      const body = PATTERN.subarray(0, 1 << 20);
      const parts: Buffer[] = [];
      const sizes = [1, 1000, 4096, 2, 65_536, 333];
      for (let at = 0, i = 0; at < body.length; i++) {
        const size = Math.min(sizes[i % sizes.length], body.length - at);
        parts.push(
          Buffer.from(`${size.toString(16)}\r\n`),
          body.subarray(at, at + size),
          Buffer.from("\r\n"),
        );
        at += size;
      }
      parts.push(Buffer.from("0\r\n\r\n"));
      const wire = Buffer.concat([
        Buffer.from(
          `POST /big-chunked HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n`,
        ),
        ...parts,
      ]);
      const writes: Buffer[] = [];
      for (let at = 0; at < wire.length; at += 7777) writes.push(wire.subarray(at, at + 7777));
      await assertServed(writes, {
        answers: (m) => [`200 seen ${m + 1}: POST /big-chunked`],
        upstream: [`POST /big-chunked body=${bodyText(body)}`],
        closed: true,
      });
    });
    it("a chunked POST and a GET behind it, written one byte at a time", async () => {
      const wire = `POST /bytewise HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\n\r\n` +
        `3\r\nabc\r\n2\r\n\r\n\r\n0\r\n\r\n` +
        `GET /bytewise-2 HTTP/1.1\r\n${HOST}Connection: close\r\n\r\n`;
      await assertServed([...wire], {
        answers: (m) => [`200 seen ${m + 1}: POST /bytewise`, `200 seen ${m + 2}: GET /bytewise-2`],
        upstream: ['POST /bytewise body="abc\\r\\n"', "GET /bytewise-2"],
        closed: true,
      });
    });
    it("a chunked POST (in several writes, data that looks like framing): exactly its bytes", async () => {
      const pieces = ["abc", `0\r\n\r\n${IN_BODY}`, "\x00\xff\r\n"];
      const wire = pieces.map((p) => `${Buffer.byteLength(p, "latin1").toString(16)}\r\n${p}\r\n`);
      const [request] = await assertServed(
        [
          `POST /chunked-post HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n`,
          ...wire.map((w) => Buffer.from(w, "latin1")),
          "0\r\n\r\n",
        ],
        {
          answers: (m) => [`200 seen ${m + 1}: POST /chunked-post`],
          upstream: [`POST /chunked-post body=${JSON.stringify(pieces.join(""))}`],
          closed: true,
        },
      );
      assert.notEqual(request.framing, "none");
    });
  });

  describe("over the whole file", () => {
    it("no byte of a /SMUGGLED request ever reached the upstream, in any case above", async () => {
      await quiet();
      const leaked = U.connections
        .filter((c) => c.bytes().includes("/SMUGGLED"))
        .map((c) => {
          const text = c.bytes().toString("latin1");
          const at = text.indexOf("/SMUGGLED");
          return `connection ${c.id}: …${
            JSON.stringify(text.slice(Math.max(0, at - 300), at + 60))
          }`;
        });
      same(leaked, []);
    });
  });
});
