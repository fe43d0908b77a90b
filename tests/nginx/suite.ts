/**
 * One differential suite: the scenarios' upstreams in one nginx.conf, real nginx on it, the
 * gateway on what the importer makes of that file (or the stand-in translation), and per
 * scenario one test that runs its script against nginx, then against the gateway, and compares.
 * Used by tests/e2e/nginx_differential.test.ts (the module) and
 * tests/e2e/nginx_native_differential.test.ts (nginx 1.30's own `sticky cookie`).
 *
 * @module
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import {
  runGateway,
  type RunningGateway,
  startGateway,
  stopAllGateways,
  writeTempFile,
} from "../support/gateway.ts";
import {
  type NginxKind,
  nginxSkipReason,
  type RunningNginx,
  startNginx,
  stopAllNginx,
} from "../support/nginx.ts";
import { type Backend, closeAllBackends, startBackend } from "./backend.ts";
import { compareRuns, runScript, show, type Step, validValue } from "./probe.ts";
import {
  backendHost,
  type Backends,
  httpBody,
  type Requirement,
  type Scenario,
} from "./scenario.ts";
import { importNginxConf, ownListener, scenarioToml, USE_IMPORTER } from "./translate.ts";

/** What one differential test file runs. */
export interface SuiteOptions {
  readonly title: string;
  readonly kind: NginxKind;
  readonly scenarios: readonly Scenario[];
  /** What the gateway must accept for every scenario of the suite (see Scenario.requires). */
  readonly requires?: Requirement;
}

/** Why the gateway cannot run `requirement` yet, or undefined when `--check` takes its config. */
async function missingFeature(requirement: Requirement): Promise<string | undefined> {
  const file = writeTempFile("requires.toml", requirement.toml);
  const result = await runGateway(["--config", file, "--check"]);
  if (result.code === 0) return undefined;
  const said = (result.stderr || result.stdout).trim().split("\n")[0];
  return `pending: the gateway does not take ${requirement.what} yet (--check: ${said})`;
}

/** Each scenario's pending note (or undefined), asking `--check` once per distinct config. */
async function pendingNotes(
  suite: SuiteOptions,
  scenarios: readonly Scenario[],
): Promise<Map<string, string | undefined>> {
  const asked = new Map<string, string | undefined>();
  const ask = async (requirement: Requirement | undefined) => {
    if (requirement === undefined) return undefined;
    if (!asked.has(requirement.toml)) {
      asked.set(requirement.toml, await missingFeature(requirement));
    }
    return asked.get(requirement.toml);
  };
  const notes = new Map<string, string | undefined>();
  for (const scenario of scenarios) {
    notes.set(scenario.id, (await ask(suite.requires)) ?? (await ask(scenario.requires)));
  }
  return notes;
}

/** Why `scenario` is skipped (printed, and in the test's name), or undefined. */
function skipNote(scenario: Scenario): string | undefined {
  const reason = nginxSkipReason() ?? scenario.pending;
  if (reason !== undefined) return reason;
  if (scenario.undocumented !== undefined && process.env.NGINX_DIFF_RUN_UNDOCUMENTED !== "1") {
    return `skipped: an undocumented difference from nginx, for the lead to decide: ${scenario.undocumented}`;
  }
  return undefined;
}

/** The steps nginx answered from a backend: a scenario where none did proves nothing. */
function answeredByBackend(steps: readonly Step[]): number {
  return steps.flatMap((step) => step.seen).filter((seen) => seen.backend !== "-").length;
}

/** Declares the suite (describe + one it per scenario). */
export function differentialSuite(suite: SuiteOptions): void {
  const runnable = suite.scenarios.filter((s) => skipNote(s) === undefined);
  const absent = nginxSkipReason();
  if (absent !== undefined) console.log(`${suite.title}: ${absent}`);
  describe(suite.title, () => {
    let nginx: RunningNginx | undefined;
    let gateway: RunningGateway | undefined;
    let pending = new Map<string, string | undefined>();
    const backends = new Map<string, Backends>();

    before(async () => {
      pending = await pendingNotes(suite, runnable);
      const ready = runnable.filter((s) => pending.get(s.id) === undefined);
      for (const scenario of runnable) {
        const note = pending.get(scenario.id);
        if (note !== undefined) console.log(`${suite.title} / ${scenario.id}: ${note}`);
      }
      if (ready.length === 0) return;
      for (const scenario of ready) {
        const own = new Map<string, Backend>();
        for (const spec of scenario.servers) {
          own.set(spec.backend, await startBackend(spec.backend, backendHost(spec)));
        }
        backends.set(scenario.id, own);
      }
      nginx = await startNginx(
        suite.kind,
        (port) => httpBody(ready, backends, suite.kind, port),
      );
      const toml = USE_IMPORTER
        ? (await importNginxConf(nginx.configFile)).toml
        : scenarioToml(ready, backends, suite.kind);
      gateway = await startGateway(ownListener(toml));
    });
    after(async () => {
      await stopAllGateways();
      await stopAllNginx();
      await closeAllBackends();
    });

    for (const scenario of suite.scenarios) {
      const note = skipNote(scenario);
      if (note !== undefined) {
        // The sources' absence is said once for the suite, a scenario's own note for it.
        if (note !== nginxSkipReason()) console.log(`${suite.title} / ${scenario.id}: ${note}`);
        it(`${scenario.id} ${scenario.title} [${note}]`, { skip: true }, () => {});
        continue;
      }
      it(`${scenario.id} ${scenario.title}`, async (t) => {
        const note = pending.get(scenario.id);
        if (note !== undefined) {
          t.skip(note);
          return;
        }
        const own = backends.get(scenario.id)!;
        const theirs = await runScript(scenario, own, suite.kind, "nginx", nginx!.port);
        const ours = await runScript(scenario, own, suite.kind, "gateway", gateway!.port);
        assert.ok(
          scenario.reachesNoBackend || answeredByBackend(theirs) > 0,
          `nginx never reached a backend:\n${theirs.map((s) => s.seen.map(show)).join("\n")}\n` +
            nginx!.errorLog(),
        );
        if (process.env.NGINX_DIFF_VERBOSE) {
          for (const [i, step] of theirs.entries()) {
            console.log(
              `${scenario.id} ${step.label}\n  nginx:   ${
                step.seen.map(show).join("\n           ")
              }` +
                `\n  gateway: ${ours[i]?.seen.map(show).join("\n           ")}`,
            );
          }
        }
        const problems = compareRuns(theirs, ours, {
          name: scenario.sticky.name ?? "route",
          value: (letter) => validValue(scenario, own, suite.kind, letter),
        });
        assert.equal(problems.join("\n\n"), "", `${scenario.id}: nginx and the gateway differ`);
      });
    }
  });
}
