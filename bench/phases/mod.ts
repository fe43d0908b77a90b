/**
 * The phases of `make bench` after the throughput and streaming rounds (contract:
 * bench/lib/phase.ts). Each lives in its own file here and exports `phase`; they run in the
 * order of PHASE_IDS. A phase whose file is missing is reported and skipped.
 *
 * @module
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Phase } from "../lib/phase.ts";

/** Every phase, in run order: TLS + HTTP/2, WebSockets, concurrent/slow streams, idle clients. */
export const PHASE_IDS = ["tls", "ws", "streams", "idle"] as const;

const FILES: Record<string, string> = {
  tls: "tls.ts",
  ws: "websocket.ts",
  streams: "concurrent_streams.ts",
  idle: "idle.ts",
};

/** Loads the phases named (unknown names are an error; a missing file is reported). */
export async function loadPhases(ids: readonly string[]): Promise<{
  phases: Phase[];
  missing: string[];
}> {
  const dir = path.dirname(fileURLToPath(import.meta.url));
  const phases: Phase[] = [];
  const missing: string[] = [];
  for (const id of ids) {
    const file = FILES[id];
    if (file === undefined) {
      throw new Error(`unknown phase ${id} (known: ${PHASE_IDS.join(", ")})`);
    }
    const full = path.join(dir, file);
    if (!existsSync(full)) {
      missing.push(`${id} (${path.relative(path.dirname(dir), full)} not written yet)`);
      continue;
    }
    const mod = await import(full) as { phase: Phase };
    phases.push(mod.phase);
  }
  return { phases, missing };
}
