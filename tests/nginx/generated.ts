/**
 * Generated scenarios, beside the written ones: upstreams drawn from a seeded generator (server
 * count 2–4, weights 1–3, `down`, address spellings, every value mode, cookie names, attribute
 * combinations, expires forms), each run through the same script: new clients over two full
 * weight cycles (order and shares), then each server's value (pinned; a down server's value falls
 * back). The seed is fixed so a failure can be run again; `NGINX_DIFF_SEED=n` draws others.
 *
 * @module
 */
import process from "node:process";
import { RR_ORDER_UNAVAILABLE } from "./differences.ts";
import type { Probe } from "./probe.ts";
import type { ModuleMode, Scenario, ServerSpec, Spelling, StickySpec } from "./scenario.ts";

/** The generator's seed (printed in every generated scenario's title). */
export const SEED: number = Number(process.env.NGINX_DIFF_SEED ?? 20261202);

/** mulberry32: a small deterministic generator, so the same seed draws the same scenarios. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Draw = <T>(choices: readonly T[]) => T;

function servers(draw: Draw, spellings: readonly Spelling[], routes: boolean): ServerSpec[] {
  const count = draw([2, 3, 3, 4]);
  const downAt = count >= 3 && draw([true, false, false]) ? draw([1, count - 1]) : -1;
  return Array.from({ length: count }, (_, i) => ({
    backend: "ABCD"[i],
    weight: draw([undefined, 1, 2, 3]),
    spelling: draw(spellings),
    ...(i === downAt ? { down: true } : {}),
    ...(routes && draw([true, false]) ? { route: `r${i}.${draw(["a", "b-c", "d_e"])}` } : {}),
  }));
}

/** New clients over two full cycles of the available weights, then each server's value. */
function script(scenario: { servers: readonly ServerSpec[]; sticky: StickySpec }) {
  const name = scenario.sticky.name ?? "route";
  const up = scenario.servers.filter((s) => !s.down);
  const cycle = up.reduce((sum, s) => sum + (s.weight ?? 1), 0);
  const anyDown = up.length !== scenario.servers.length;
  return async (p: Probe) => {
    await p.round(
      `${2 * cycle} new clients`,
      2 * cycle,
      {},
      anyDown ? RR_ORDER_UNAVAILABLE : undefined,
    );
    // Pinned requests last: nginx 1.30 counts them in its round robin (native n03).
    for (const s of up) {
      await p.ask(`the value of ${s.backend}`, { cookies: [`${name}=${p.value(s.backend)}`] });
    }
  };
}

const NAMES = [undefined, "srv", "SERVERID", "srv_id", "lb-1", "a.b"];
const DOMAINS = [undefined, undefined, ".example.com", "example.org", "a-b.example.net"];
const PATHS = [undefined, undefined, "/", "/app", "/a/b-c"];

/** `count` module scenarios (ids g01…), modes taken in turn so each appears. */
export function generatedModuleScenarios(count: number): Scenario[] {
  const random = generator(SEED);
  const draw: Draw = (choices) => choices[Math.floor(random() * choices.length)];
  const modes: (ModuleMode | undefined)[] = [
    undefined,
    "md5",
    "sha1",
    "index",
    "hmac-md5",
    "hmac-sha1",
    "raw",
  ];
  return Array.from({ length: count }, (_, i) => {
    const mode = modes[i % modes.length];
    const sticky: StickySpec = {
      mode,
      ...(mode?.startsWith("hmac") ? { hmacKey: draw(["secret", "k3y", "a longer key"]) } : {}),
      name: draw(NAMES),
      domain: draw(DOMAINS),
      path: draw(PATHS),
      expires: draw([undefined, "30", "15m", "1h30m", "12h", "3d", "2w", "1M", "1y"]),
      secure: draw([true, false]),
      httponly: draw([true, false]),
    };
    const spec = { servers: servers(draw, ["ip", "ip", "localhost", "zero-port"], false), sticky };
    return {
      id: `g${String(i + 1).padStart(2, "0")}`,
      title: `generated (seed ${SEED}): ${describe(spec)}`,
      ...spec,
      script: script(spec),
    };
  });
}

/** `count` nginx 1.30 `sticky cookie` scenarios (ids h01…). */
export function generatedNativeScenarios(count: number): Scenario[] {
  const random = generator(SEED + 1);
  const draw: Draw = (choices) => choices[Math.floor(random() * choices.length)];
  return Array.from({ length: count }, (_, i) => {
    const secure = draw([true, false]);
    const sticky: StickySpec = {
      name: draw(["route", "srv", "SERVERID", "srv_id", "lb-1"]),
      domain: draw(DOMAINS),
      path: draw(PATHS),
      expires: draw([undefined, "30", "15m", "1h30m", "12h", "3d", "2w", "1M", "max"]),
      samesite: draw([undefined, "lax", "Lax", "strict", "Strict", ...(secure ? ["none"] : [])]),
      secure,
      httponly: draw([true, false]),
    };
    const spec = {
      servers: servers(draw, ["ip", "ip", "localhost", "zero-port", "ipv6"], true),
      sticky,
    };
    return {
      id: `h${String(i + 1).padStart(2, "0")}`,
      title: `generated (seed ${SEED + 1}): ${describe(spec)}`,
      ...spec,
      script: script(spec),
    };
  });
}

/** A one-line account of a generated upstream, for the test's name. */
function describe(spec: { servers: readonly ServerSpec[]; sticky: StickySpec }): string {
  const servers = spec.servers.map((s) =>
    [
      s.spelling ?? "ip",
      ...(s.weight === undefined ? [] : [`w${s.weight}`]),
      ...(s.down ? ["down"] : []),
      ...(s.route === undefined ? [] : [`route=${s.route}`]),
    ].join(" ")
  );
  const sticky = Object.entries(spec.sticky)
    .filter(([, v]) => v !== undefined && v !== false)
    .map(([k, v]) => (v === true ? k : `${k}=${v}`));
  return `[${servers.join(", ")}] ${sticky.join(" ") || "sticky;"}`;
}
