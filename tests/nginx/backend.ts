/**
 * The backends of the differential tests: real HTTP servers on 127.0.0.1 that say who they are
 * (`x-upstream: NAME` and the name as the body). They look at the end of the path only, since
 * nginx and the gateway both pass `/SCENARIO/…` on as it came:
 *
 *   …/set-cookie    sets a cookie of the sticky name itself (`route`, `Route`, the scenario's
 *                   `?name=`), and two others
 *   …/status/NNN    answers with that status
 *   anything else   200
 *
 * A request whose body is not the length it announced gets 400 (a retried POST lost its body).
 *
 * @module
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** A running backend. */
export interface Backend {
  readonly name: string;
  readonly port: number;
  /** Stops listening and drops its connections: the port now refuses. */
  close(): Promise<void>;
  /** Listens again on the same port. */
  restart(): Promise<void>;
}

const running = new Set<Backend>();

function answer(
  name: string,
  req: IncomingMessage,
  res: ServerResponse,
  received: number,
): void {
  const url = new URL(req.url ?? "/", "http://backend");
  res.setHeader("x-upstream", name);
  res.setHeader("content-type", "text/plain");
  const status = /\/status\/(\d{3})$/.exec(url.pathname);
  if (url.pathname.endsWith("/set-cookie")) {
    const sticky = url.searchParams.get("name") ?? "route";
    res.setHeader("set-cookie", [
      `${sticky}=from-backend; Path=/`,
      "session=s1; Path=/; HttpOnly",
      `${sticky.toUpperCase()}=upper-from-backend`,
    ]);
  }
  const announced = Number(req.headers["content-length"] ?? 0);
  if (received !== announced) {
    res.writeHead(400);
    res.end(`${name}: ${received} of ${announced} body bytes`);
    return;
  }
  res.writeHead(status === null ? 200 : Number(status[1]));
  res.end(name);
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Starts backend `name` on a free port of `host` (127.0.0.1, or ::1). */
export async function startBackend(name: string, host = "127.0.0.1"): Promise<Backend> {
  const sockets = new Set<Socket>();
  const make = () => {
    const server = createServer((req, res) => {
      let received = 0;
      req.on("data", (chunk: Uint8Array) => (received += chunk.length));
      req.on("end", () => answer(name, req, res, received));
    });
    server.on("connection", (socket: Socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    });
    return server;
  };
  let server = make();
  const port = await listen(server, host, 0);
  let listening = true;
  const backend: Backend = {
    name,
    port,
    async close() {
      if (!listening) return;
      listening = false;
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    async restart() {
      if (listening) return;
      server = make();
      await listen(server, host, port);
      listening = true;
    },
  };
  running.add(backend);
  return backend;
}

/** Closes every backend (for after hooks). */
export async function closeAllBackends(): Promise<void> {
  await Promise.all([...running].map((backend) => backend.close()));
  running.clear();
}
