/**
 * WebSocket handshakes on Bun's TLS listener (tls_server.ts): `node:http2`'s server hands an
 * HTTP/1.1 request with `Upgrade` over as its raw TLS socket (the `upgrade` event). The gateway's
 * handler sees it as any request, with a {@link ClientInfo.upgrade} that checks the handshake
 * (front/upgrade.ts) and makes the server end of the WebSocket (front/websocket.ts, the same as
 * on plain HTTP) over the socket. When the handler returns that upgrade's response, the 101 is
 * written and the WebSocket opens; any other answer is written as a plain HTTP/1.1 response and
 * the connection closed. Part of the runtime seam, so `any` stands for node's request object.
 *
 * @module
 */
// deno-lint-ignore-file no-explicit-any
import type { Socket } from "node:net";
import type {
  ClientInfo,
  Handler,
  ProxyRequest,
  UpgradeOptions,
  WebSocketLike,
} from "../contracts.ts";
import { failureResponse } from "../../proxy/errors.ts";
import { NodeByteStream } from "../shared/node_socket.ts";
import { toResponse } from "../shared/answer.ts";
import { handshakeKey, switchingHead } from "../front/upgrade.ts";
import { createServerWebSocket, type ServerWebSocket } from "../front/websocket.ts";
import {
  CHUNKED_BODY,
  encodeChunk,
  encodeHead,
  LAST_CHUNK,
  LENGTH,
  responseFraming,
  responseHead,
} from "../front/response.ts";
import { requestHeaders, requestUrl } from "./node_exchange.ts";

/** How long a refused handshake's connection may stay half-closed for the client to read. */
const LINGER_MS = 2000;

interface Accepted {
  readonly key: string;
  readonly options: UpgradeOptions;
  readonly socket: ServerWebSocket;
  readonly response: Response;
}

/**
 * Serves one `upgrade` event: the handler's answer, then the WebSocket or the closed connection.
 *
 * @param head bytes the client sent after its handshake
 * @param fallbackAuthority the listener's address, for an HTTP/1.0 request without Host
 */
export async function serveUpgrade(
  req: any,
  socket: Socket,
  head: Uint8Array,
  handler: Handler,
  remoteAddress: string,
  fallbackAuthority: string,
): Promise<void> {
  // Read from now on (queued with backpressure): the client may send frames right away.
  const stream = Object.assign(new NodeByteStream(socket), { closeWrite: () => socket.end() });
  const url = requestUrl(req, fallbackAuthority);
  let accepted: Accepted | undefined;
  let response: Response;
  try {
    if (url === null) throw new RangeError("not a URL");
    const request = new Request(url, {
      method: req.method,
      headers: requestHeaders(req.rawHeaders),
    });
    const client: ClientInfo = {
      remoteAddress,
      protocol: "https",
      upgrade(upgrading: ProxyRequest, options: UpgradeOptions) {
        if (upgrading !== request) throw new TypeError("not a request of this connection");
        const key = handshakeKey(request);
        if (accepted !== undefined) throw new TypeError("already upgraded");
        const ws = createServerWebSocket(stream, new Uint8Array(head));
        accepted = { key, options, socket: ws, response: new Response(null, { status: 200 }) };
        return { socket: ws as WebSocketLike, response: accepted.response };
      },
    };
    response = await respond(handler, request, client);
  } catch {
    response = failureResponse("bad_request");
  }
  try {
    if (accepted !== undefined && response === accepted.response) {
      await stream.write(encodeHead(switchingHead(accepted.key, accepted.options)));
      accepted.socket.open();
      return;
    }
    await writePlain(stream, response);
    socket.end();
    setTimeout(() => socket.destroy(), LINGER_MS).unref?.();
  } catch {
    socket.destroy();
  }
}

/** The handler's answer; a handler that throws is the gateway's fault: 500, logged. */
export async function respond(
  handler: Handler,
  request: Request,
  client: ClientInfo,
): Promise<Response> {
  try {
    return toResponse(await handler(request, client));
  } catch (error) {
    console.error(
      `sticky-gateway: internal error: ${error instanceof Error ? error.stack : error}`,
    );
    return failureResponse("internal_error");
  }
}

/** A response on the raw connection (HTTP/1.1, `connection: close`), its body streamed. */
async function writePlain(stream: NodeByteStream, response: Response): Promise<void> {
  const body = response.body;
  const framing = responseFraming(
    "GET",
    1,
    response.status,
    response.headers.get("content-length"),
    body !== null,
  );
  await stream.write(encodeHead(responseHead(response, framing, true, false)));
  if (body === null) return;
  if (framing.kind !== LENGTH && framing.kind !== CHUNKED_BODY) {
    await body.cancel();
    return;
  }
  let left = framing.length;
  for await (const chunk of body) {
    if (framing.kind === CHUNKED_BODY) {
      if (chunk.length > 0) await stream.write(encodeChunk(chunk));
      continue;
    }
    const piece = chunk.length > left ? chunk.subarray(0, left) : chunk;
    await stream.write(piece);
    left -= piece.length;
    if (left === 0) break;
  }
  if (framing.kind === CHUNKED_BODY) await stream.write(LAST_CHUNK);
}
