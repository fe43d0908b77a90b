/**
 * WebSocket handshakes on the HTTP/1.1 front (RFC 6455 §4.2): the request checked, the 101 head
 * made. The connection itself switches over in connection.ts.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { ProxyRequest, UpgradeOptions } from "../contracts.ts";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** Whether a comma-separated header value lists `token` (case-insensitive). */
function hasToken(value: string | null, token: string): boolean {
  if (value === null) return false;
  for (const part of value.split(",")) if (part.trim().toLowerCase() === token) return true;
  return false;
}

/**
 * The client's `Sec-WebSocket-Key` when `request` is a valid handshake: GET, `Upgrade:
 * websocket`, `Connection: upgrade`, a key of 16 bytes in base64, version 13. Throws otherwise.
 */
export function handshakeKey(request: ProxyRequest): string {
  const headers = request.headers;
  if (request.method !== "GET") throw new TypeError("a WebSocket handshake is a GET");
  if (!hasToken(headers.get("upgrade"), "websocket")) {
    throw new TypeError("no `Upgrade: websocket` header");
  }
  if (!hasToken(headers.get("connection"), "upgrade")) {
    throw new TypeError("no `Connection: upgrade` header");
  }
  if (headers.get("sec-websocket-version") !== "13") {
    throw new TypeError("Sec-WebSocket-Version is not 13");
  }
  const key = headers.get("sec-websocket-key")?.trim();
  if (key === undefined || !/^[A-Za-z0-9+/]{22}==$/.test(key)) {
    throw new TypeError("no valid Sec-WebSocket-Key");
  }
  return key;
}

/** `Sec-WebSocket-Accept` for a key. */
export function acceptValue(key: string): string {
  return createHash("sha1").update(key + GUID).digest("base64");
}

/** The 101 head: Upgrade, Connection, Sec-WebSocket-Accept, the protocol, `options.headers`. */
export function switchingHead(key: string, options: UpgradeOptions): string {
  let head = "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n" +
    `sec-websocket-accept: ${acceptValue(key)}\r\n`;
  if (options.protocol !== undefined) head += `sec-websocket-protocol: ${options.protocol}\r\n`;
  for (const [name, value] of options.headers) {
    const lower = name.toLowerCase();
    if (lower === "upgrade" || lower === "connection" || lower === "sec-websocket-accept") continue;
    if (lower === "sec-websocket-protocol" && options.protocol !== undefined) continue;
    head += `${name}: ${value}\r\n`;
  }
  return head + "\r\n";
}
