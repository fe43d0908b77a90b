/**
 * The route table: longest path prefix wins, host-specific routes before host-less ones.
 * Lookups walk a character trie, so their cost follows the request path, not the number of routes.
 *
 * @module
 */
import type { Route } from "./types.ts";

interface TrieNode {
  route?: Route;
  readonly children: Map<number, TrieNode>;
}

export interface RouteTable {
  readonly list: readonly Route[];
  readonly byHost: ReadonlyMap<string, TrieNode>;
  readonly anyHost: TrieNode;
}

/** Builds the table; routes must be unique by (host, path), which the config checks. */
export function buildRouteTable(routes: readonly Route[]): RouteTable {
  const byHost = new Map<string, TrieNode>();
  const anyHost: TrieNode = { children: new Map() };
  for (const route of routes) {
    let root = anyHost;
    if (route.host !== undefined) {
      root = byHost.get(route.host) ?? { children: new Map() };
      byHost.set(route.host, root);
    }
    insert(root, route);
  }
  return { list: routes, byHost, anyHost };
}

function insert(root: TrieNode, route: Route): void {
  let node = root;
  for (let i = 0; i < route.path.length; i++) {
    const c = route.path.charCodeAt(i);
    let child = node.children.get(c);
    if (child === undefined) {
      child = { children: new Map() };
      node.children.set(c, child);
    }
    node = child;
  }
  node.route = route;
}

/**
 * The route for a request, or undefined (→ 404).
 *
 * @param host the request's Host without port, lower case ("" when absent)
 * @param path the request path (without query)
 */
export function matchRoute(table: RouteTable, host: string, path: string): Route | undefined {
  if (table.byHost.size > 0) {
    const hostRoot = table.byHost.get(host);
    if (hostRoot !== undefined) {
      const route = longestPrefix(hostRoot, path);
      if (route !== undefined) return route;
    }
  }
  return longestPrefix(table.anyHost, path);
}

function longestPrefix(root: TrieNode, path: string): Route | undefined {
  let node: TrieNode | undefined = root;
  let best = root.route;
  for (let i = 0; i < path.length; i++) {
    node = node.children.get(path.charCodeAt(i));
    if (node === undefined) break;
    if (node.route !== undefined) best = node.route;
  }
  return best;
}
