/**
 * The `[web]` section of config.toml: the operator console on the HTTP listener.
 * @module
 */
import { z } from "zod";
import { duration } from "./types.ts";

/** `[web]`: off by default; when on it needs a token file or a users file. */
export const webConfig = z.strictObject({
  enabled: z.boolean().default(false),
  /** A file holding the console's login token (one line). */
  token_file: z.string().optional(),
  /** A users file (the `empath --hash-password` format) for per-operator logins. */
  users_file: z.string().optional(),
  /** Host header values accepted besides loopback names (DNS rebinding guard), e.g. "mx1.example.net:9425". */
  allowed_hosts: z.array(z.string().min(1)).default([]),
  /** The console refuses to start on a non-loopback [http] address unless this is true. */
  allow_remote: z.boolean().default(false),
  /** How long a login lasts. */
  session_ttl: duration.default(8 * 3_600_000),
}).prefault({});

/** The validated `[web]` section. */
export type WebConfig = z.output<typeof webConfig>;
