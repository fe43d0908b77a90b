/**
 * The state shared by every worker thread: see `shared_state.ts`.
 *
 * @module
 */
export { SharedState } from "./shared_state.ts";
export type {
  ActiveHealth,
  LastCheck,
  SharedCursor,
  SharedStateBuffers,
  StateSource,
  UpstreamSlots,
} from "./shared_state.ts";
export { serverStatus } from "./status.ts";
export type { ServerStatus } from "./status.ts";
