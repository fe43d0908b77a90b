/**
 * Streams that must not wait (issue 3, point 3), with each upstream client: SSE events and
 * chunked pieces reach the client one by one while the upstream still holds the rest back;
 * `idle_timeout` cuts a stream that went silent but not one that keeps moving, nor a long poll
 * (waiting for the head is `read_timeout`'s business); `read_timeout` does not cut a response
 * body or an upload that outlives it while it moves; a long poll past Bun's 10 s default idle
 * timeout is answered.
 *
 * No assertion is about speed: "arrives while the upstream holds back" is proven by the
 * upstream counting what it has sent when the client sees each piece.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startGateway, stopAllGateways, withTimeout } from "../support/gateway.ts";
import { eventually, type RealtimeUpstream, startRealtimeUpstream } from "../support/realtime.ts";

/** Reads a body as text, piece by piece, on demand. */
class TextReader {
  text = "";
  done = false;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #decoder = new TextDecoder();

  constructor(body: ReadableStream<Uint8Array>) {
    this.#reader = body.getReader();
  }

  /** Reads until the text contains `marker` (rejects after `ms`, or if the body ends first). */
  async until(marker: string, ms = 5000): Promise<void> {
    await withTimeout(
      (async () => {
        while (!this.text.includes(marker)) {
          const { done, value } = await this.#reader.read();
          if (done) throw new Error(`body ended without ${JSON.stringify(marker)}: ${this.text}`);
          this.text += this.#decoder.decode(value, { stream: true });
        }
      })(),
      ms,
      `waiting for ${JSON.stringify(marker)} (got ${JSON.stringify(this.text)})`,
    );
  }

  /** Reads to the end; resolves to how it ended ("end" or the error). */
  async rest(ms = 10_000): Promise<"end" | Error> {
    return await withTimeout(
      (async () => {
        try {
          for (;;) {
            const { done, value } = await this.#reader.read();
            if (done) return "end" as const;
            this.text += this.#decoder.decode(value, { stream: true });
          }
        } catch (error) {
          return error as Error;
        }
      })(),
      ms,
      "the rest of the body",
    );
  }
}

const CLIENTS = ["http1", "fetch"] as const;

describe("streaming without waiting", () => {
  let U: RealtimeUpstream;
  const urls = new Map<string, { plain: string; idle: string; shortRead: string }>();
  let longPoll: Promise<{ status: number; text: string }>;
  before(async () => {
    U = await startRealtimeUpstream();
    const upstream = `[upstreams.app]\nservers = ["${U.address}"]\n`;
    // Started first and checked last, so that its 11 s overlap the other tests.
    const defaults = await startGateway(upstream);
    longPoll = fetch(`${defaults.url}/longpoll?ms=11000`).then(async (response) => ({
      status: response.status,
      text: await response.text(),
    }));
    longPoll.catch(() => {});
    for (const client of CLIENTS) {
      const server = `[server]\nupstream_client = "${client}"\n`;
      urls.set(client, {
        plain: (await startGateway(server + upstream)).url,
        idle: (await startGateway(`${server}idle_timeout = "2s"\n${upstream}`)).url,
        shortRead: (await startGateway(
          `${server}connect_timeout = "1s"\nread_timeout = "1s"\n${upstream}`,
        )).url,
      });
    }
  });
  after(async () => {
    await stopAllGateways();
    await U.close();
  });

  for (const client of CLIENTS) {
    it(`${client}: SSE events reach the client one by one while the upstream holds the next back`, async () => {
      const before = U.sent();
      const response = await withTimeout(
        fetch(`${urls.get(client)!.plain}/sse?events=3`),
        5000,
        "SSE response head",
      );
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("content-type"), "text/event-stream");
      const body = new TextReader(response.body!);
      await body.until("data: event 0\n\n");
      assert.equal(U.sent() - before, 1, "the upstream has sent only the first event");
      assert.ok(!body.text.includes("event 1"));
      U.release();
      await body.until("data: event 1\n\n");
      assert.equal(U.sent() - before, 2, "the upstream has sent two events");
      U.release();
      assert.equal(await body.rest(), "end");
      assert.equal(
        body.text,
        "id: 0\ndata: event 0\n\nid: 1\ndata: event 1\n\nid: 2\ndata: event 2\n\n",
      );
    });

    it(`${client}: chunked pieces reach the client before the upstream writes the next`, async () => {
      const before = U.sent();
      const response = await withTimeout(
        fetch(`${urls.get(client)!.plain}/chunks?pieces=4`),
        5000,
        "response head",
      );
      assert.equal(response.status, 200);
      const body = new TextReader(response.body!);
      for (let i = 0; i < 3; i++) {
        await body.until(`piece ${i}\n`);
        assert.equal(U.sent() - before, i + 1, `the upstream has written ${i + 1} piece(s)`);
        assert.ok(!body.text.includes(`piece ${i + 1}`));
        U.release();
      }
      assert.equal(await body.rest(), "end");
      assert.equal(body.text, "piece 0\npiece 1\npiece 2\npiece 3\n");
    });

    it(`${client}: idle_timeout = 2s cuts a stream silent for 3 s (the upstream sees the close), not one moving for 5 s, nor a long poll answered after 5 s`, async () => {
      const url = urls.get(client)!.idle;
      const closedBefore = U.closedEarly();
      const silent = (async () => {
        const response = await fetch(`${url}/silence?ms=3000`);
        const body = new TextReader(response.body!);
        await body.until("data: before\n\n");
        const ended = await body.rest();
        assert.ok(!body.text.includes("after"), `the stream was cut: ${body.text}`);
        // The client sees the cut as an error or an early end (the runtime decides which).
        assert.ok(ended === "end" || ended instanceof Error);
        await eventually(
          () => U.closedEarly() > closedBefore,
          5000,
          "the upstream sees the connection close before its answer is complete",
        );
      })();
      // Bun's own idleTimeout does not count bytes written: it would cut this one (~4 s).
      const moving = (async () => {
        const response = await fetch(`${url}/ticks?every=400&count=13`);
        const body = new TextReader(response.body!);
        assert.equal(await body.rest(), "end");
        assert.equal(body.text.match(/data: tick \d+\n\n/g)?.length, 13);
      })();
      const poll = (async () => {
        const response = await fetch(`${url}/longpoll?ms=5000`);
        assert.equal(response.status, 200);
        assert.equal(await response.text(), "done");
      })();
      await Promise.all([silent, moving, poll]);
    });

    it(`${client}: read_timeout = 1s bounds the wait for the head only: a 2.4 s response stream and a 2.4 s upload both reach their end`, async () => {
      const url = urls.get(client)!.shortRead;
      const download = (async () => {
        const response = await fetch(`${url}/ticks?every=300&count=8`);
        assert.equal(response.status, 200);
        const body = new TextReader(response.body!);
        assert.equal(await body.rest(), "end");
        assert.equal(body.text.match(/data: tick \d\n\n/g)?.length, 8);
      })();
      const upload = (async () => {
        let sent = 0;
        const body = new ReadableStream<Uint8Array>({
          async pull(controller) {
            if (sent === 8) return controller.close();
            await new Promise((resolve) => setTimeout(resolve, 300));
            controller.enqueue(new Uint8Array(1000));
            sent++;
          },
        }, { highWaterMark: 0 });
        const response = await fetch(`${url}/upload`, {
          method: "POST",
          body,
          duplex: "half",
        } as RequestInit);
        assert.equal(response.status, 200);
        assert.equal(await response.text(), "8000");
      })();
      await Promise.all([download, upload]);
    });
  }

  it("a long poll answered after 11 s (past Bun.serve's 10 s default idleTimeout) gets its answer", async () => {
    const answer = await withTimeout(longPoll, 15_000, "the long poll");
    assert.deepEqual(answer, { status: 200, text: "done" });
  });
});
