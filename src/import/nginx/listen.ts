/**
 * `listen` and `server_name`: where a `server` block listens and which Host names it answers.
 *
 * @module
 */
import { parseAddress } from "../../config/address.ts";
import { NginxParseError, type SourceLocation } from "./errors.ts";
import type { Notes } from "./model.ts";
import type { Directive } from "./reader.ts";

/** One `listen` directive: its address as the gateway writes it ("0.0.0.0:80" for `listen 80`). */
export interface Listen {
  readonly address: string;
  readonly ssl: boolean;
  readonly defaultServer: boolean;
  readonly at: SourceLocation;
}

const SOCKET_OPTIONS =
  /^(backlog|rcvbuf|sndbuf|ipv6only|so_keepalive|fastopen|accept_filter|setfib)=|^(deferred|bind|reuseport)$/;

/** nginx's listen address forms → `host:port` (`80`, `*:80`, `[::]:80`, `127.0.0.1`, `host:8080`). */
function listenAddress(text: string): string {
  if (/^\d+$/.test(text)) return `0.0.0.0:${text}`;
  if (text === "*") return "0.0.0.0:80";
  if (text.startsWith("*:")) return `0.0.0.0:${text.slice(2)}`;
  if (text.startsWith("[")) return text.includes("]:") ? text : `${text}:80`;
  return text.includes(":") ? text : `${text}:80`;
}

/** Reads a `listen`; undefined (with a warning) for a UNIX socket. */
export function readListen(directive: Directive, notes: Notes): Listen | undefined {
  const [addressWord, ...params] = directive.args;
  if (addressWord === undefined) {
    throw new NginxParseError(directive.at, `invalid number of arguments in "listen" directive`);
  }
  if (addressWord.value.startsWith("unix:")) {
    notes.warn(
      directive.at,
      `listen ${addressWord.value} is not carried: the gateway listens on TCP`,
    );
    return undefined;
  }
  const address = listenAddress(addressWord.value);
  const parsed = parseAddress(address);
  if (typeof parsed === "string") {
    throw new NginxParseError(
      addressWord.at,
      `listen "${addressWord.value}" cannot be carried: ${parsed}`,
    );
  }
  let ssl = false;
  let defaultServer = false;
  for (const word of params) {
    const arg = word.value;
    if (arg === "ssl") ssl = true;
    else if (arg === "default_server" || arg === "default") defaultServer = true;
    else if (arg === "http2") {
      notes.note(word.at, `listen … http2: with TLS the gateway offers HTTP/2 by ALPN`);
    } else if (SOCKET_OPTIONS.test(arg)) {
      notes.note(
        word.at,
        `listen … ${arg}: socket option not carried ([server] reuse_port is on by default)`,
      );
    } else {
      notes.warn(word.at, `listen … ${arg} is not carried`);
    }
  }
  return { address, ssl, defaultServer, at: directive.at };
}

/** Host names the gateway's routes can match: exact names of letters, digits, "-" and ".". */
const EXACT_NAME = /^[A-Za-z0-9.-]+$/;

/** The exact names of a `server_name` (lower case); wildcards and regexes are warned about. */
export function readServerNames(directive: Directive, notes: Notes): string[] {
  const names: string[] = [];
  for (const word of directive.args) {
    const name = word.value;
    if (name === "" || name === "_") continue;
    if (name.startsWith(".") && EXACT_NAME.test(name.slice(1))) {
      names.push(name.slice(1).toLowerCase());
      notes.warn(
        word.at,
        `server_name ${name}: carried as ${
          name.slice(1)
        } only; the gateway's routes match exact host names (not *${name})`,
      );
    } else if (EXACT_NAME.test(name) && !name.includes("..")) names.push(name.toLowerCase());
    else {
      notes.warn(
        word.at,
        `server_name ${name} is not carried: the gateway's routes match exact host names only (no wildcards, regexes or variables)`,
      );
    }
  }
  return names;
}
