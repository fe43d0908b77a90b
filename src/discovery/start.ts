/**
 * DNS discovery at start: the first answers before anything listens (bounded by a timeout, so a
 * name that never resolves delays the start by at most that), then the config parsed again with
 * them: its `dns` entries expand into servers from the first request on.
 *
 * @module
 */
import type { GatewayConfig } from "../config/types.ts";
import { readConfigText } from "../config/load.ts";
import { Discovery, discoverySettings } from "./discovery.ts";
import { DiscoveryThread } from "./thread.ts";
import type { Discovered } from "./types.ts";

/** How long start waits for the first answers (the rest come later, as changes). */
export const FIRST_RESOLUTION_MS = 5000;

/** What start serves: the config parsed with the first answers, and its text. */
export interface DiscoveredStart {
  readonly config: GatewayConfig;
  /** The text parsed (the reloader's "running text"). */
  readonly text: string;
  readonly discovery: DiscoveryThread;
  /** The answers `config` was parsed with. */
  readonly answers: Discovered;
}

/**
 * Starts the discovery thread (`spawn` makes its Worker: src/discovery_worker.ts), resolves the
 * config's `dns` entries once and parses the file again with the answers; undefined when the
 * config has none. `onChange` is told of every changed answer later. Throws what `load` throws
 * (a ConfigError), or an Error when the thread cannot start.
 */
export async function discoverAtStart(
  config: GatewayConfig,
  file: string,
  load: (text: string, discovered: Discovered) => GatewayConfig,
  spawn: () => Worker,
  onChange: () => void,
  timeoutMs = FIRST_RESOLUTION_MS,
): Promise<DiscoveredStart | undefined> {
  if (!Discovery.wanted(config)) return undefined;
  const discovery = new DiscoveryThread(spawn(), discoverySettings(config), onChange);
  try {
    await discovery.first(timeoutMs);
    const answers = discovery.snapshot();
    const text = readConfigText(file);
    return { config: load(text, answers), text, discovery, answers };
  } catch (error) {
    discovery.stop();
    throw error;
  }
}
