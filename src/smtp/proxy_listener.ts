/**
 * The accept path of a listener with `proxy_protocol` networks: trusted peers send
 * a PROXY v1/v2 header first (read by {@link readProxyHeader}), whose client address
 * the session then uses; other peers are handed over as they are. On `smtps`
 * listeners the implicit TLS handshake follows the header.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type net from "node:net";
 * import { getLogger } from "@logtape/logtape";
 * import { SMTPServer } from "smtp-server";
 * import { parseNetworks } from "../util/cidr.ts";
 * import { createProxyListener } from "./proxy_listener.ts"; // @ts-ignore deno#26900
 *
 * const client = Promise.withResolvers<string>();
 * const server = new SMTPServer({
 *   name: "mx.example",
 *   authOptional: true,
 *   disabledCommands: ["STARTTLS"],
 *   onConnect: (session, done) => (client.resolve(session.remoteAddress), done()),
 * });
 * const networks = parseNetworks(["127.0.0.1/32"]); // the load balancer
 * const accept = createProxyListener({ server, networks, secure: false, handshakeMs: () => 10_000, log: getLogger(["empath"]), name: "mx" });
 * await new Promise<void>((resolve) => accept.listen(0, "127.0.0.1", resolve));
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: (accept.address() as net.AddressInfo).port });
 * await conn.write(new TextEncoder().encode("PROXY TCP4 192.0.2.1 198.51.100.2 5123 25\r\n"));
 * assert.equal(await client.promise, "192.0.2.1"); // the session sees the real client
 * conn.close();
 * await new Promise((resolve) => accept.close(resolve));
 * ```
 * @module
 */
import net from "node:net";
import type { Logger } from "@logtape/logtape";
import type { SMTPServer } from "smtp-server";
import { matchesAny, type Network } from "../util/cidr.ts";
import { readProxyHeader } from "./proxy.ts";
import { type ConnectionOptions, upgradeToTls } from "./smtp_server_private.ts";

/** What the PROXY accept path needs. */
export interface ProxyListenerOptions {
  /** The SMTP server sessions are handed to. */
  server: SMTPServer;
  /** Peers trusted to send a PROXY header. */
  networks: Network[];
  /** Implicit TLS (smtps) after the header. */
  secure: boolean;
  /** How long a trusted peer has to send the whole header (read per connection). */
  handshakeMs: () => number;
  log: Logger;
  /** Listener name, for logs. */
  name: string;
}

/** A net.Server that reads PROXY headers from trusted peers and hands every connection to `server`. */
export function createProxyListener(options: ProxyListenerOptions): net.Server {
  const { server, networks, secure, log, name } = options;
  const proxyServer = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on("error", () => {});
    const peer = socket.remoteAddress ?? "";
    const handOver = (opts: ConnectionOptions) => {
      if (!secure) return server.connect(socket, opts);
      // Implicit TLS after the PROXY header: reuse smtp-server's handshake.
      upgradeToTls(
        server,
        socket,
        (err, tlsSocket) => err || !tlsSocket ? socket.destroy() : server.connect(tlsSocket, opts),
      );
    };
    if (!matchesAny(networks, peer)) {
      return handOver({});
    }
    readProxyHeader(socket, options.handshakeMs()).then((info) => {
      const opts = info.command === "proxy" && info.sourceAddress
        ? { remoteAddress: info.sourceAddress, remotePort: info.sourcePort }
        : {};
      log.debug("PROXY v{v} from {proxy}: client {client}", {
        v: info.version,
        proxy: peer,
        client: info.sourceAddress ?? "(local)",
      });
      handOver(opts);
    }, (err: Error) => {
      log.info("dropping connection from {peer}: bad PROXY header ({error})", { peer, error: err.message });
      socket.destroy();
    });
  });
  proxyServer.on("error", (err) => log.error("listener {name}: {error}", { name, error: err.message }));
  return proxyServer;
}
