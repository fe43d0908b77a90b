/**
 * The runtime's `fetch` as an upstream transport: the fallback behind `upstream_client = "fetch"`.
 *
 * Limits, compared with `http1.ts`: Deno's fetch always decompresses, so on Deno this transport
 * asks upstreams for `identity` (clients get uncompressed bodies); connect and read time share
 * one timer (connect_timeout + read_timeout), so a slow connect is a 504 that is not retried.
 *
 * @module
 */
import type { GatewayConfig, Server, UpstreamTls } from "../config/mod.ts";
import type { ConfigProblem } from "../config/problems.ts";
import { toUpstreamError, UpstreamError } from "./errors.ts";
import { fetchConnectFailure } from "../runtime/shared/fetch_errors.ts";
import type { HeaderPair } from "./headers.ts";
import { IdleTimer, touchingBody } from "./limits.ts";
import type { Transport, UpstreamLimits, UpstreamRequest, UpstreamResponse } from "./transport.ts";

export interface FetchTransportOptions {
  /** Runtime-specific RequestInit members (Deno: an `allowHost` client; Bun: `decompress: false`). */
  readonly init: Record<string, unknown>;
  /** True where fetch cannot be stopped from decompressing (Deno). */
  readonly decompresses: boolean;
  /** RequestInit members for a TLS upstream (its CA, verification, SNI); made once per upstream. */
  readonly tlsInit?: (tls: UpstreamTls) => Record<string, unknown>;
  /** TLS keys this runtime's fetch cannot honour, with the reason (Deno: insecure, sni). */
  readonly tlsUnsupported?: Partial<Record<"insecure" | "sni", string>>;
}

/** The TLS keys of `config` this runtime's fetch cannot honour, as config problems. */
export function unsupportedFetchTls(
  config: GatewayConfig,
  options: FetchTransportOptions,
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const reasons = options.tlsUnsupported ?? {};
  for (const upstream of config.upstreams.values()) {
    const tls = upstream.tls;
    if (tls?.insecure && reasons.insecure !== undefined) {
      problems.push({ path: `upstreams.${upstream.name}.insecure`, message: reasons.insecure });
    }
    if (tls?.sni !== undefined && reasons.sni !== undefined) {
      problems.push({ path: `upstreams.${upstream.name}.sni`, message: reasons.sni });
    }
  }
  return problems;
}

export class FetchTransport implements Transport {
  readonly #tlsInits = new Map<UpstreamTls, Record<string, unknown>>();

  constructor(readonly options: FetchTransportOptions) {}

  #init(tls: UpstreamTls | undefined): Record<string, unknown> {
    if (tls === undefined) return this.options.init;
    let init = this.#tlsInits.get(tls);
    if (init === undefined) {
      init = this.options.tlsInit?.(tls) ?? this.options.init;
      this.#tlsInits.set(tls, init);
    }
    return init;
  }

  async send(
    server: Server,
    request: UpstreamRequest,
    limits: UpstreamLimits,
  ): Promise<UpstreamResponse> {
    const { host, port } = server.address;
    const scheme = server.tls === undefined ? "http" : "https";
    const url = `${scheme}://${host.includes(":") ? `[${host}]` : host}:${port}${request.target}`;
    const headers = new Headers();
    for (const [name, value] of request.headers) headers.append(name, value);
    if (this.options.decompresses) headers.set("accept-encoding", "identity");
    // One timer for connect and read (fetch does not tell them apart), for the response head
    // only: a streamed body may take as long as it moves (idle_timeout watches it). Each piece
    // of request body read starts it again, as in http1.ts.
    const abort = new AbortController();
    let timedOut = false;
    const timer = new IdleTimer(limits.connectTimeoutMs + limits.readTimeoutMs, () => {
      timedOut = true;
      abort.abort();
    });
    const onClientGone = () => abort.abort();
    const clientSignal = request.client?.signal;
    clientSignal?.addEventListener("abort", onClientGone, { once: true });
    if (clientSignal?.aborted) onClientGone();
    let response: Response;
    try {
      response = await fetch(url, {
        ...this.#init(server.tls),
        method: request.method,
        headers,
        body: request.body && touchingBody(request.body.stream(), timer),
        redirect: "manual",
        signal: abort.signal,
        duplex: "half",
      } as RequestInit);
    } catch (error) {
      clientSignal?.removeEventListener("abort", onClientGone);
      if (clientSignal?.aborted) throw new UpstreamError("client_closed");
      if (timedOut) throw new UpstreamError("read_timeout");
      // fetch does not say whether it got as far as connecting: the seam's best-effort reading
      // (a refusal, a failed handshake) says it did not; anything else may have reached it.
      throw toUpstreamError(fetchConnectFailure(error) ?? error, "response");
    } finally {
      timer.stop();
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

  close(): void {
    // Deno's per-CA HTTP clients hold connections until closed.
    for (const init of this.#tlsInits.values()) {
      if (init !== this.options.init) (init.client as { close?(): void } | undefined)?.close?.();
    }
    this.#tlsInits.clear();
  }
}
