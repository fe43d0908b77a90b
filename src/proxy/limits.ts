/**
 * The gateway's own limits on what clients send and on streams where nothing moves:
 *
 * - `client_max_header_size`: the request head (request line and header lines) → 431;
 * - `client_max_body_size`: a declared Content-Length over it → 413 before any upstream is
 *   contacted; a chunked body is counted as it streams and cut when it passes the limit;
 * - `idle_timeout`: a request or response body with no bytes moving for that long is cut (the
 *   upstream connection is closed). Waiting for the response head is `read_timeout`'s business.
 *
 * Everything here works on Web streams, so it is the same on Deno and Bun and for both upstream
 * clients.
 *
 * @module
 */
import type { Retirement } from "./retirement.ts";
import type { ServerSettings } from "../config/mod.ts";
import type { FailureCode } from "./errors.ts";
import type { HeaderPair } from "./headers.ts";
import type { ProxyRequest } from "../runtime/contracts.ts";

/**
 * The request head's size: the request line plus one `name: value\r\n` line per header, counted
 * on the headers as they go upstream (the runtime has joined repeated ones, hop-by-hop ones are
 * gone, X-Forwarded-* are the gateway's): within about a hundred bytes of what the client sent,
 * and measured on the array the proxy builds anyway (iterating a Deno `Headers` costs more).
 */
export function requestHeadSize(
  method: string,
  target: string,
  headers: readonly HeaderPair[],
): number {
  // "GET /target HTTP/1.1\r\n" and the empty line that ends the head.
  let size = method.length + target.length + 14;
  for (const pair of headers) size += pair[0].length + pair[1].length + 4;
  return size;
}

/**
 * The limit a request breaks, checked before anything is sent upstream: its head (as the
 * `headers` to forward) or its declared body length. Undefined when it breaks none.
 */
export function refuseRequest(
  request: ProxyRequest,
  target: string,
  headers: readonly HeaderPair[],
  server: ServerSettings,
): FailureCode | undefined {
  if (requestHeadSize(request.method, target, headers) > server.clientMaxHeaderSize) {
    return "headers_too_large";
  }
  const max = server.clientMaxBodySize;
  if (max > 0 && request.body !== null) {
    const length = request.headers.get("content-length");
    if (length !== null && Number(length) > max) return "body_too_large";
  }
  return undefined;
}

/**
 * A timer that fires once nothing has happened for `ms` while `active()` says the side it
 * watches is being waited for. One `setTimeout` per period at most (re-armed only when it
 * expires early), so marking activity costs a `Date.now()`; while inactive no timer is pending
 * (the next `touch()` arms it again), so an abandoned one leaves nothing behind.
 */
export class IdleTimer {
  #last = Date.now();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  constructor(
    readonly ms: number,
    readonly onIdle: () => void,
    readonly active: () => boolean = () => true,
  ) {
    this.#timer = setTimeout(this.#check, ms);
  }

  /** Bytes moved (or a wait began): the idle time starts again. */
  touch(): void {
    this.#last = Date.now();
    if (this.#timer === undefined && !this.#stopped) this.#timer = setTimeout(this.#check, this.ms);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #check = (): void => {
    this.#timer = undefined;
    if (this.#stopped || !this.active()) return;
    const idle = Date.now() - this.#last;
    if (idle >= this.ms) {
      this.#stopped = true;
      this.onIdle();
    } else {
      this.#timer = setTimeout(this.#check, this.ms - idle);
    }
  };
}

/** Why a guarded stream was cut. */
export class LimitError extends Error {
  constructor(readonly code: FailureCode) {
    super(code);
    this.name = "LimitError";
  }
}

/**
 * The response body as the client gets it, cut when no byte has moved for `idleMs` (0 = never):
 * neither from the upstream (a stream that went silent) nor to the client (one that stopped
 * reading). Cutting cancels the upstream body, which closes the upstream connection.
 *
 * @param onIdle told which side was silent, for the log
 * @param onEnd told once how many bytes went through, when the body ended, broke or was cut or
 *   cancelled (the request's record)
 * @param retirement its generation's, under `reload_max_age`: the body is cut when it runs too
 *   long after a reload
 */
export function guardResponseBody(
  body: ReadableStream<Uint8Array>,
  idleMs: number,
  onIdle: (silent: "upstream" | "client") => void,
  onEnd?: (bytes: number) => void,
  retirement?: Retirement,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let reading = false;
  let ended = false;
  let bytes = 0;
  let timer: IdleTimer | undefined;
  let release: (() => void) | undefined;
  const finish = () => {
    ended = true;
    timer?.stop();
    release?.();
    onEnd?.(bytes);
  };
  return new ReadableStream<Uint8Array>({
    start(controller) {
      release = retirement?.add(() => {
        if (ended) return;
        finish();
        reader.cancel(new Error("reload_max_age")).catch(() => {});
        controller.error();
      });
      if (idleMs === 0) return;
      timer = new IdleTimer(idleMs, () => {
        if (ended) return;
        finish();
        const code = reading ? "upstream_idle" : "client_timeout";
        reader.cancel(new LimitError(code)).catch(() => {});
        // No reason: the runtimes then abort the client connection without printing a stack
        // (Bun prints any error a body stream ends with; Deno passes it to onError).
        controller.error();
        onIdle(reading ? "upstream" : "client");
      });
    },
    async pull(controller) {
      timer?.touch();
      reading = true;
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await reader.read();
      } catch (error) {
        if (!ended) {
          finish();
          controller.error(error);
        }
        return;
      }
      reading = false;
      if (ended) return;
      timer?.touch();
      if (result.done) {
        finish();
        controller.close();
      } else {
        bytes += result.value.length;
        controller.enqueue(result.value);
      }
    },
    cancel(reason) {
      if (!ended) finish();
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/** A client's request body on its way upstream, counted and watched. */
export interface GuardedBody {
  readonly body: ReadableStream<Uint8Array>;
  /** Why the body was cut by the gateway or broke on the client's side; undefined if it did not. */
  failure(): FailureCode | undefined;
  /** True while the upstream client waits for the next piece from the client. */
  waitingForClient(): boolean;
}

/** The request body to send upstream: guarded when a limit applies, else as it is. */
export function guardedRequestBody(
  request: ProxyRequest,
  server: ServerSettings,
): GuardedBody | undefined {
  const body = request.body;
  if (body === null) return undefined;
  // With a Content-Length the runtime ends the body there, and refuseRequest checked it.
  const max = request.headers.has("content-length") ? 0 : server.clientMaxBodySize;
  if (max === 0 && server.idleTimeoutMs === 0) return undefined;
  return guardRequestBody(body, max, server.idleTimeoutMs);
}

/**
 * What a failed upstream exchange really was when the client's side caused it (gone, body too
 * large or broken, silent mid-upload), or undefined when it is the upstream's failure. Client
 * failures are answered as such and never count against the upstream server.
 */
export function clientFailure(
  request: ProxyRequest,
  guarded: GuardedBody | undefined,
  code: FailureCode,
): FailureCode | undefined {
  if (request.signal.aborted) return "client_closed";
  const failure = guarded?.failure();
  if (failure !== undefined) return failure;
  if (code === "read_timeout" && guarded?.waitingForClient()) return "client_timeout";
  if (code === "client_closed") return code;
  return undefined;
}

/**
 * Wraps a request body: more than `maxBytes` (0 = no limit) cuts it as `body_too_large`; no
 * byte from the client for `idleMs` (0 = never) while the upstream waits for more cuts it as
 * `client_timeout`; a body the runtime cannot read (bad chunked framing) is `bad_request`.
 * Cutting errors the stream, which makes the upstream client close the upstream connection.
 */
export function guardRequestBody(
  body: ReadableStream<Uint8Array>,
  maxBytes: number,
  idleMs: number,
): GuardedBody {
  const reader = body.getReader();
  let failure: FailureCode | undefined;
  let received = 0;
  let reading = false;
  let ended = false;
  let timer: IdleTimer | undefined;
  const cut = (controller: ReadableStreamDefaultController<Uint8Array>, code: FailureCode) => {
    ended = true;
    failure = code;
    timer?.stop();
    reader.cancel(new LimitError(code)).catch(() => {});
    controller.error(new LimitError(code));
  };
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      // Made on the first read: a body nobody reads leaves no timer behind.
      if (idleMs > 0 && timer === undefined) {
        timer = new IdleTimer(idleMs, () => {
          if (!ended) cut(controller, "client_timeout");
        }, () => reading);
      }
      reading = true;
      timer?.touch();
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await reader.read();
      } catch (error) {
        if (!ended) {
          ended = true;
          failure = "bad_request";
          timer?.stop();
          controller.error(error);
        }
        return;
      }
      reading = false;
      if (ended) return;
      timer?.touch();
      if (result.done) {
        ended = true;
        timer?.stop();
        return controller.close();
      }
      received += result.value.length;
      if (maxBytes > 0 && received > maxBytes) return cut(controller, "body_too_large");
      controller.enqueue(result.value);
    },
    cancel(reason) {
      ended = true;
      timer?.stop();
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
  return { body: stream, failure: () => failure, waitingForClient: () => reading };
}

/** `body` as it is, telling `timer` of each piece read from it (a long upload keeps moving). */
export function touchingBody(
  body: ReadableStream<Uint8Array>,
  timer: { touch(): void },
): ReadableStream<Uint8Array> {
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        timer.touch();
        controller.enqueue(chunk);
      },
    }),
  );
}
