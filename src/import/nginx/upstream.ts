/**
 * `upstream NAME { server …; sticky …; … }` → an {@link UpstreamModel}. Errors for what nginx
 * (with the sticky module where it applies) would refuse: unknown directives, bad `server`
 * parameters, `backup` after the module's `sticky`, a second balancing method before it.
 *
 * @module
 */
import { parseDuration } from "../../config/duration.ts";
import { parseAddress } from "../../config/address.ts";
import { isKnownDirective } from "./directives.ts";
import { NginxParseError } from "./errors.ts";
import type { Notes, ServerModel, StickyModel, UpstreamModel } from "./model.ts";
import type { Directive } from "./reader.ts";
import { isNativeSticky, readModuleSticky, readNativeSticky } from "./sticky.ts";
import type { VariableMaps } from "./variables.ts";
import type { Word } from "./tokenizer.ts";

/** Balancing methods: the module refuses them before its `sticky` (they set init_upstream). */
const BALANCERS = new Set(["ip_hash", "least_conn", "hash", "random", "least_time", "ntlm"]);
/** Directives an `upstream` may hold that change nothing for clients here. */
const UPSTREAM_NOTES: Record<string, string> = {
  zone: "the gateway's worker threads share one state without a zone",
  keepalive: "the gateway keeps upstream connections alive in a pool per server by itself",
  keepalive_requests: "the gateway's pool has no per-connection request limit",
  keepalive_time: "the gateway's pool has no connection age limit",
  keepalive_timeout: "pooled connections are watched and closed as soon as the server closes them",
  resolver: "the gateway resolves names with the system resolver at connect",
  resolver_timeout: "the gateway resolves names with the system resolver at connect",
};
/** nginx_upstream_check_module's directives (the module's README names it). */
const CHECK_DIRECTIVES = new Set([
  "check",
  "check_http_send",
  "check_http_expect_alive",
  "check_keepalive_requests",
  "check_fastcgi_param",
]);

/** Reads one `upstream` block. */
export function readUpstream(
  directive: Directive,
  maps: VariableMaps,
  notes: Notes,
): UpstreamModel {
  if (directive.args.length !== 1 || directive.block === undefined) {
    throw new NginxParseError(
      directive.at,
      `invalid "upstream": expected "upstream NAME { … }"`,
    );
  }
  const name = directive.args[0].value;
  const upstream: UpstreamModel = { name, servers: [], at: directive.at };
  const state: UpstreamState = { stickyKind: undefined, balancer: undefined, off: false };
  for (const child of directive.block) readUpstreamDirective(child, upstream, state, maps, notes);
  if (upstream.sticky !== undefined && state.off) upstream.sticky = undefined;
  return upstream;
}

interface UpstreamState {
  stickyKind: "module" | "nginx" | undefined;
  balancer: Directive | undefined;
  /** ip_hash & co. after the module's sticky: nginx warns and the sticky is off. */
  off: boolean;
}

function readUpstreamDirective(
  child: Directive,
  upstream: UpstreamModel,
  state: UpstreamState,
  maps: VariableMaps,
  notes: Notes,
): void {
  if (child.name === "server") {
    const server = readServer(child, upstream, state, notes);
    if (server !== undefined) addServer(upstream, server, notes);
  } else if (child.name === "sticky") {
    upstream.sticky = readSticky(child, state, maps, notes);
  } else if (BALANCERS.has(child.name)) {
    state.balancer = child;
    if (state.stickyKind === "module") {
      notes.warn(
        child.at,
        `${child.name} after sticky: nginx warns "load balancing method redefined" and turns the sticky module off; carried as round robin without stickiness`,
      );
      state.off = true;
    } else {
      notes.warn(
        child.at,
        `${child.name} is not carried: the gateway balances by weighted round robin`,
      );
    }
  } else if (child.name in UPSTREAM_NOTES) {
    if (child.name === "keepalive" && state.stickyKind === undefined) state.balancer ??= child;
    notes.note(child.at, `${child.name}: no setting needed: ${UPSTREAM_NOTES[child.name]}`);
  } else if (CHECK_DIRECTIVES.has(child.name)) {
    notes.warn(
      child.at,
      `${child.name} (nginx_upstream_check_module) is not carried; write [upstreams.${upstream.name}.health] (path, interval, rise, fall) for active checks`,
    );
  } else if (isKnownDirective(child.name)) {
    throw new NginxParseError(
      child.at,
      `"${child.name}" directive is not allowed here (in upstream "${upstream.name}")`,
    );
  } else {
    throw new NginxParseError(
      child.at,
      `unknown directive "${child.name}" (in upstream "${upstream.name}")`,
    );
  }
}

function readSticky(
  directive: Directive,
  state: UpstreamState,
  maps: VariableMaps,
  notes: Notes,
): StickyModel | undefined {
  if (state.stickyKind !== undefined) {
    throw new NginxParseError(
      directive.at,
      state.stickyKind === "module"
        ? `sticky: You can't use sticky with another upstream module (a second sticky)`
        : `"sticky" directive is duplicate`,
    );
  }
  if (isNativeSticky(directive)) {
    state.stickyKind = "nginx";
    return readNativeSticky(directive, maps, notes);
  }
  if (state.balancer !== undefined) {
    throw new NginxParseError(
      directive.at,
      `sticky: You can't use sticky with another upstream module ("${state.balancer.name}" at line ${state.balancer.at.line} comes before it; nginx-sticky-module-ng refuses this)`,
    );
  }
  state.stickyKind = "module";
  return readModuleSticky(directive, notes);
}

/** Reads a `server` line's address and parameters as nginx's upstream module does. */
function readServer(
  directive: Directive,
  upstream: UpstreamModel,
  state: UpstreamState,
  notes: Notes,
): ServerModel | undefined {
  const [addressWord, ...params] = directive.args;
  if (addressWord === undefined) {
    throw new NginxParseError(directive.at, `invalid number of arguments in "server" directive`);
  }
  const server: Record<string, unknown> = { address: addressWord.value, at: directive.at };
  for (const word of params) readServerParameter(word, server, state, notes);
  const address = addressWord.value;
  if (address.startsWith("unix:")) {
    notes.warn(
      directive.at,
      `server ${address} in upstream "${upstream.name}" is not carried: the gateway connects over TCP only` +
        (upstream.sticky?.hash === "index" ? " (index cookie values of later servers shift)" : ""),
    );
    return undefined;
  }
  const parsed = parseAddress(address, 80);
  if (typeof parsed === "string") {
    throw new NginxParseError(addressWord.at, `server "${address}" cannot be carried: ${parsed}`);
  }
  return server as unknown as ServerModel;
}

const NUMBER = /^\d+$/;

function readServerParameter(
  word: Word,
  server: Record<string, unknown>,
  state: UpstreamState,
  notes: Notes,
): void {
  const arg = word.value;
  const invalid = () => new NginxParseError(word.at, `invalid parameter "${arg}"`);
  const moduleRefuses = (name: string) =>
    new NginxParseError(
      word.at,
      `balancing method does not support parameter "${name}" (the sticky module's sticky comes before this server line, and nginx refuses it)`,
    );
  if (arg.startsWith("weight=")) {
    const value = arg.slice(7);
    if (!NUMBER.test(value) || Number(value) === 0) throw invalid();
    server.weight = Number(value);
  } else if (arg.startsWith("max_fails=")) {
    if (!NUMBER.test(arg.slice(10))) throw invalid();
    server.maxFails = Number(arg.slice(10));
  } else if (arg.startsWith("fail_timeout=")) {
    const value = arg.slice(13);
    if (parseDuration(value, false) === null) throw invalid();
    server.failTimeout = value;
  } else if (arg === "backup") {
    if (state.stickyKind === "module") throw moduleRefuses("backup");
    server.backup = true;
  } else if (arg === "down") server.down = true;
  else if (arg === "drain") server.drain = true;
  else if (arg.startsWith("route=")) {
    const value = arg.slice(6);
    if (value === "") throw new NginxParseError(word.at, `route is empty`);
    if (value.length > 32) throw new NginxParseError(word.at, `route is longer than 32`);
    server.route = value;
  } else if (arg.startsWith("max_conns=")) {
    if (state.stickyKind === "module") throw moduleRefuses("max_conns");
    notes.warn(word.at, `${arg} is not carried: the gateway has no per-server connection limit`);
  } else if (arg === "resolve" || arg.startsWith("service=") || arg.startsWith("slow_start=")) {
    notes.warn(word.at, `${arg} is not carried`);
  } else throw invalid();
}

/** Adds a server; a second line with the same address text is left out (its cookie would be the
 * first's), with a warning. */
function addServer(upstream: UpstreamModel, server: ServerModel, notes: Notes): void {
  const first = upstream.servers.find((s) => s.address === server.address);
  if (first !== undefined) {
    notes.warn(
      server.at,
      `server ${server.address} is listed again in upstream "${upstream.name}" (first at line ${first.at.line}); the gateway lists each address once (both had the same cookie value); this line is not carried`,
    );
    return;
  }
  upstream.servers.push(server);
}
