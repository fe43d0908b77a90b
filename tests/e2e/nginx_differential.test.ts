/**
 * The same requests through real nginx 1.26.3 with nginx-sticky-module-ng v1.3.0 and through
 * the gateway, configured from the same nginx.conf (tests/nginx/module_scenarios.ts): cookie
 * values, Set-Cookie bytes, which backend answers, re-issue or not, fallback, round-robin order
 * and shares. Every difference is zero or a documented deliberate one named at its step
 * (tests/nginx/differences.ts, README "Migrating from nginx sticky").
 *
 * nginx is built by tests/nginx/build.sh (make test-tools); without ../shared/reference/nginx-src
 * the tests are skipped, saying so.
 */
import { generatedModuleScenarios } from "../nginx/generated.ts";
import { MODULE_SCENARIOS } from "../nginx/module_scenarios.ts";
import { differentialSuite } from "../nginx/suite.ts";

differentialSuite({
  title: "nginx 1.26.3 + sticky module v1.3.0 vs the gateway",
  kind: "module",
  scenarios: [...MODULE_SCENARIOS, ...generatedModuleScenarios(21)],
});
