/**
 * Client of the "streams" phase (bench/phases/concurrent_streams.ts): slow readers beside a few
 * fast downloads, on Deno's pull-based sockets (`Deno.Conn.read`: nothing leaves the kernel's
 * receive buffer until the client asks for it, so a reader that does not read really stops the
 * flow and TCP's window pushes back on the proxy). Three intervals, each timed on the wall clock
 * (`Date.now()`, so the phase can line up its RSS samples):
 *
 * 1. warm-up: `fast` downloads in a loop, not measured;
 * 2. "none": the same fast downloads, no slow reader;
 * 3. "slow": the same fast downloads plus `slow` readers of the file, each paced to `rate` KiB/s
 *    by a token bucket (a read never asks for more than it may take), for the interval's seconds;
 *    then they close their connection mid-body.
 *
 * The fast downloads and the slow readers may ask for different files (the phase gives the slow
 * readers a larger one, so that a proxy without backpressure would have much more to hold). Every
 * response must be 200 with the file's `Content-Length` from one of the allowed ports (X-Upstream),
 * and every byte read is compared with the file at its offset (fast downloads: whole; slow readers:
 * the prefix they got). Prints one line, `RESULT {json}` ({@link SlowResult}).
 *
 *   deno run --allow-net --allow-read bench/clients/slow_readers.ts HOST PORT \
 *     FAST_PATH FAST_FILE SLOW_PATH SLOW_FILE SLOW FAST RATE_KIB WARMUP_S SECONDS PORT,PORT,PORT
 *
 * @module
 */

/** One slow reader's outcome. */
export interface SlowReader {
  bytes: number;
  /** bytes / seconds since connect (KiB/s). */
  kibps: number;
  /** Every byte read matched the file at its offset. */
  match: boolean;
  error?: string;
}

/** What the client prints after `RESULT `. */
export interface SlowResult {
  /** Interval starts and the end (ms since the epoch): warm-up, none, slow, end. */
  times: { warm: number; none: number; slow: number; end: number };
  slow: SlowReader[];
  /** Fast downloads completed whole and exact, per interval, and failed ones. */
  fast: { warm: number; none: number; slow: number; failed: number; mib: number };
  errors: string[];
}

const HEAD_END = new TextEncoder().encode("\r\n\r\n");

interface Target {
  host: string;
  port: number;
  path: string;
  file: Uint8Array;
  upstreams: Set<string>;
}

function indexOf(haystack: Uint8Array, needle: Uint8Array, length: number): number {
  outer: for (let i = 0; i + needle.length <= length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

function sameBytes(a: Uint8Array, file: Uint8Array, offset: number): boolean {
  if (offset + a.length > file.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== file[offset + i]) return false;
  return true;
}

/** A download in progress: the head checked, then body chunks compared with the file. */
class Download {
  bytes = 0;
  match = true;
  readonly t0 = Date.now();
  #conn: Deno.TcpConn | undefined;

  constructor(readonly target: Target) {}

  /** Connects, sends the GET and reads the head (the body bytes read with it are consumed). */
  async open(): Promise<void> {
    const t = this.target;
    this.#conn = await Deno.connect({ hostname: t.host, port: t.port });
    const request =
      `GET ${t.path} HTTP/1.1\r\nHost: ${t.host}:${t.port}\r\nUser-Agent: bench\r\n\r\n`;
    await this.#conn.write(new TextEncoder().encode(request));
    const buf = new Uint8Array(8192);
    let used = 0;
    for (;;) {
      const n = await this.#conn.read(buf.subarray(used));
      if (n === null) throw new Error("closed before the response head");
      used += n;
      const end = indexOf(buf, HEAD_END, used);
      if (end >= 0) {
        this.#checkHead(new TextDecoder().decode(buf.subarray(0, end)));
        this.#body(buf.subarray(end + 4, used));
        return;
      }
      if (used === buf.length) throw new Error("response head over 8 KiB");
    }
  }

  #checkHead(text: string): void {
    const [status, ...lines] = text.split("\r\n");
    if (!/^HTTP\/1\.1 200 /.test(status)) throw new Error(`status line ${status}`);
    const headers = new Map(lines.map((l) => {
      const c = l.indexOf(":");
      return [l.slice(0, c).trim().toLowerCase(), l.slice(c + 1).trim()];
    }));
    const length = headers.get("content-length");
    if (Number(length) !== this.target.file.length) {
      throw new Error(`Content-Length ${length}, expected ${this.target.file.length}`);
    }
    const up = headers.get("x-upstream") ?? "";
    if (!this.target.upstreams.has(up)) throw new Error(`X-Upstream ${JSON.stringify(up)}`);
  }

  #body(chunk: Uint8Array): void {
    if (!sameBytes(chunk, this.target.file, this.bytes)) this.match = false;
    this.bytes += chunk.length;
  }

  get done(): boolean {
    return this.bytes === this.target.file.length;
  }

  /** Reads at most `max` bytes (one read); false at end of stream. */
  async read(buf: Uint8Array, max: number): Promise<boolean> {
    const n = await this.#conn!.read(buf.subarray(0, Math.min(max, buf.length)));
    if (n === null) return false;
    this.#body(buf.subarray(0, n));
    return true;
  }

  close(): void {
    try {
      this.#conn?.close();
    } catch { /* closed */ }
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** One reader paced to `rate` bytes/s until `until`; closes mid-body. */
async function slowReader(target: Target, rate: number, until: number): Promise<SlowReader> {
  const d = new Download(target);
  const buf = new Uint8Array(16384);
  try {
    await d.open();
    const start = Date.now();
    while (Date.now() < until && !d.done) {
      const allowed = (rate * (Date.now() - start)) / 1000 - d.bytes;
      if (allowed < 1024) {
        await sleep(10);
        continue;
      }
      if (!(await d.read(buf, Math.floor(allowed)))) throw new Error("closed mid-body");
    }
    return finishSlow(d);
  } catch (error) {
    return { ...finishSlow(d), error: (error as Error).message };
  } finally {
    d.close();
  }
}

function finishSlow(d: Download): SlowReader {
  const seconds = (Date.now() - d.t0) / 1000;
  return { bytes: d.bytes, kibps: d.bytes / 1024 / seconds, match: d.match };
}

/** Whole downloads back to back until `until`; counts exact ones per interval by end time. */
async function fastLoop(
  target: Target,
  until: number,
  times: SlowResult["times"],
  out: SlowResult,
): Promise<void> {
  const buf = new Uint8Array(256 * 1024);
  while (Date.now() < until) {
    const d = new Download(target);
    try {
      await d.open();
      while (!d.done && Date.now() < until) {
        if (!(await d.read(buf, buf.length))) throw new Error("closed mid-body");
      }
      out.fast.mib += d.bytes / (1 << 20);
      if (!d.match) throw new Error("body differs from the file");
      if (!d.done) break; // cut by the end of the run
      const at = Date.now();
      if (at < times.none) out.fast.warm++;
      else if (at < times.slow) out.fast.none++;
      else out.fast.slow++;
    } catch (error) {
      out.fast.failed++;
      if (out.errors.length < 5) out.errors.push(`fast: ${(error as Error).message}`);
    } finally {
      d.close();
    }
  }
}

async function main(): Promise<void> {
  const [
    host,
    port,
    fastPath,
    fastFile,
    slowPath,
    slowFile,
    slow,
    fast,
    rateKiB,
    warmup,
    seconds,
    ports,
  ] = Deno.args;
  const target = async (path: string, file: string): Promise<Target> => ({
    host,
    port: Number(port),
    path,
    file: await Deno.readFile(file),
    upstreams: new Set(ports.split(",")),
  });
  const fastTarget = await target(fastPath, fastFile);
  const slowTarget = await target(slowPath, slowFile);
  const now = Date.now();
  const times = {
    warm: now,
    none: now + Number(warmup) * 1000,
    slow: now + (Number(warmup) + Number(seconds)) * 1000,
    end: now + (Number(warmup) + 2 * Number(seconds)) * 1000,
  };
  const out: SlowResult = {
    times,
    slow: [],
    fast: { warm: 0, none: 0, slow: 0, failed: 0, mib: 0 },
    errors: [],
  };
  const loops = Array.from(
    { length: Number(fast) },
    () => fastLoop(fastTarget, times.end, times, out),
  );
  await sleep(times.slow - Date.now());
  const readers = Array.from(
    { length: Number(slow) },
    () => slowReader(slowTarget, Number(rateKiB) * 1024, times.end),
  );
  out.slow = await Promise.all(readers);
  await Promise.all(loops);
  for (const r of out.slow) {
    if (r.error !== undefined && out.errors.length < 5) out.errors.push(`slow: ${r.error}`);
  }
  console.log(`RESULT ${JSON.stringify(out)}`);
}

await main();
