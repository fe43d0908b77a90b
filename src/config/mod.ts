/**
 * Config: TOML → validated, immutable snapshot.
 *
 * @module
 */
export { loadConfigFile, parseConfig, readConfigText } from "./load.ts";
export { ConfigError, formatProblem } from "./problems.ts";
export { matchRoute } from "./routes.ts";
export { formatDuration, parseDuration } from "./duration.ts";
export { isLoopback, parseAddress } from "./address.ts";
export type { Address } from "./address.ts";
export type * from "./types.ts";
