/**
 * Client of the "streams" phase (bench/phases/concurrent_streams.ts): `count` downloads of the
 * same file at once, each on its own HTTP/1.1 connection (node:net, no HTTP library: the bytes
 * counted are the bytes the proxy sent). Every download must answer 200 with
 * `Content-Length: bytes`, an `X-Upstream` among the allowed ports, exactly `bytes` body bytes and
 * the file's zlib CRC-32. Prints one line, `RESULT {json}` ({@link ManyResult}); the wall time runs
 * from the first connect to the last byte of the last download.
 *
 *   bun bench/clients/many_downloads.ts HOST PORT PATH COUNT BYTES CRC32 PORT,PORT,PORT TIMEOUT_S
 *
 * @module
 */
import net from "node:net";
import process from "node:process";
import zlib from "node:zlib";

const crc32 = (zlib as unknown as { crc32(data: Uint8Array, value?: number): number }).crc32;

/** What the client prints after `RESULT `. */
export interface ManyResult {
  count: number;
  /** Downloads that matched in every respect. */
  good: number;
  /** Body bytes received over all downloads. */
  bytes: number;
  /** First connect to last byte (s). */
  seconds: number;
  mibps: number;
  /** Downloads per upstream port (X-Upstream). */
  upstreams: Record<string, number>;
  /** The first few problems (one per failed download). */
  errors: string[];
}

interface One {
  ok: boolean;
  bytes: number;
  upstream?: string;
  error?: string;
}

const HEAD_END = Buffer.from("\r\n\r\n");

/** One download on its own connection; resolves (never rejects) when done, failed or timed out. */
function download(
  host: string,
  port: number,
  path: string,
  expect: { bytes: number; crc: number; upstreams: Set<string> },
  deadline: number,
): Promise<One> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    let head: Buffer | undefined = Buffer.alloc(0);
    let length = -1;
    let bytes = 0;
    let crc = 0;
    let upstream: string | undefined;
    let settled = false;
    const timer = setTimeout(
      () => finish(`timed out after ${bytes} body bytes`),
      deadline - Date.now(),
    );
    function finish(error?: string): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error === undefined && crc !== expect.crc) {
        error = `CRC-32 ${crc.toString(16)}, expected ${expect.crc.toString(16)}`;
      }
      resolve({ ok: error === undefined, bytes, upstream, error });
    }
    function body(chunk: Uint8Array): void {
      bytes += chunk.length;
      if (bytes > length) return finish(`more than Content-Length ${length} bytes`);
      crc = crc32(chunk, crc);
      if (bytes === length) finish();
    }
    socket.on("connect", () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUser-Agent: bench\r\n\r\n`);
    });
    socket.on("data", (chunk: Buffer) => {
      if (head === undefined) return body(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf(HEAD_END);
      if (end < 0) {
        if (head.length > 65536) finish("response head over 64 KiB");
        return;
      }
      const problem = checkHead(head.subarray(0, end).toString("latin1"), expect);
      if (typeof problem === "string") return finish(problem);
      length = problem.length;
      upstream = problem.upstream;
      const rest = head.subarray(end + 4);
      head = undefined;
      if (rest.length > 0) body(rest);
    });
    socket.on("error", (e: Error) => finish(`socket: ${e.message}`));
    socket.on("close", () => finish(`closed after ${bytes} of ${length} body bytes`));
  });
}

/** The status line and headers: an error, or the body's length and the serving port. */
function checkHead(
  text: string,
  expect: { bytes: number; upstreams: Set<string> },
): string | { length: number; upstream: string } {
  const [status, ...lines] = text.split("\r\n");
  if (!/^HTTP\/1\.1 200 /.test(status)) return `status line ${JSON.stringify(status)}`;
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(":");
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  const length = Number(headers.get("content-length"));
  if (length !== expect.bytes) {
    return `Content-Length ${headers.get("content-length")} (transfer-encoding ${
      headers.get("transfer-encoding")
    }), expected ${expect.bytes}`;
  }
  const upstream = headers.get("x-upstream") ?? "";
  if (!expect.upstreams.has(upstream)) return `X-Upstream ${JSON.stringify(upstream)}`;
  return { length, upstream };
}

async function main(): Promise<void> {
  const [host, port, path, count, bytes, crc, ports, timeout] = process.argv.slice(2);
  const expect = {
    bytes: Number(bytes),
    crc: Number(crc),
    upstreams: new Set(ports.split(",")),
  };
  const deadline = Date.now() + Number(timeout) * 1000;
  const t0 = performance.now();
  const all = await Promise.all(
    Array.from(
      { length: Number(count) },
      () => download(host, Number(port), path, expect, deadline),
    ),
  );
  const seconds = (performance.now() - t0) / 1000;
  const total = all.reduce((sum, one) => sum + one.bytes, 0);
  const upstreams: Record<string, number> = {};
  for (const one of all) {
    if (one.upstream !== undefined) upstreams[one.upstream] = (upstreams[one.upstream] ?? 0) + 1;
  }
  const result: ManyResult = {
    count: all.length,
    good: all.filter((one) => one.ok).length,
    bytes: total,
    seconds,
    mibps: total / (1 << 20) / seconds,
    upstreams,
    errors: all.filter((one) => !one.ok).slice(0, 5).map((one) => one.error ?? "?"),
  };
  console.log(`RESULT ${JSON.stringify(result)}`);
}

await main();
