/**
 * What the gateway decided and did for one request, handed to `GatewayOptions.onRequestDone`
 * when its response is ready (the head; the body may still be streaming): the facts the access
 * log and the metrics are made of, from the proxy's side.
 *
 * @module
 */
import type { StickyOutcome } from "../sticky/resolve.ts";
import type { FailureCode } from "./errors.ts";

/** One request's routing facts. */
export interface RequestRecord {
  /** The route's upstream; undefined when no route matched. */
  readonly upstream: string | undefined;
  /** `Server.id` of the server that answered; undefined when none did. */
  readonly server: string | undefined;
  /** Servers the request was sent to (0 when it was answered before reaching one). */
  readonly attempts: number;
  readonly sticky: StickyOutcome;
  /** The status given to the client. */
  readonly status: number;
  /** The catalogue code of the gateway's own answer; undefined when the upstream's went out. */
  readonly error: FailureCode | undefined;
}

/** Receives each request's record (the coming access log and metrics; tests). */
export type RequestDone = (record: RequestRecord) => void;
