/**
 * Header stickiness for clients without cookies (`header = "X-Session-Id"`): the server for a
 * header value is chosen by weighted rendezvous (highest-random-weight) hashing over the servers
 * that may take it. Every instance computes the same choice with no shared state, and a server
 * that goes away moves only the values it had: each value's ranking of the others is unchanged.
 *
 * The score of server s for value v is `-weight(s) / ln(u)` with `u` in (0, 1) from a 53-bit
 * hash of (v, s.id) (Schindelhauer and Schomaker's weighted form): a server's share is its weight's
 * share. A choice looks at every server of the upstream (O(servers)): only requests that carry
 * the header and no valid cookie pay it (docs/benchmarks.md).
 *
 * @module
 */

/** A server as rendezvous hashing sees it. */
export interface RendezvousServer {
  readonly id: string;
  readonly weight: number;
}

/** 64-bit FNV-1a of `text` (UTF-16 code units), as two 32-bit halves mixed into 53 bits. */
function hash53(text: string, seedHi: number, seedLo: number): number {
  let hi = seedHi | 0;
  let lo = seedLo | 0;
  for (let i = 0; i < text.length; i++) {
    lo ^= text.charCodeAt(i);
    // Multiply (hi, lo) by the FNV prime 2^40 + 0x1b3, in 32-bit halves.
    const loMul = Math.imul(lo, 0x1b3);
    const carry = Math.floor(((lo >>> 0) * 0x1b3) / 0x100000000);
    hi = (Math.imul(hi, 0x1b3) + Math.imul(lo, 0x100) + carry) | 0;
    lo = loMul;
  }
  // Final avalanche (murmur3's fmix32 on each half, crossed) so that nearby inputs spread.
  hi = fmix(hi ^ (lo >>> 7));
  lo = fmix(lo ^ Math.imul(hi, 0x9e3779b1));
  return (hi >>> 0) * 0x200000 + (lo >>> 11);
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

const TWO_53 = 2 ** 53;

/** The offset basis of 64-bit FNV-1a, as halves. */
const BASIS_HI = 0xcbf29ce4;
const BASIS_LO = 0x84222325;

/**
 * The server `value` goes to among `servers` that `usable` accepts; undefined when none is.
 *
 * @example
 * ```ts
 * import { rendezvousPick } from "./rendezvous.ts";
 * const servers = [{ id: "a", weight: 1 }, { id: "b", weight: 1 }, { id: "c", weight: 1 }];
 * const first = rendezvousPick("session-42", servers, () => true)!;
 * // Without another server, the value stays where it was.
 * const other = servers.find((s) => s !== first)!;
 * if (rendezvousPick("session-42", servers, (s) => s !== other) !== first) throw new Error();
 * ```
 */
export function rendezvousPick<S extends RendezvousServer>(
  value: string,
  servers: readonly S[],
  usable: (server: S) => boolean,
): S | undefined {
  const valueHash = hash53(value, BASIS_HI, BASIS_LO);
  // The value's hash seeds each server's: one pass over the id per server.
  const seedHi = Math.floor(valueHash / 0x100000000) ^ 0x5bd1e995;
  const seedLo = valueHash % 0x100000000;
  let best: S | undefined;
  let bestScore = -Infinity;
  for (const server of servers) {
    if (!usable(server)) continue;
    const u = (hash53(server.id, seedHi, seedLo) + 0.5) / TWO_53;
    const score = -server.weight / Math.log(u);
    if (score > bestScore) {
      bestScore = score;
      best = server;
    }
  }
  return best;
}
