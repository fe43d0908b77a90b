/**
 * The runtime seam's entry: picks the running runtime's implementation of {@link Runtime}
 * (contracts.ts). The only code that knows Deno from Bun is in `src/runtime/`.
 *
 * `any` is allowed here and only here: the runtimes' globals are typed by neither side's types.
 *
 * @module
 */
// deno-lint-ignore-file no-explicit-any
import type { UpstreamTls } from "../config/mod.ts";
import type { FetchTransportOptions } from "../proxy/fetch.ts";
import type { Handler, ListenOptions, ProxyRequest, Runtime } from "./contracts.ts";
export type { Handler, Listener, ListenOptions, Runtime } from "./contracts.ts";
import { connectBunSocket } from "./bun/socket.ts";
import { connectDenoSocket } from "./deno/socket.ts";
import { bunFetchTls, connectTlsSocket, denoFetchTls } from "./shared/tls.ts";
import { listenDenoTls } from "./deno/tls_listener.ts";
import { listenBunTls } from "./bun/tls_server.ts";
import { denoFrontListen } from "./deno/front_socket.ts";
import { bunFrontListen } from "./bun/front_socket.ts";
import { type FrontOptions, listenFront } from "./front/server.ts";
import type { FrontListen } from "./front/socket.ts";
import { failureResponse } from "../proxy/errors.ts";

const g = globalThis as any;

export function currentRuntime(): Runtime {
  if (g.Bun !== undefined) return bunRuntime(g.Bun);
  if (g.Deno !== undefined) return denoRuntime(g.Deno);
  throw new Error("sticky-gateway runs on Deno or Bun; start it with `deno run` or `bun`");
}

function internalError(error: unknown): Response {
  // A response body the proxy cut on purpose (idle_timeout) ends with no reason: logged already.
  if (error === undefined) return new Response(null, { status: 500 });
  console.error(`sticky-gateway: internal error: ${error instanceof Error ? error.stack : error}`);
  return failureResponse("internal_error");
}

/** The front's settings; the defaults are the config's (`[server]`). */
function frontOptions(options: ListenOptions): FrontOptions {
  return {
    clientHeaderTimeoutMs: options.clientHeaderTimeoutMs ?? 60_000,
    keepaliveTimeoutMs: options.keepaliveTimeoutMs ?? 75_000,
    maxConnections: options.maxConnections ?? 10_000,
    clientMaxHeaderSize: options.clientMaxHeaderSize ?? 32 * 1024,
    reusePort: options.reusePort ?? false,
    onClientConnection: options.onClientConnection,
  };
}

/** Plain-HTTP listeners: our own HTTP/1.1 server on the runtime's raw sockets (front/). */
function listenPlain(
  listen: FrontListen,
  address: { host: string; port: number },
  handler: Handler,
  options: ListenOptions,
) {
  return listenFront(listen, address.host, address.port, handler, frontOptions(options));
}

/**
 * What the front refuses and the runtimes' servers (TLS listeners) let through: a Host header
 * with a comma (Bun merges two Host headers into one). A GET or HEAD that declares a body the
 * runtime dropped is refused by the gateway itself (frameBody in src/proxy/gateway.ts).
 */
function refuseOnTls(request: ProxyRequest): Response | undefined {
  return request.headers.get("host")?.includes(",") ? failureResponse("bad_request") : undefined;
}

function denoRuntime(Deno: any): Runtime {
  return {
    name: "deno",
    version: Deno.version.deno,
    listen(address, handler, options = {}) {
      if (options.tls === undefined) {
        return listenPlain(denoFrontListen(Deno), address, handler, options);
      }
      // Not Deno.serve with cert/key: its shutdown() closes idle keep-alive connections at once
      // and it cannot stop accepting alone (deno/tls_listener.ts).
      return listenDenoTls(Deno, address, handler, {
        tls: options.tls,
        // Not counted in `client_connections` (README: TLS listeners do not report), as on Bun.
        front: { ...frontOptions(options), onClientConnection: undefined },
        h2Handler: (request, client) => refuseOnTls(request) ?? handler(request, client),
        onError: internalError,
      });
    },
    connect: (host: string, port: number, tls?: UpstreamTls) =>
      tls === undefined ? connectDenoSocket(Deno, host, port) : connectTlsSocket(host, port, tls),
    fetchOptions: denoFetchOptions(Deno),
    stdioWrite: (fd: 1 | 2, bytes: Uint8Array) =>
      (fd === 1 ? Deno.stdout : Deno.stderr).write(bytes),
  };
}

function denoFetchOptions(Deno: any): FetchTransportOptions {
  const init = { client: Deno.createHttpClient({ allowHost: true }) };
  return { init, decompresses: true, ...denoFetchTls(Deno, init) };
}

function bunFetchOptions(): FetchTransportOptions {
  const init = { decompress: false };
  return { init, decompresses: false, ...bunFetchTls(init) };
}

function bunRuntime(Bun: any): Runtime {
  return {
    name: "bun",
    version: Bun.version,
    async listen(address, handler, options = {}) {
      if (options.tls === undefined) {
        return listenPlain(bunFrontListen(Bun), address, handler, options);
      }
      // node:http2, not Bun.serve: Bun.serve drops the Content-Length of streamed bodies
      // (oven-sh/bun#10507); see bun/tls_server.ts.
      return listenBunTls(
        address,
        (request, client) => refuseOnTls(request) ?? handler(request, client),
        options,
      );
    },
    connect: (host: string, port: number, tls?: UpstreamTls) =>
      tls === undefined ? connectBunSocket(Bun, host, port) : connectTlsSocket(host, port, tls),
    fetchOptions: bunFetchOptions(),
  };
}
