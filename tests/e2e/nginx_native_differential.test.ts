/**
 * The same requests through real nginx 1.30.4 with its own `sticky cookie NAME …` (in nginx OSS
 * since 1.29.6) and through the gateway with `format = "nginx"`, configured from the same
 * nginx.conf (tests/nginx/native_scenarios.ts): cookie values (MD5 of the resolved address, or
 * the server's route), Set-Cookie bytes, which backend answers, fallback, round-robin order.
 * Every difference is zero or a documented deliberate one named at its step.
 *
 * nginx is built by tests/nginx/build.sh (make test-tools); without ../shared/reference/nginx-src
 * the tests are skipped, saying so. Until the gateway takes `format = "nginx"`, they are skipped
 * as pending, saying so.
 */
import { generatedNativeScenarios } from "../nginx/generated.ts";
import { NATIVE_SCENARIOS } from "../nginx/native_scenarios.ts";
import { differentialSuite } from "../nginx/suite.ts";

differentialSuite({
  title: 'nginx 1.30.4 `sticky cookie` vs the gateway (format = "nginx")',
  kind: "native",
  scenarios: [...NATIVE_SCENARIOS, ...generatedNativeScenarios(16)],
  requires: {
    what: `format = "nginx" in [upstreams.NAME.sticky]`,
    toml: `[upstreams.u]\nservers = ["127.0.0.1:9"]\n[upstreams.u.sticky]\nformat = "nginx"\n`,
  },
});
