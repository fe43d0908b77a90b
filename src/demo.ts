/**
 * `--demo`: tiny upstream servers on the config's loopback addresses, each answering with its own
 * address, so stickiness shows with curl.
 *
 * @module
 */
import { type GatewayConfig, isLoopback } from "./config/mod.ts";
import type { Listener, Runtime } from "./runtime/runtime.ts";

/** Starts one demo upstream per loopback address of the config (not `down`), each once. */
export async function startDemoUpstreams(
  config: GatewayConfig,
  runtime: Runtime,
): Promise<Listener[]> {
  const listeners: Listener[] = [];
  const started = new Set<string>();
  for (const upstream of config.upstreams.values()) {
    for (const server of upstream.servers) {
      const { address } = server;
      if (
        server.down || !isLoopback(address.host) || started.has(`${address.host}:${address.port}`)
      ) continue;
      started.add(`${address.host}:${address.port}`);
      let count = 0;
      listeners.push(
        await runtime.listen(
          address,
          () =>
            new Response(`hello from ${address.text} (request ${++count} here)\n`, {
              headers: {
                "content-type": "text/plain; charset=utf-8",
                "x-demo-upstream": address.text,
              },
            }),
        ),
      );
    }
  }
  return listeners;
}
