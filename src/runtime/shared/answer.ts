/**
 * A handler's {@link Answer} as a Web `Response`, for the listeners that hand one to the runtime
 * (TLS: `Deno.serve`, Bun's node:http2 adapter). They do not ask for parts (ClientInfo.readsParts
 * is unset), so this only makes a Response when a handler answers with parts anyway.
 *
 * @module
 */
import type { Answer } from "../contracts.ts";

/**
 * The Response for `answer`.
 *
 * @example
 * ```ts
 * const response = toResponse({ status: 204, statusText: "", headers: [["x-a", "1"]], body: null });
 * response.status; // 204
 * ```
 */
export function toResponse(answer: Answer): Response {
  if (answer instanceof Response) return answer;
  const body = answer.body as BodyInit | null;
  const response = answer.statusText === ""
    ? new Response(body, { status: answer.status })
    : new Response(body, { status: answer.status, statusText: answer.statusText });
  for (const [name, value] of answer.headers) response.headers.append(name, value);
  return response;
}
