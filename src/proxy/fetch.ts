/**
 * The runtime's `fetch` as an upstream transport: the fallback behind `upstream_client = "fetch"`.
 *
 * Limits, compared with `http1.ts`: Deno's fetch always decompresses, so on Deno this transport
 * asks upstreams for `identity` (clients get uncompressed bodies); connect and read time share
 * one timer (connect_timeout + read_timeout), so a slow connect is a 504 that is not retried.
 *
 * @module
 */
import type { Server } from "../config/mod.ts";
import { toUpstreamError, UpstreamError } from "./errors.ts";
import type { HeaderPair } from "./headers.ts";
import type { Transport, UpstreamLimits, UpstreamRequest, UpstreamResponse } from "./transport.ts";

export interface FetchTransportOptions {
  /** Runtime-specific RequestInit members (Deno: an `allowHost` client; Bun: `decompress: false`). */
  readonly init: Record<string, unknown>;
  /** True where fetch cannot be stopped from decompressing (Deno). */
  readonly decompresses: boolean;
}

export class FetchTransport implements Transport {
  constructor(readonly options: FetchTransportOptions) {}

  async send(
    server: Server,
    request: UpstreamRequest,
    limits: UpstreamLimits,
  ): Promise<UpstreamResponse> {
    const { host, port } = server.address;
    const url = `http://${host.includes(":") ? `[${host}]` : host}:${port}${request.target}`;
    const headers = new Headers();
    for (const [name, value] of request.headers) headers.append(name, value);
    if (this.options.decompresses) headers.set("accept-encoding", "identity");
    const timeout = AbortSignal.timeout(limits.connectTimeoutMs + limits.readTimeoutMs);
    const signal = request.signal === undefined
      ? timeout
      : AbortSignal.any([request.signal, timeout]);
    let response: Response;
    try {
      response = await fetch(url, {
        ...this.options.init,
        method: request.method,
        headers,
        body: request.body,
        redirect: "manual",
        signal,
        duplex: "half",
      } as RequestInit);
    } catch (error) {
      if (timeout.aborted) throw new UpstreamError("read_timeout");
      // fetch does not say whether it got as far as connecting; "refused" means it did not.
      const mapped = toUpstreamError(error, "connect");
      throw mapped.code === "connect_refused" ? mapped : toUpstreamError(error, "response");
    }
    const pairs: HeaderPair[] = [];
    for (const [name, value] of response.headers) {
      if (name !== "set-cookie") pairs.push([name, value]);
    }
    for (const value of response.headers.getSetCookie()) pairs.push(["set-cookie", value]);
    return {
      status: response.status,
      statusText: response.statusText,
      headers: pairs,
      body: response.body,
    };
  }

  close(): void {}
}
