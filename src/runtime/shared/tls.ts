/**
 * TLS to upstreams in the runtime seam: the HTTP/1.1 client's TLS sockets, and the per-upstream
 * TLS options of each runtime's `fetch`. (The TLS listeners: deno/tls_listener.ts,
 * bun/tls_server.ts.)
 *
 * Upstream sockets use `node:tls` on both runtimes: it is the one API that has all of a CA per
 * connection, verification off (`insecure`; `Deno.connectTls` cannot turn it off) and an SNI
 * name other than the host connected to (`sni`), and it tells the TCP connect apart from the
 * handshake, so a refused port stays `connect_refused` and a bad certificate is `upstream_tls`.
 *
 * `any` stands for the runtimes' untyped globals, as in runtime.ts.
 *
 * @module
 */
// deno-lint-ignore-file no-explicit-any
import { connect as tlsConnect, type ConnectionOptions } from "node:tls";
import type { UpstreamTls } from "../../config/mod.ts";
import type { FetchTransportOptions } from "../../proxy/fetch.ts";
import { type ByteStream, ConnectFailure } from "../contracts.ts";
import { NodeByteStream, toConnectFailure } from "./node_socket.ts";

/**
 * A TLS connection to an upstream server for the HTTP/1.1 client: verified against `ca` (or
 * the runtime's roots), `sni` sent and checked when set (otherwise the host when it is a name),
 * ALPN `http/1.1` so that an h2-capable server answers in HTTP/1.1. Resolves after the
 * handshake; rejects with a ConnectFailure: of kind `tls` once the TCP connect succeeded,
 * classified by the error's code before.
 */
export function connectTlsSocket(
  host: string,
  port: number,
  tls: UpstreamTls,
): Promise<ByteStream> {
  const options: ConnectionOptions = {
    host,
    port,
    ALPNProtocols: ["http/1.1"],
    rejectUnauthorized: !tls.insecure,
  };
  if (tls.ca !== undefined) options.ca = tls.ca;
  if (tls.sni !== undefined) options.servername = tls.sni;
  return new Promise((resolve, reject) => {
    const socket = tlsConnect(options);
    let connected = false;
    const fail = (error: Error) => {
      socket.destroy();
      // Before the TCP connect: refused, unreachable...; after it: the TLS handshake failed.
      reject(
        connected
          ? new ConnectFailure("tls", describeTlsError(error), { cause: error })
          : toConnectFailure(error),
      );
    };
    const closed = () => fail(new Error("connection closed during the TLS handshake"));
    socket.once("connect", () => {
      connected = true;
      socket.setNoDelay(true);
    });
    socket.once("error", fail);
    socket.once("close", closed);
    socket.once("secureConnect", () => {
      socket.off("error", fail);
      socket.off("close", closed);
      resolve(new NodeByteStream(socket));
    });
  });
}

function describeTlsError(error: Error): string {
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" && !error.message.includes(code)
    ? `${code}: ${error.message}`
    : error.message;
}

const DENO_FETCH_CANNOT =
  `upstream_client = "fetch" on Deno cannot honour it; use upstream_client = "http1" (the default)`;

/** Deno's `fetch` per TLS upstream: a client trusting `ca` (in addition to Deno's roots). */
export function denoFetchTls(Deno: any, plainInit: Record<string, unknown>): Pick<
  FetchTransportOptions,
  "tlsInit" | "tlsUnsupported"
> {
  return {
    tlsInit: (tls) =>
      tls.ca === undefined
        ? plainInit
        : { client: Deno.createHttpClient({ allowHost: true, caCerts: [tls.ca] }) },
    tlsUnsupported: {
      insecure:
        `true is not possible with Deno's fetch, which always verifies certificates (there is no per-client switch); ${DENO_FETCH_CANNOT}, or give ca`,
      sni:
        `is not possible with Deno's fetch, which sends the URL's host as SNI; ${DENO_FETCH_CANNOT}`,
    },
  };
}

/** Bun's `fetch` per TLS upstream: its `tls` option has all of ca, verification and SNI. */
export function bunFetchTls(plainInit: Record<string, unknown>): Pick<
  FetchTransportOptions,
  "tlsInit" | "tlsUnsupported"
> {
  return {
    tlsInit: (tls) => {
      const options: Record<string, unknown> = { rejectUnauthorized: !tls.insecure };
      if (tls.ca !== undefined) options.ca = tls.ca;
      if (tls.sni !== undefined) options.serverName = tls.sni;
      return { ...plainInit, tls: options };
    },
  };
}
