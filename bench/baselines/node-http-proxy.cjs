// Peer for the bench: node-http-proxy (npm "http-proxy") on Node, round robin over the
// upstreams with a keep-alive agent (its fair configuration), no stickiness.
//   HTTP_PROXY_MODULE=/path/to/node_modules/http-proxy LISTEN=127.0.0.1:28080 \
//   UPSTREAMS=127.0.0.1:28101,127.0.0.1:28102 SINK=127.0.0.1:28110 node bench/baselines/node-http-proxy.cjs
"use strict";
const http = require("node:http");
const httpProxy = require(process.env.HTTP_PROXY_MODULE || "http-proxy");

const [host, port] = (process.env.LISTEN || "127.0.0.1:28080").split(":");
const upstreams = (process.env.UPSTREAMS || "127.0.0.1:28101").split(",").map((a) => `http://${a}`);
const sink = `http://${process.env.SINK || upstreams[0].slice(7)}`;
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const proxy = httpProxy.createProxyServer({ agent, xfwd: true });
proxy.on("error", (_error, _req, res) => {
  if (!res.headersSent) res.writeHead(502);
  res.end();
});
let next = 0;
http.createServer((req, res) => {
  const target = req.url.startsWith("/upload") ? sink : upstreams[next++ % upstreams.length];
  proxy.web(req, res, { target });
}).listen(Number(port), host, () => console.log(`node-http-proxy on ${host}:${port}`));
process.on("SIGTERM", () => process.exit(0));
