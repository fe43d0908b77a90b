/**
 * The scenarios run through nginx 1.30.4's own `sticky cookie NAME …` and through the gateway
 * with `format = "nginx"` (tests/e2e/nginx_native_differential.test.ts): the value is the MD5 hex
 * of the server's resolved `ip:port` (or its `route=`), the Set-Cookie is nginx's lower-case
 * form (`expires=…; max-age=…`, no path unless `path=`), and the cookie is written on every
 * response from the upstream, a pinned client's included.
 *
 * @module
 */
import {
  ALL_REFUSED_502_COOKIE,
  BACKEND_SET_COOKIE,
  PINNED_COUNTS_IN_RR,
  RR_ORDER_UNAVAILABLE,
} from "./differences.ts";
import type { Probe } from "./probe.ts";
import type { Scenario, ServerSpec, StickySpec } from "./scenario.ts";

/** The route keys (issue 11, /work/notes/spec11-keys.md) as nginx's `sticky route` imports. */
const ROUTES = {
  what: "route stickiness (servers' route, route_from, cookie = false)",
  toml: `[upstreams.u]
servers = [{ address = "127.0.0.1:9", route = "n1" }, { address = "127.0.0.1:10", route = "n2" }]
[upstreams.u.sticky]
cookie = false
route_from = ["cookie:jsessionid", "header:X-Route", "query:r"]
route_delimiter = ""
`,
};

const three: ServerSpec[] = [{ backend: "A" }, { backend: "B" }, { backend: "C" }];

/** A new client, then pinned by the cookie it got, then by each computed value. */
async function issueThenPin(p: Probe, name = "route"): Promise<void> {
  const first = await p.ask("a new client gets a cookie");
  await p.ask("that cookie pins it (nginx writes the cookie again)", {
    cookies: [`${name}=${first.issued}`],
  });
  for (const letter of ["B", "A"]) {
    await p.ask(`the computed value of ${letter} pins to ${letter}`, {
      cookies: [`${name}=${p.value(letter)}`],
    });
  }
}

function attributes(id: string, title: string, sticky: StickySpec): Scenario {
  return {
    id,
    title,
    servers: [{ backend: "A" }, { backend: "B" }],
    sticky,
    script: (p) => issueThenPin(p, sticky.name),
  };
}

/** The written scenarios for nginx 1.30's `sticky cookie` and `sticky route` (n01…). */
export const NATIVE_SCENARIOS: readonly Scenario[] = [
  {
    id: "n01",
    title: "`sticky cookie route;`, three servers: round robin, pinning, invalid cookies",
    servers: three,
    sticky: { name: "route" },
    async script(p) {
      await p.round("new clients go round robin, each with its server's cookie", 3);
      const b = p.value("B");
      for (const line of ["route=garbage", `route=${b.toUpperCase()}`, `route="${b}"`, "route="]) {
        await p.ask(`${line} → round robin + Set-Cookie`, { cookies: [line] });
      }
      await p.ask("a backend's 500 carries the cookie", { path: "status/500" });
      // Pinned requests last: nginx 1.30 counts them in its round robin (n03).
      for (const letter of ["C", "B", "A"]) {
        await p.ask(`the cookie of ${letter} → ${letter}, and the cookie again`, {
          cookies: [`route=${p.value(letter)}`],
        });
      }
      await p.ask("first occurrence wins", { cookies: [`route=${b}; route=${p.value("C")}`] });
      await p.ask("the name is case-insensitive", { cookies: [`ROUTE=${p.value("C")}`] });
    },
  },
  {
    id: "n02",
    title: "weights 3:1:1, only new clients: the smooth WRR order",
    servers: [{ backend: "A", weight: 3 }, { backend: "B" }, { backend: "C" }],
    sticky: { name: "srv" },
    async script(p) {
      await p.round("10 new clients", 10);
    },
  },
  {
    id: "n03",
    title: "weights 3:1:1, pinned clients between new ones",
    servers: [{ backend: "A", weight: 3 }, { backend: "B" }, { backend: "C" }],
    sticky: { name: "srv" },
    async script(p) {
      await p.round("3 new clients", 3);
      for (let i = 0; i < 3; i++) {
        await p.ask("the cookie of C", { cookies: [`srv=${p.value("C")}`] });
      }
      await p.round("5 new clients after pinned ones", 5, {}, PINNED_COUNTS_IN_RR);
    },
  },
  attributes("n04", "every attribute: expires=1h domain path samesite secure httponly", {
    name: "srv",
    expires: "1h",
    domain: ".example.com",
    path: "/app",
    samesite: "lax",
    secure: true,
    httponly: true,
  }),
  attributes("n05", "expires=max", { name: "route", expires: "max" }),
  attributes("n06", "expires=1h30m, path=/, samesite=strict", {
    name: "SERVERID",
    expires: "1h30m",
    path: "/",
    samesite: "Strict",
  }),
  attributes("n07", "samesite=none secure, domain without dot", {
    name: "route",
    samesite: "none",
    secure: true,
    domain: "example.com",
  }),
  {
    id: "n08",
    title: "the value is the MD5 of the resolved address: localhost, a zero-padded port, [::1]",
    servers: [
      { backend: "A", spelling: "localhost" },
      { backend: "B", spelling: "zero-port" },
      { backend: "C", spelling: "ipv6" },
    ],
    sticky: { name: "route" },
    async script(p) {
      await p.round("new clients", 3);
      for (const letter of ["C", "B", "A"]) {
        await p.ask(`the value of ${letter}`, { cookies: [`route=${p.value(letter)}`] });
      }
    },
  },
  {
    id: "n09",
    title: "servers with route=: the route is the value",
    servers: [
      { backend: "A", route: "a1" },
      { backend: "B", route: "node.b" },
      { backend: "C" },
    ],
    sticky: { name: "route" },
    async script(p) {
      await p.round("new clients", 3);
      for (const letter of ["B", "C", "A"]) {
        await p.ask(`the value of ${letter}`, { cookies: [`route=${p.value(letter)}`] });
      }
    },
  },
  {
    id: "n10",
    title: "B down: its cookie falls back, new clients skip it",
    servers: [{ backend: "A" }, { backend: "B", down: true }, { backend: "C" }],
    sticky: { name: "route" },
    async script(p) {
      await p.ask("the cookie of B (down) → another, new cookie", {
        cookies: [`route=${p.value("B")}`],
      }, RR_ORDER_UNAVAILABLE);
      await p.round("new clients", 4, {}, RR_ORDER_UNAVAILABLE);
    },
  },
  {
    id: "n11",
    title: "B refusing: retried elsewhere with a new cookie, then skipped while failed",
    servers: three,
    sticky: { name: "route" },
    async script(p) {
      await p.backend("B").close();
      try {
        const b = [`route=${p.value("B")}`];
        await p.ask("the cookie of B (refusing) → another server, its cookie", { cookies: b });
        await p.ask("B failed → not tried", { cookies: b }, RR_ORDER_UNAVAILABLE);
      } finally {
        await p.backend("B").restart();
      }
    },
  },
  {
    id: "n12",
    title: "one server: the cookie is set and read",
    servers: [{ backend: "A" }],
    sticky: { name: "route" },
    async script(p) {
      await p.ask("no cookie");
      await p.ask("its cookie", { cookies: [`route=${p.value("A")}`] });
      await p.ask("garbage", { cookies: ["route=x"] });
    },
  },
  {
    id: "n13",
    title: "a backup, the primaries down: the backup's own value",
    servers: [{ backend: "A", down: true }, { backend: "B", down: true }, {
      backend: "C",
      backup: true,
    }],
    sticky: { name: "route" },
    async script(p) {
      await p.ask("the backup answers");
      await p.ask("the backup's cookie", { cookies: [`route=${p.value("C")}`] });
    },
  },
  {
    id: "n14",
    title: "the backend sets a cookie of the sticky name itself",
    servers: three,
    sticky: { name: "route" },
    async script(p) {
      await p.ask("a new client", { path: "set-cookie" }, BACKEND_SET_COOKIE);
      await p.ask("a pinned client", {
        path: "set-cookie",
        cookies: [`route=${p.value("C")}`],
      }, BACKEND_SET_COOKIE);
    },
  },
  {
    id: "n15",
    title: "`sticky route $cookie_jsessionid $http_x_route $arg_r;`: no cookie of its own",
    servers: [
      { backend: "A", route: "n1" },
      { backend: "B", route: "n2" },
      { backend: "C", route: "n3" },
    ],
    sticky: { routeVars: ["$cookie_jsessionid", "$http_x_route", "$arg_r"] },
    requires: ROUTES,
    async script(p) {
      await p.round("no route: round robin, never a Set-Cookie", 3);
      await p.ask("a route naming nobody → round robin", { cookies: ["jsessionid=n9"] });
      await p.ask("a Tomcat-style value is compared whole → round robin", {
        cookies: ["jsessionid=abc.n2"],
      });
      // Routed requests last: nginx 1.30 counts them in its round robin (n03).
      await p.ask("the cookie's route → B", { cookies: ["jsessionid=n2"] });
      await p.ask("the header's route → C", { headers: [["X-Route", "n3"]] });
      await p.ask("the query's route → B", { path: "x?r=n2" });
      await p.ask("the query's name is case-insensitive → A", { path: "x?a=1&R=n1" });
      await p.ask("the first non-empty variable wins → C", {
        cookies: ["jsessionid="],
        headers: [["X-Route", "n3"]],
      });
      await p.ask("the cookie comes before the header → A", {
        cookies: ["jsessionid=n1"],
        headers: [["X-Route", "n3"]],
      });
    },
  },
  {
    id: "n16",
    title: "`sticky route $cookie_route;`, B down: its route falls back",
    servers: [
      { backend: "A", route: "a" },
      { backend: "B", route: "b", down: true },
      { backend: "C", route: "c" },
    ],
    sticky: { routeVars: ["$cookie_route"] },
    requires: ROUTES,
    async script(p) {
      await p.ask("B's route (down) → another server", { cookies: ["route=b"] });
      await p.round("new clients skip B", 3, {}, RR_ORDER_UNAVAILABLE);
      await p.ask("C's route → C", { cookies: ["route=c"] });
    },
  },
  {
    id: "n17",
    title: "a cookie naming a backup while the primaries are up",
    servers: [{ backend: "A" }, { backend: "B" }, { backend: "C", backup: true }],
    sticky: { name: "route" },
    async script(p) {
      await p.ask("the backup's value → a primary, its cookie", {
        cookies: [`route=${p.value("C")}`],
      });
      await p.round("new clients: the primaries only", 3);
    },
  },
  {
    id: "n18",
    title: "every server refusing: the tries, then 502",
    servers: [{ backend: "A" }, { backend: "B" }],
    sticky: { name: "route" },
    reachesNoBackend: true,
    async script(p) {
      await p.backend("A").close();
      await p.backend("B").close();
      try {
        await p.ask("no cookie, both refuse → 502", {}, ALL_REFUSED_502_COOKIE);
        await p.ask("both failed now → 502 at once");
      } finally {
        await p.backend("A").restart();
        await p.backend("B").restart();
      }
    },
  },
  attributes("n19", "expires=0: expired at once, max-age=0", { name: "srv", expires: "0" }),
  attributes("n20", "expires=20y: past 2037 the year has four digits", {
    name: "srv",
    expires: "20y",
    path: "/",
  }),
];
