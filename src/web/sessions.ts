/**
 * Console logins: a token (from `web.token_file`) or a user of `web.users_file`;
 * sessions live in memory (a restart logs everyone out), each with its own CSRF
 * token. The session cookie is HttpOnly, SameSite=Strict, scoped to /console.
 * @module
 */
import { randomToken, secretsMatch } from "./security.ts";

/** Who may log in. */
export interface Credentials {
  token?: string;
  users?: { verify(username: string, password: string): Promise<boolean> };
}

/** A logged-in operator. */
export interface WebSession {
  id: string;
  user: string;
  csrf: string;
  expires: number;
}

/** The cookie carrying the session id. */
export const SESSION_COOKIE = "empath_console";

/** The session store. */
export interface Sessions {
  /** Checks credentials; a new session, or undefined. An empty user means the token. */
  login(user: string, password: string): Promise<WebSession | undefined>;
  /** The live session named by the request's cookie. */
  current(req: Request): WebSession | undefined;
  logout(id: string): void;
  /** The Set-Cookie value for a session (or for clearing it). */
  cookie(session: WebSession | undefined): string;
}

/** Reads one cookie of a request. */
export function cookieOf(req: Request, name: string): string | undefined {
  for (const part of (req.headers.get("cookie") ?? "").split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return v.join("=");
  }
  return undefined;
}

/** Creates the session store; sessions last `ttlMs`. */
export function createSessions(credentials: Credentials, ttlMs: number): Sessions {
  const live = new Map<string, WebSession>();
  const prune = (now: number) => {
    for (const [id, s] of live) if (s.expires <= now) live.delete(id);
  };
  return {
    async login(user, password) {
      const ok = user
        ? !!credentials.users && await credentials.users.verify(user, password)
        : !!credentials.token && await secretsMatch(password, credentials.token);
      if (!ok) return undefined;
      prune(Date.now());
      const session = { id: randomToken(), user: user || "token", csrf: randomToken(), expires: Date.now() + ttlMs };
      live.set(session.id, session);
      return session;
    },
    current(req) {
      const id = cookieOf(req, SESSION_COOKIE);
      const s = id ? live.get(id) : undefined;
      if (!s || s.expires <= Date.now()) return undefined;
      return s;
    },
    logout(id) {
      live.delete(id);
    },
    cookie(session) {
      const base = `${SESSION_COOKIE}=${session?.id ?? ""}; Path=/console; HttpOnly; SameSite=Strict`;
      return session ? `${base}; Max-Age=${Math.floor(ttlMs / 1000)}` : `${base}; Max-Age=0`;
    },
  };
}
