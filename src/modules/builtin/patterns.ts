/**
 * Address patterns for the allow/deny lists (case-insensitive):
 *
 * | pattern             | matches                                   |
 * | ------------------- | ----------------------------------------- |
 * | `alice@example.com` | that address                              |
 * | `@example.com`      | any address at example.com                |
 * | `@*.example.com`    | any address at a subdomain of example.com |
 * | `alice@`            | local part alice at any domain            |
 * | `<>`                | the null sender (bounces)                 |
 * @module
 */

/** Is `pattern` one of the accepted forms? */
export function isPattern(pattern: string): boolean {
  return pattern === "<>" || /^[^@\s]*@[^@\s]*$/.test(pattern) && pattern !== "@";
}

/** Compiles patterns into one matcher. */
export function compilePatterns(patterns: readonly string[]): (address: string) => boolean {
  const exact = new Set<string>();
  const domains = new Set<string>();
  const locals = new Set<string>();
  const suffixes: string[] = [];
  let nullSender = false;
  for (const raw of patterns) {
    const p = raw.trim().toLowerCase();
    if (p === "<>") nullSender = true;
    else if (p.startsWith("@*.")) suffixes.push(p.slice(2)); // ".example.com"
    else if (p.startsWith("@")) domains.add(p.slice(1));
    else if (p.endsWith("@")) locals.add(p.slice(0, -1));
    else exact.add(p);
  }
  return (address) => {
    const a = address.toLowerCase();
    if (a === "") return nullSender;
    if (exact.has(a)) return true;
    const at = a.lastIndexOf("@");
    const domain = at >= 0 ? a.slice(at + 1).replace(/\.$/, "") : "";
    const local = at >= 0 ? a.slice(0, at) : a;
    return domains.has(domain) || locals.has(local) || suffixes.some((s) => domain.endsWith(s));
  };
}
