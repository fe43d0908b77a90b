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
import type { Runtime, UpgradeWebSocket } from "./contracts.ts";
export type { Handler, Listener, ListenOptions, Runtime } from "./contracts.ts";
import { connectBunSocket } from "./bun/socket.ts";
import { connectDenoSocket } from "./deno/socket.ts";
import { bunIdleSeconds, raiseBunHeadLimit } from "./bun/limits.ts";
import {
  bunFetchTls,
  bunServeTls,
  connectTlsSocket,
  denoFetchTls,
  denoServeTls,
} from "./shared/tls.ts";
import { BUN_WEBSOCKET_HANDLERS, bunUpgrade } from "./bun/websocket.ts";
import { denoUpgrade } from "./deno/websocket.ts";

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
  return new Response("500 Internal Server Error\n", {
    status: 500,
    headers: { "content-type": "text/plain" },
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function denoRuntime(Deno: any): Runtime {
  const upgrade = denoUpgrade(Deno);
  return {
    name: "deno",
    version: Deno.version.deno,
    listen(address, handler, options = {}) {
      return new Promise((resolve, reject) => {
        try {
          const server = Deno.serve(
            {
              hostname: address.host,
              port: address.port,
              reusePort: options.reusePort ?? false,
              ...denoServeTls(options.tls),
              onListen(addr: any) {
                resolve({
                  host: addr.hostname,
                  port: addr.port,
                  async stop(graceMs: number) {
                    await Promise.race([server.shutdown(), sleep(graceMs)]);
                  },
                });
              },
              onError: internalError,
            },
            (request: Request, info: any) =>
              handler(request, {
                remoteAddress: info.remoteAddr.hostname,
                protocol: options.tls === undefined ? "http" : "https",
                upgrade,
              }),
          );
        } catch (error) {
          reject(error);
        }
      });
    },
    connect: (host: string, port: number, tls?: UpstreamTls) =>
      tls === undefined ? connectDenoSocket(Deno, host, port) : connectTlsSocket(host, port, tls),
    fetchOptions: denoFetchOptions(Deno),
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
      const upgrade: UpgradeWebSocket = (request, upgradeOptions) =>
        bunUpgrade(server, request, upgradeOptions);
      if (options.clientMaxHeaderSize !== undefined) {
        await raiseBunHeadLimit(options.clientMaxHeaderSize);
      }
      const idleSeconds = bunIdleSeconds(options.idleTimeoutMs);
      const server = Bun.serve({
        hostname: address.host,
        port: address.port,
        reusePort: options.reusePort ?? false,
        // Between requests only (Bun's default 10s would cut long polls and SSE): each request
        // switches it off below, and the proxy watches in-flight exchanges (bun_limits.ts).
        idleTimeout: idleSeconds,
        // Bodies stream through; Bun's default 128 MiB cap would refuse large uploads.
        maxRequestBodySize: Number.MAX_SAFE_INTEGER,
        ...bunServeTls(options.tls),
        fetch(request: Request, srv: any) {
          if (idleSeconds !== 0) srv.timeout(request, 0);
          return handler(request, {
            remoteAddress: srv.requestIP(request)?.address ?? "",
            protocol: options.tls === undefined ? "http" : "https",
            upgrade,
          });
        },
        websocket: BUN_WEBSOCKET_HANDLERS,
        error: internalError,
      });
      return {
        host: address.host,
        port: server.port,
        async stop(graceMs: number) {
          await Promise.race([server.stop(false), sleep(graceMs)]);
          server.stop(true);
        },
      };
    },
    connect: (host: string, port: number, tls?: UpstreamTls) =>
      tls === undefined ? connectBunSocket(Bun, host, port) : connectTlsSocket(host, port, tls),
    fetchOptions: bunFetchOptions(),
  };
}
