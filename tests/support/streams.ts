/**
 * Large bodies through the gateway, checked by sha256, and proof that they stream: the first
 * bytes cross the gateway while the sender is still holding back the rest.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { withTimeout } from "./gateway.ts";
import { type NamedUpstream, nextEvent, PATTERN, patternSha256 } from "./upstreams.ts";

const MIB = 1 << 20;

export interface Transfer {
  readonly bytes: number;
  readonly sha256: string;
  readonly expectedSha256: string;
}

/**
 * Downloads `mib` MiB from `upstream`'s /download through the gateway at `url`. The upstream
 * sends 64 KiB and then waits: the client must receive those bytes before the upstream is
 * released to send the rest (a gateway that buffers the body would time out here).
 */
export async function streamedDownload(
  url: string,
  upstream: NamedUpstream,
  mib: number,
  cookie?: string,
): Promise<Transfer> {
  const total = mib * MIB;
  const response = await withTimeout(
    fetch(`${url}/download?bytes=${total}&hold=1`, {
      headers: cookie === undefined ? {} : { cookie },
    }),
    5000,
    "response head while the upstream holds the body",
  );
  if (response.status !== 200 || response.body === null) {
    throw new Error(`download: status ${response.status}`);
  }
  const reader = response.body.getReader();
  const hash = createHash("sha256");
  let bytes = 0;
  // Before release: the first bytes must arrive while the upstream is still holding the rest.
  while (bytes < 1) {
    const { done, value } = await withTimeout(
      reader.read(),
      5000,
      "first body bytes while the upstream holds the rest",
    );
    if (done) throw new Error("download ended before the upstream was released");
    hash.update(value);
    bytes += value.length;
  }
  upstream.release();
  for (;;) {
    const { done, value } = await withTimeout(
      reader.read(),
      10_000,
      `download body after ${bytes} bytes`,
    );
    if (done) break;
    hash.update(value);
    bytes += value.length;
  }
  return { bytes, sha256: hash.digest("hex"), expectedSha256: patternSha256(total) };
}

/**
 * Uploads `mib` MiB (chunked: the length is not announced) to `upstream`'s /upload through the
 * gateway at `url`. The client sends the first MiB, then waits until the upstream reports that
 * body bytes arrived, and only then sends the rest (a gateway that buffers the body would make
 * this time out). Resolves with what the upstream counted and hashed.
 */
export async function streamedUpload(
  url: string,
  upstream: NamedUpstream,
  mib: number,
  cookie?: string,
): Promise<Transfer> {
  const started = nextEvent<number>(upstream.events, "body-start", 5000);
  started.catch(() => {}); // awaited in pull(); a timeout surfaces there
  let sent = 0;
  let waited = false;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (sent === 1 && !waited) {
        waited = true;
        await started;
      }
      if (sent === mib) return controller.close();
      controller.enqueue(new Uint8Array(PATTERN));
      sent++;
    },
  }, { highWaterMark: 0 });
  const init: RequestInit & { duplex: "half" } = {
    method: "POST",
    body,
    duplex: "half",
    headers: cookie === undefined ? {} : { cookie },
  };
  const response = await withTimeout(fetch(`${url}/upload`, init), 30_000, "streamed upload");
  const text = await response.text();
  if (response.status !== 200) throw new Error(`upload: status ${response.status}: ${text}`);
  const seen = JSON.parse(text) as { bytes: number; sha256: string };
  if (!waited) throw new Error("the upload finished without waiting for the upstream");
  return { bytes: seen.bytes, sha256: seen.sha256, expectedSha256: patternSha256(mib * MIB) };
}
