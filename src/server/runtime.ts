/**
 * The runtime seam: the only module that knows Deno from Bun. Everything else sees Web
 * `Request`/`Response`, a {@link Connect} function and fetch options.
 *
 * `any` is allowed here and only here: the runtimes' globals are typed by neither side's types.
 *
 * @module
 */
// deno-lint-ignore-file no-explicit-any
import type { Address } from "../config/mod.ts";
import type { ClientInfo } from "../proxy/headers.ts";
import type { ByteStream, Connect } from "../proxy/http1.ts";
import type { FetchTransportOptions } from "../proxy/fetch.ts";
import { connectBunSocket } from "./bun_socket.ts";

export type Handler = (request: Request, client: ClientInfo) => Response | Promise<Response>;

export interface Listener {
  readonly host: string;
  readonly port: number;
  /** Stops accepting, lets in-flight requests finish for up to `graceMs`, then closes the rest. */
  stop(graceMs: number): Promise<void>;
}

export interface ListenOptions {
  /** SO_REUSEPORT, so that several threads can listen on one port (Linux). */
  readonly reusePort?: boolean;
}

export interface Runtime {
  readonly name: "deno" | "bun";
  readonly version: string;
  listen(address: Address, handler: Handler, options?: ListenOptions): Promise<Listener>;
  /** Socket for the HTTP/1.1 client. */
  readonly connect: Connect;
  readonly fetchOptions: FetchTransportOptions;
}

const g = globalThis as any;

export function currentRuntime(): Runtime {
  if (g.Bun !== undefined) return bunRuntime(g.Bun);
  if (g.Deno !== undefined) return denoRuntime(g.Deno);
  throw new Error("sticky-gateway runs on Deno or Bun; start it with `deno run` or `bun`");
}

function internalError(error: unknown): Response {
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
              handler(request, { remoteAddress: info.remoteAddr.hostname, protocol: "http" }),
          );
        } catch (error) {
          reject(error);
        }
      });
    },
    async connect(host: string, port: number): Promise<ByteStream> {
      const conn = await Deno.connect({ hostname: host, port });
      conn.setNoDelay(true);
      return {
        read: (into) => conn.read(into),
        async write(data) {
          for (let offset = 0; offset < data.length;) {
            offset += await conn.write(data.subarray(offset));
          }
        },
        close: () => conn.close(),
      };
    },
    fetchOptions: {
      init: { client: Deno.createHttpClient({ allowHost: true }) },
      decompresses: true,
    },
  };
}

function bunRuntime(Bun: any): Runtime {
  return {
    name: "bun",
    version: Bun.version,
    async listen(address, handler, options = {}) {
      const server = Bun.serve({
        hostname: address.host,
        port: address.port,
        reusePort: options.reusePort ?? false,
        // Bun closes connections idle for 10s by default, which would cut long polls and slow
        // upstreams short of read_timeout.
        idleTimeout: 0,
        // Bodies stream through; Bun's default 128 MiB cap would refuse large uploads.
        maxRequestBodySize: Number.MAX_SAFE_INTEGER,
        fetch(request: Request, srv: any) {
          return handler(request, {
            remoteAddress: srv.requestIP(request)?.address ?? "",
            protocol: "http",
          });
        },
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
    connect: (host: string, port: number) => connectBunSocket(Bun, host, port),
    fetchOptions: { init: { decompress: false }, decompresses: false },
  };
}
