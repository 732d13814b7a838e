/**
 * The accept path of a listener with `proxy_protocol` networks: trusted peers send
 * a PROXY v1/v2 header first (read by {@link readProxyHeader}), whose client address
 * the session then uses; other peers are handed over as they are. On `smtps`
 * listeners the implicit TLS handshake follows the header.
 *
 * @example
 * ```ts
 * const accept = createProxyListener({ server, networks, secure: false, handshakeMs: () => 10_000, log, name });
 * accept.listen(25);
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
