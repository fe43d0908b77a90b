/**
 * What the importer carries over from nginx, before it is written as TOML. Every part keeps the
 * place in the nginx config it came from, for comments and for errors.
 *
 * @module
 */
import type { ImportWarning, SourceLocation } from "./errors.ts";

/** One `server` line of an `upstream`. `address` is the text as written (the cookie's input). */
export interface ServerModel {
  readonly address: string;
  readonly weight?: number;
  readonly maxFails?: number;
  readonly failTimeout?: string;
  readonly backup?: boolean;
  readonly down?: boolean;
  readonly drain?: boolean;
  readonly route?: string;
  readonly at: SourceLocation;
}

/** The sticky table: the module's `sticky …` (format "module") or nginx's own (format "nginx"). */
export interface StickyModel {
  readonly format: "module" | "nginx";
  readonly name?: string;
  readonly domain?: string;
  readonly path?: string;
  readonly expires?: string;
  readonly secure?: boolean;
  readonly httponly?: boolean;
  /** nginx's own keeps the case as written; the module has none. */
  readonly samesite?: string;
  readonly hash?: "md5" | "sha1" | "index";
  readonly hmac?: "md5" | "sha1";
  readonly hmacKey?: string;
  readonly text?: "raw";
  readonly noFallback?: boolean;
  /** `sticky route $…`: where the route comes from, e.g. "cookie:JSESSIONID". */
  readonly routeFrom?: readonly string[];
  readonly routeDelimiter?: string;
  /** false for `sticky route`, which sets no cookie of its own. */
  readonly ownCookie?: boolean;
  readonly at: SourceLocation;
}

/** One `upstream` block (or a `proxy_pass` to an address, which nginx makes an upstream of). */
export interface UpstreamModel {
  readonly name: string;
  readonly servers: ServerModel[];
  sticky?: StickyModel;
  /** `proxy_pass https://…` */
  tls?: boolean;
  readonly at: SourceLocation;
  /** Made from a `proxy_pass` address, not an `upstream` block. */
  readonly implicit?: boolean;
}

/** One `location` that proxies, for one host (or any host: the port's default server). */
export interface RouteModel {
  readonly path: string;
  readonly host?: string;
  readonly upstream: string;
  readonly noFallback: boolean;
  readonly at: SourceLocation;
}

/** A `[server]` key and the nginx directive its value came from. */
export interface SettingModel {
  readonly value: string | number;
  readonly at?: SourceLocation;
  /** Why the value is what it is, when not plainly the directive's (a comment). */
  readonly why?: string;
}

/** Everything the TOML will say. */
export interface ImportModel {
  readonly source: string;
  readonly server: Map<string, SettingModel>;
  tls?: { readonly cert: string; readonly key: string; readonly at: SourceLocation };
  readonly upstreams: Map<string, UpstreamModel>;
  readonly routes: RouteModel[];
  readonly warnings: ImportWarning[];
}

/** Collects warnings and notes, in the order found. */
export class Notes {
  readonly list: ImportWarning[] = [];

  /** Behaviour differs from nginx's. */
  warn(at: SourceLocation, message: string): void {
    this.list.push({ ...at, level: "warning", message });
  }

  /** Not carried, and nothing changes for clients. */
  note(at: SourceLocation, message: string): void {
    this.list.push({ ...at, level: "note", message });
  }
}
