/**
 * The system's recursive resolvers, from /etc/resolv.conf (read once, then kept).
 * @module
 */

let cached: Promise<{ host: string; port: number }[]> | undefined;

/** `nameserver` lines of /etc/resolv.conf, in order (port 53); empty when there are none. */
export function readNameServers(path = "/etc/resolv.conf"): Promise<{ host: string; port: number }[]> {
  cached ??= Deno.readTextFile(path).then(
    (text) =>
      text.split("\n")
        .map((line) => /^\s*nameserver\s+(\S+)/.exec(line)?.[1])
        .filter((h): h is string => !!h)
        .map((host) => ({ host: host.replace(/%.*$/, ""), port: 53 })),
    () => [],
  );
  return cached;
}
