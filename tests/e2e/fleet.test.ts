/**
 * A fleet that agrees (issue 13, point 3): three gateway processes on the same config behind a
 * real L4 balancer (HAProxy, TCP mode, round robin per connection), four real upstream servers
 * that say who they are, and cookie-jar clients that open a new connection for every request, so
 * their consecutive requests reach different instances (checked in the instances' access logs and
 * /metrics, not assumed). With no state shared between the instances:
 *
 * - every client stays on its backend whichever instance serves it, and the instances really
 *   were mixed (each client served by several instances, each instance by cookies it never set);
 * - SIGKILL of one instance moves no session; a request inside the killed instance at that moment
 *   may fail (counted and printed), none started after it does (HAProxy retries a refused
 *   connection on another instance until its checks take the dead one out);
 * - a config change rolled instance by instance through reloads (a cookie attribute, then a new
 *   server: first as `drain`, then `ready`) moves no session, and half-way through every
 *   instance still routes every existing cookie to the same server, new ones included.
 *
 * The scenario is a function of the `[upstreams.app.sticky]` table, so that it runs with other
 * sticky configs too (signed tokens with `max_idle`, once they exist). Skipped, saying why, when
 * HAProxy is missing and tests/fleet/install.sh cannot install it.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { stopAllGateways } from "../support/gateway.ts";
import {
  type Balancer,
  type Exchange,
  type Instance,
  JarClient,
  locateHaproxy,
  reloadInstance,
  requestsCounted,
  runClients,
  servingInstances,
  startBalancer,
  startInstances,
  stopAllBalancers,
} from "../support/fleet.ts";
import { closeAllUpstreams, type NamedUpstream, startNamedUpstream } from "../support/upstreams.ts";

/** One sticky config the fleet scenario runs with. */
interface FleetScenario {
  /** Shown in the test names. */
  readonly label: string;
  /** The body of `[upstreams.app.sticky]`. */
  readonly sticky: string;
  /** The same with the attribute change the rollout makes (default: `httponly = true` added). */
  readonly rolledSticky?: string;
  /** What a Set-Cookie carries once that change is in (default: `; HttpOnly`). */
  readonly rolledMark?: RegExp;
}

const haproxy = locateHaproxy();
const skip = "reason" in haproxy ? haproxy.reason : undefined;
// Neither runner prints a skip's reason: say it here.
if (skip !== undefined) console.warn(`tests/e2e/fleet.test.ts: ${skip}`);

/** The cookie's name in a sticky table (`name = "…"`, else the default `route`). */
function cookieNameOf(sticky: string): string {
  return /^\s*name\s*=\s*"([^"]+)"/m.exec(sticky)?.[1] ?? "route";
}

/**
 * The config every instance runs: admin and access log on (stdout, read by the test), upstream
 * `app` with `servers` (`"D drain"` = server D in state drain) and the given sticky table.
 * `listen` and `[admin] listen` are port 0, so the file is the same for every instance.
 */
function fleetConfig(
  upstreams: Record<string, NamedUpstream>,
  servers: readonly string[],
  sticky: string,
): string {
  const entries = servers.map((spec) => {
    const [name, state] = spec.split(" ");
    const extra = state === undefined ? "" : `, state = "${state}"`;
    return `  { address = "${upstreams[name].address}", id = "${name}"${extra} },`;
  });
  return `[admin]
listen = "127.0.0.1:0"

[log]
access = "stdout"

[upstreams.app]
servers = [
${entries.join("\n")}
]

[upstreams.app.sticky]
${sticky}
`;
}

/** Registers the fleet tests for one sticky config. */
function describeFleet(scenario: FleetScenario): void {
  const cookieName = cookieNameOf(scenario.sticky);
  const rolledSticky = scenario.rolledSticky ?? `${scenario.sticky}\nhttponly = true`;
  const rolledMark = scenario.rolledMark ?? /; HttpOnly/;
  let upstreams: Record<string, NamedUpstream>;
  let instances: Instance[];
  let balancer: Balancer;
  let clientSeq = 0;

  const config = (servers: readonly string[], sticky: string) =>
    fleetConfig(upstreams, servers, sticky);
  const newClients = (count: number) =>
    Array.from({ length: count }, () => new JarClient(`c${++clientSeq}`, cookieName));
  /** Every client's first request through the balancer: each gets its cookie and backend. */
  const establish = async (clients: readonly JarClient[]) => {
    await Promise.all(clients.map((c) => c.request(balancer.port)));
    for (const client of clients) {
      assert.ok(client.backend !== undefined, `${client.id}: ${client.exchanges[0].failure}`);
      assert.ok(client.cookie !== undefined, `${client.id}: no ${cookieName} cookie`);
    }
  };
  /** A request with `client`'s cookie straight to one instance, not through the balancer. */
  const probe = async (client: JarClient, instance: Instance) => {
    const copy = new JarClient(`${client.id}-probe-${instance.name}`, cookieName);
    copy.cookie = client.cookie;
    return await copy.request(instance.gw.port);
  };
  /** Asserts that every instance sends every client's cookie to the client's backend. */
  const assertAgreement = async (clients: readonly JarClient[], when: string) => {
    for (const client of clients) {
      for (const instance of instances) {
        const answer = await probe(client, instance);
        assert.equal(answer.failure, undefined, `${when}: ${client.id} on ${instance.name}`);
        assert.equal(
          answer.servedBy,
          client.backend,
          `${when}: ${instance.name} sends ${client.id}'s cookie (${client.cookie}) elsewhere`,
        );
      }
    }
  };

  describe(`a fleet of three instances behind HAProxy (${scenario.label})`, () => {
    before(async () => {
      if (!("binary" in haproxy)) return;
      const [A, B, C, D] = await Promise.all(
        ["A", "B", "C", "D"].map((n) => startNamedUpstream(n)),
      );
      upstreams = { A, B, C, D };
      instances = await startInstances(config(["A", "B", "C"], scenario.sticky), 3);
      balancer = await startBalancer(
        haproxy.binary,
        instances.map((i) => ({ name: i.name, port: i.gw.port })),
      );
    });
    after(async () => {
      await stopAllBalancers();
      await stopAllGateways();
      await closeAllUpstreams();
    });

    it("every client stays on its backend whichever instance serves it", { skip }, async () => {
      const countedBefore = await Promise.all(instances.map(requestsCounted));
      // 10 clients (not a multiple of 3: in lockstep each one still rotates over the instances).
      const clients = newClients(10);
      const perClient = 9;
      await Promise.all(clients.map(async (client) => {
        for (let i = 0; i < perClient; i++) await client.request(balancer.port);
      }));
      const exchanges = clients.flatMap((c) => c.exchanges);
      assert.deepEqual(exchanges.filter((e) => e.failure !== undefined), [], "no failed request");
      for (const client of clients) {
        assert.deepEqual(client.moves().map((e) => e.servedBy), [], `${client.id} moved`);
      }
      assert.equal(new Set(clients.map((c) => c.backend)).size, 3, "new clients on A, B and C");

      // Which instance served what, from their access logs (X-Request-Id is logged).
      const servedBy = await servingInstances(instances, exchanges.map((e) => e.requestId));
      let elsewhere = 0;
      let switches = 0;
      for (const client of clients) {
        const path = client.exchanges.map((e) => servedBy.get(e.requestId)!);
        assert.ok(new Set(path).size >= 2, `${client.id} reached one instance only: ${path}`);
        elsewhere += path.slice(1).filter((name) => name !== path[0]).length;
        switches += path.slice(1).filter((name, i) => name !== path[i]).length;
      }
      const perInstance = instances.map((i) =>
        [...servedBy.values()].filter((name) => name === i.name).length
      );
      const counted = (await Promise.all(instances.map(requestsCounted)))
        .map((n, i) => n - countedBefore[i]);
      const pinned = clients.length * (perClient - 1);
      console.log(
        `fleet: ${exchanges.length} requests, per instance (access log) ${
          perInstance.join("/")
        }, ` +
          `(/metrics) ${counted.join("/")}; ${elsewhere} of ${pinned} pinned requests were ` +
          `served by another instance than the one that set the cookie; ${switches} of ${pinned} ` +
          `consecutive requests changed instance`,
      );
      assert.deepEqual(counted, perInstance, "/metrics counts what the access logs show");
      for (const n of perInstance) assert.ok(n >= exchanges.length / 6, `unmixed: ${perInstance}`);
      assert.ok(switches >= pinned / 3, `consecutive requests changed instance ${switches} times`);
    });

    it(
      "a config change rolled instance by instance moves no session, and half-way through every instance agrees on every cookie",
      { skip },
      async () => {
        const clients = newClients(8);
        await establish(clients);
        const traffic = runClients(clients, balancer.port, 20);
        const roll = async (
          servers: readonly string[],
          halfWay: (done: number) => Promise<void>,
        ) => {
          for (const [i, instance] of instances.entries()) {
            const reloaded = await reloadInstance(instance, config(servers, rolledSticky));
            assert.equal(
              reloaded.status,
              200,
              `${instance.name}: ${JSON.stringify(reloaded.body)}`,
            );
            if (i < instances.length - 1) await halfWay(i + 1);
          }
        };
        /** A new client's first answer straight from one instance. */
        const fresh = (instance: Instance) => newClients(1)[0].request(instance.gw.port);

        // Step 1: the cookie attribute changes, D is added in drain (it takes no new client, so
        // no instance that does not know D yet is ever shown a cookie naming D).
        await roll(["A", "B", "C", "D drain"], async (done) => {
          await assertAgreement(clients, `step 1, ${done} of 3 reloaded`);
          const updated = await fresh(instances[0]);
          const old = await fresh(instances[done]);
          assert.match(updated.setCookie ?? "", rolledMark, "a reloaded instance: new attribute");
          assert.doesNotMatch(old.setCookie ?? "", rolledMark, "an instance not reloaded yet");
          assert.notEqual(updated.servedBy, "D", "D is draining: no new client");
        });
        // Step 2: D becomes ready. Where it already is, it takes new clients; the instances
        // that still have it draining serve those clients there too.
        const onD: JarClient[] = [];
        await roll(["A", "B", "C", "D"], async (done) => {
          for (let tries = 0; onD.length === 0 && tries < 8; tries++) {
            const client = newClients(1)[0];
            await client.request(instances[0].gw.port);
            if (client.backend === "D") onD.push(client);
          }
          assert.equal(onD.length, 1, "a reloaded instance sends new clients to D");
          await assertAgreement([...clients, ...onD], `step 2, ${done} of 3 reloaded`);
        });
        await traffic.stop();
        await assertAgreement([...clients, ...onD], "rolled out");

        const exchanges = clients.flatMap((c) => c.exchanges);
        assert.deepEqual(exchanges.filter((e) => e.failure !== undefined), [], "no failed request");
        for (const client of clients) {
          assert.deepEqual(client.moves().map((e) => e.servedBy), [], `${client.id} moved`);
        }
        // The new attribute reaches the clients through whichever instance serves them, and D
        // gets new clients (12: four per instance, whose round robin covers A, B, C and D).
        const later = newClients(12);
        await establish(later);
        for (const client of later) {
          assert.match(client.exchanges[0].setCookie!, rolledMark, `${client.id}'s cookie`);
        }
        assert.ok(later.some((c) => c.backend === "D"), "D takes new clients through the fleet");
        console.log(
          `fleet: rollout under ${exchanges.length} requests of ${clients.length} clients, ` +
            `no failure, no move`,
        );
      },
    );

    it("killing one instance (SIGKILL) moves no session", { skip }, async () => {
      const clients = newClients(8);
      await establish(clients);
      const traffic = runClients(clients, balancer.port, 10);
      await new Promise((resolve) => setTimeout(resolve, 400));
      const victim = instances[1];
      const killedAt = performance.now();
      await victim.gw.stop("SIGKILL");
      const deadAt = performance.now();
      await balancer.waitFor(victim.name, "DOWN");
      const detectedAt = performance.now();
      await new Promise((resolve) => setTimeout(resolve, 600));
      await traffic.stop();

      const exchanges = clients.flatMap((c) => c.exchanges);
      const failed = exchanges.filter((e) => e.failure !== undefined);
      const startedAfter = (t: number) => exchanges.filter((e) => e.start > t);
      const inWindow = exchanges.filter((e) => e.start > deadAt && e.start <= detectedAt);
      const before = failed.filter((e) => e.start < killedAt).length;
      const dying = failed.filter((e) => e.start >= killedAt && e.start <= deadAt).length;
      console.log(
        `fleet: SIGKILL of ${victim.name} (gone ${Math.round(deadAt - killedAt)} ms later): ` +
          `${failed.length} request(s) failed: ${before} sent before the signal, ${dying} while ` +
          `the process was being killed, ${failed.length - before - dying} after; they ended ` +
          `${failed.map((e) => `+${Math.round(e.end - killedAt)} ms`).join(", ") || "-"} ` +
          `(${[...new Set(failed.map((e) => e.failure))].join("; ") || "none"}); ` +
          `${inWindow.length} started before HAProxy took it out ` +
          `(${Math.round(detectedAt - deadAt)} ms), ${startedAfter(detectedAt).length} after`,
      );
      for (const client of clients) {
        assert.deepEqual(client.moves().map((e) => e.servedBy), [], `${client.id} moved`);
      }
      const late = (e: Exchange) => `${e.requestId} (+${Math.round(e.start - deadAt)} ms)`;
      assert.deepEqual(
        failed.filter((e) => e.start > deadAt).map(late),
        [],
        "a request started after the kill failed",
      );
      assert.ok(failed.every((e) => e.start <= deadAt && e.end >= killedAt));
      assert.ok(startedAfter(detectedAt).length >= clients.length, "traffic went on after");
      // The survivors took over, and still share the clients among them.
      const ids = startedAfter(detectedAt).map((e) => e.requestId);
      const survivors = instances.filter((i) => i !== victim);
      const servedBy = await servingInstances(survivors, ids);
      for (const survivor of survivors) {
        assert.ok([...servedBy.values()].includes(survivor.name), `${survivor.name} served none`);
      }
    });
  });
}

describeFleet({ label: "cookie = md5 of the address", sticky: `name = "route"` });
