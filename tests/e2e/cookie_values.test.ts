/**
 * Cookie values and Set-Cookie lines in real responses: every mode's values byte-identical to
 * tests/fixtures/nginx-sticky-vectors.json (md5, sha1, index, hmac md5/sha1, text=raw), the
 * fixture's cookie-parsing cases through the real gateway, and the Set-Cookie attributes
 * byte-exact (Domain, Expires format, Path, Secure, HttpOnly, SameSite, Partitioned).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ROOT, startGateway, stopAllGateways } from "../support/gateway.ts";
import { ask, hmac, md5, sha1 } from "../support/http.ts";
import { closeAllUpstreams, type NamedUpstream, startNamedUpstream } from "../support/upstreams.ts";

interface VectorServer {
  index: number;
  server_text: string;
  cookie_value: string;
  set_cookie: string;
}
interface ModeVectors {
  mode: string;
  directive: string;
  servers: VectorServer[];
}
interface CookieCase {
  mode: string;
  cookie_headers: string[];
  expect: string;
}
interface ValueCase {
  mode: string;
  cookie_value: string;
  expect: string;
}
interface FormatCase {
  directive: string;
  now: string;
  set_cookie: string;
}
interface Vectors {
  mode_vectors_9001_9003: ModeVectors[];
  mode_vectors_19001_19003_live: ModeVectors[];
  cookie_parsing_cases: CookieCase[];
  index_parsing_cases: ValueCase[];
  raw_parsing_cases: ValueCase[];
  set_cookie_format: { cases: FormatCase[] };
}

const VECTORS = JSON.parse(
  readFileSync(`${ROOT}tests/fixtures/nginx-sticky-vectors.json`, "utf8"),
) as Vectors;

/** Each fixture mode → its route in the gateway and its [sticky] keys. */
const MODES: Record<string, { route: string; toml: string }> = {
  "default": { route: "/default", toml: "" },
  "hash=md5": { route: "/md5", toml: `hash = "md5"` },
  "hash=sha1": { route: "/sha1", toml: `hash = "sha1"` },
  "hash=index": { route: "/index", toml: `hash = "index"` },
  "hmac=md5": { route: "/hmac-md5", toml: `hmac = "md5"\nhmac_key = "secret"` },
  "hmac=sha1": { route: "/hmac-sha1", toml: `hmac = "sha1"\nhmac_key = "secret"` },
  "text=raw": { route: "/raw", toml: `text = "raw"` },
};

/** The value each mode gives `text` (independent of src/: node:crypto), checked against the fixture. */
function valueFor(mode: string, text: string, index: number): string {
  switch (mode) {
    case "default":
    case "hash=md5":
      return md5(text);
    case "hash=sha1":
      return sha1(text);
    case "hash=index":
      return String(index);
    case "hmac=md5":
      return hmac("md5", "secret", text);
    case "hmac=sha1":
      return hmac("sha1", "secret", text);
    case "text=raw":
      return text;
  }
  throw new Error(`unknown mode ${mode}`);
}

/** The module's Expires date (`Www, DD-Mon-YYYY HH:MM:SS GMT`), written independently of src/. */
function netscapeDate(epochSeconds: number): string {
  const [weekday, day, month, year, time] = new Date(epochSeconds * 1000).toUTCString().split(" ");
  return `${weekday} ${day}-${month}-${year} ${time} GMT`;
}

let servers: NamedUpstream[] = [];
/** The fixture's vectors for the ports we run on (or, if neither port set is free, computed). */
let vectors: ModeVectors[] = [];
let vectorSource = "";

async function startOn(ports: number[]): Promise<NamedUpstream[] | undefined> {
  const started: NamedUpstream[] = [];
  try {
    for (const [i, port] of ports.entries()) started.push(await startNamedUpstream("ABC"[i], port));
    return started;
  } catch {
    await Promise.all(started.map((u) => u.close()));
    return undefined;
  }
}

describe("cookie values and Set-Cookie lines", () => {
  before(async () => {
    // The fixture's values are for servers written as 127.0.0.1:19001-19003 (observed live on
    // nginx) and 127.0.0.1:9001-9003; run the upstreams there when the ports are free.
    const live = await startOn([19001, 19002, 19003]);
    if (live !== undefined) {
      servers = live;
      vectors = VECTORS.mode_vectors_19001_19003_live;
      vectorSource = "fixture, live 19001-19003";
      return;
    }
    const formula = await startOn([9001, 9002, 9003]);
    if (formula !== undefined) {
      servers = formula;
      vectors = VECTORS.mode_vectors_9001_9003;
      vectorSource = "fixture, 9001-9003";
      return;
    }
    servers = [
      await startNamedUpstream("A"),
      await startNamedUpstream("B"),
      await startNamedUpstream("C"),
    ];
    vectors = VECTORS.mode_vectors_9001_9003.map((m) => ({
      ...m,
      servers: servers.map((s, index) => {
        const value = valueFor(m.mode, s.address, index);
        return {
          index,
          server_text: s.address,
          cookie_value: value,
          set_cookie: `route=${value}; Path=/`,
        };
      }),
    }));
    vectorSource = "computed (vector ports busy)";
  });
  after(async () => {
    await stopAllGateways();
    await closeAllUpstreams();
  });

  it("the independent formulas reproduce every fixture vector (so the computed fallback is sound)", () => {
    for (const set of [VECTORS.mode_vectors_9001_9003, VECTORS.mode_vectors_19001_19003_live]) {
      for (const m of set) {
        for (const s of m.servers) {
          assert.equal(
            valueFor(m.mode, s.server_text, s.index),
            s.cookie_value,
            `${m.mode} ${s.server_text}`,
          );
          assert.equal(s.set_cookie, `route=${s.cookie_value}; Path=/`);
        }
      }
    }
    for (const c of VECTORS.set_cookie_format.cases) {
      const expires = /Expires=([^;]+)/.exec(c.set_cookie)?.[1];
      if (expires === undefined) continue;
      const seconds = /expires=(\d+)(h?)/.exec(c.directive)!;
      const lifetime = Number(seconds[1]) * (seconds[2] === "h" ? 3600 : 1);
      assert.equal(netscapeDate(Date.parse(c.now) / 1000 + lifetime), expires);
    }
  });

  describe("every mode, through the gateway", () => {
    let port = 0;
    before(async () => {
      let toml = "";
      let routes = "";
      for (const [mode, { route, toml: sticky }] of Object.entries(MODES)) {
        const name = route.slice(1).replace("-", "_");
        toml += `[upstreams.${name}]\nservers = [${
          servers.map((s) => `"${s.address}"`).join(", ")
        }]\n`;
        toml += `[upstreams.${name}.sticky]\n${sticky}\n\n`;
        routes += `[[routes]]\npath = "${route}"\nupstream = "${name}"\n\n`;
        assert.ok(vectors.some((v) => v.mode === mode), mode);
      }
      const gw = await startGateway(toml + routes);
      port = gw.port;
    });
    after(stopAllGateways);

    for (const mode of Object.keys(MODES)) {
      it(`${mode}: new clients get the fixture's Set-Cookie lines, and the fixture's values pin`, async () => {
        const m = vectors.find((v) => v.mode === mode)!;
        const route = MODES[mode].route;
        for (const [i, expected] of m.servers.entries()) {
          const answer = await ask(port, { path: `${route}/x` });
          assert.equal(answer.status, 200);
          assert.equal(answer.body, "ABC"[i]);
          assert.deepEqual(answer.setCookies, [expected.set_cookie], `${mode} (${vectorSource})`);
        }
        for (const [i, expected] of m.servers.entries()) {
          const answer = await ask(port, {
            path: route,
            cookies: [`route=${expected.cookie_value}`],
          });
          assert.equal(answer.body, "ABC"[i], `${mode}: ${expected.cookie_value}`);
          assert.deepEqual(answer.setCookies, []);
        }
      });
    }

    /** Checks one fixture case: a letter means that server and no Set-Cookie; "RR" a new cookie. */
    const check = async (mode: string, cookies: string[], expect: string) => {
      const m = vectors.find((v) => v.mode === mode)!;
      const answer = await ask(port, { path: MODES[mode].route, cookies });
      assert.equal(answer.status, 200);
      const label = `${mode} ${JSON.stringify(cookies)}`;
      if (expect === "RR") {
        const served = "ABC".indexOf(answer.body);
        assert.ok(served >= 0, label);
        assert.deepEqual(
          answer.setCookies,
          [m.servers[served].set_cookie],
          `${label} → new cookie`,
        );
      } else {
        assert.equal(answer.body, expect, label);
        assert.deepEqual(answer.setCookies, [], `${label} → no Set-Cookie`);
      }
    };

    it("the fixture's cookie-parsing cases", async () => {
      for (const c of VECTORS.cookie_parsing_cases) {
        const mode = c.mode.startsWith("default") ? "default" : c.mode;
        const value = (letter: string) =>
          vectors.find((v) => v.mode === mode)!.servers["ABC".indexOf(letter)].cookie_value;
        const lines = c.cookie_headers.map((line) =>
          line
            .replace("<B uppercased hex>", md5(servers[1].address).toUpperCase())
            .replace("<md5 digest>", md5(servers[1].address))
            .replace(/(=\s*"?)([ABC])(?=\s*(?:[;,"]|$))/g, (_, prefix: string, letter: string) =>
              prefix + value(letter))
        );
        await check(mode, lines, c.expect);
      }
    });

    it("the fixture's index-parsing cases (hash = index)", async () => {
      for (const c of VECTORS.index_parsing_cases) {
        const line = c.cookie_value.startsWith(" 2") ? "route= 2" : `route=${c.cookie_value}`;
        await check("hash=index", [line], c.expect);
      }
    });

    it("the fixture's raw-text cases (text = raw): no URL-decoding, no name resolution", async () => {
      for (const c of VECTORS.raw_parsing_cases) {
        await check("text=raw", [
          `route=${c.cookie_value.replace("19002", String(servers[1].port))}`,
        ], c.expect);
      }
    });

    it("a path no route matches → 404", async () => {
      const answer = await ask(port, { path: "/nowhere" });
      assert.equal(answer.status, 404);
      assert.deepEqual(answer.setCookies, []);
      assert.equal(answer.servedBy, undefined);
      assert.match(answer.body, /^404 Not Found: no route/);
    });
  });

  describe("Set-Cookie attributes, byte-exact", () => {
    let port = 0;
    const attributes: Record<string, string> = {
      "/module":
        `name = "srv"\ndomain = ".example.com"\npath = "/app"\nexpires = "1h"\nsecure = true\nhttponly = true`,
      "/ninety": `expires = 90`,
      "/long": `domain = "example.org"\nexpires = "1h30m"`,
      "/samesite": `secure = true\nhttponly = true\nsamesite = "None"\npartitioned = true`,
      "/lax": `samesite = "Lax"`,
      "/plain": ``,
    };
    before(async () => {
      let toml = "";
      for (const [route, sticky] of Object.entries(attributes)) {
        const name = route.slice(1);
        toml += `[upstreams.${name}]\nservers = ["${
          servers[0].address
        }"]\n[upstreams.${name}.sticky]\n${sticky}\n\n`;
        toml += `[[routes]]\npath = "${route}"\nupstream = "${name}"\n\n`;
      }
      port = (await startGateway(toml)).port;
    });
    after(stopAllGateways);

    const value = () => md5(servers[0].address);
    /** The Set-Cookie for `route`, whose Expires (if any) is `lifetime` after the response. */
    const expectCookie = async (
      route: string,
      build: (expires: (lifetime: number) => string) => string,
    ) => {
      const from = Math.floor(Date.now() / 1000);
      const answer = await ask(port, { path: route, name: route === "/module" ? "srv" : "route" });
      const to = Math.floor(Date.now() / 1000);
      assert.equal(answer.status, 200);
      assert.equal(answer.setCookies.length, 1, route);
      const actual = answer.setCookies[0];
      const candidates: string[] = [];
      for (let t = from; t <= to; t++) {
        candidates.push(build((lifetime) => netscapeDate(t + lifetime)));
      }
      assert.ok(
        candidates.includes(actual),
        `${route}: got\n  ${actual}\nexpected one of\n  ${candidates.join("\n  ")}`,
      );
      return actual;
    };

    it("the module's full set: name, Domain, Expires, Path, Secure, HttpOnly in its order", async () => {
      const line = await expectCookie(
        "/module",
        (e) =>
          `srv=${value()}; Domain=.example.com; Expires=${e(3600)}; Path=/app; Secure; HttpOnly`,
      );
      assert.match(
        line,
        /Expires=(Sun|Mon|Tue|Wed|Thu|Fri|Sat), \d\d-(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)-\d{4} \d\d:\d\d:\d\d GMT;/,
      );
      assert.doesNotMatch(line, /Max-Age|SameSite|Version/i);
    });

    it('expires = 90 (bare seconds) and expires = "1h30m"', async () => {
      await expectCookie("/ninety", (e) => `route=${value()}; Expires=${e(90)}; Path=/`);
      await expectCookie(
        "/long",
        (e) => `route=${value()}; Domain=example.org; Expires=${e(5400)}; Path=/`,
      );
    });

    it("SameSite and Partitioned come after the module's attributes", async () => {
      await expectCookie(
        "/samesite",
        () => `route=${value()}; Path=/; Secure; HttpOnly; SameSite=None; Partitioned`,
      );
      await expectCookie("/lax", () => `route=${value()}; Path=/; SameSite=Lax`);
    });

    it("defaults: name=value; Path=/ and nothing else", async () => {
      await expectCookie("/plain", () => `route=${value()}; Path=/`);
    });
  });
});
