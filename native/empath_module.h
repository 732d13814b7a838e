/*
 * empath_module.h — the C ABI of Empath native modules (ABI version 1).
 *
 * A native module is a shared library that Empath loads with Deno.dlopen when
 * config.toml says:
 *
 *     [[modules]]
 *     path = "./modules/libexample.so"   # relative to the config file
 *     native = true                      # needs: deno run --allow-ffi (or -A)
 *     timeout = "5s"                     # per hook call, as for TypeScript modules
 *     on_error = "tempfail"              # or "accept"
 *     options = { deny_domain = "blocked.test" }
 *
 * EXPORTS
 *   Required: empath_module_abi_version() returning EMPATH_MODULE_ABI_VERSION.
 *   Optional: empath_module_init(), empath_module_close(), and any hook below.
 *   A hook that is not exported is simply not called.
 *
 * HOOKS (same hooks as the TypeScript API, snake_case with an "empath_" prefix)
 *   validation: empath_connect, empath_ehlo, empath_start_tls, empath_auth,
 *               empath_mail_from, empath_rcpt_to, empath_data
 *   events:     empath_connection_opened, empath_connection_closed,
 *               empath_message_received, empath_delivery_attempt,
 *               empath_delivery_success, empath_delivery_failure,
 *               empath_dns_lookup, empath_smtp_error
 *
 * CALLING CONVENTION
 *   int32_t hook(const char *context_json, char *reply, uint32_t reply_size);
 *
 *   context_json  NUL-terminated UTF-8 JSON, valid only during the call:
 *                   {"args": {...}, "hook": "rcptTo", "module": "name",
 *                    "messageId": "01J..." | null,
 *                    "session": {"id", "listener", "remote": {"address", "port"},
 *                                "helo", "tls": {"version", "cipher"}, "user"} | null,
 *                    "envelope": {"sender": "...", "recipients": [...]},
 *                    "metadata": {...}}
 *                 "args" always comes first. Its fields per hook are those of the
 *                 TypeScript API (README "Writing a module"), e.g. rcptTo:
 *                 {"address": "bob@example.com", "params": {...}}. For data:
 *                 {"id", "size", "path": "/var/spool/data/<id>", "headers": [[name, value], ...]}
 *                 — read the message from "path" (do not modify it).
 *   reply         a buffer of reply_size bytes (4096), zeroed; write a NUL-terminated string.
 *
 *   Return value:
 *     0          accept / no objection. The reply may hold a JSON object whose
 *                keys are merged into this module's metadata (stored with the
 *                message; see "metadata" in the context of later hooks), or "".
 *     400..499   defer: reply is the text, optionally starting with an
 *                enhanced status code: "4.7.1 Greylisted, try again later".
 *     500..599   reject: same, e.g. "5.1.1 No such user here".
 *     < 0        error: reply holds a message; Empath logs it and applies the
 *                module's on_error, exactly as for a throwing TypeScript hook.
 *   Event hooks may only return 0 (with optional metadata) or an error.
 *
 * THREADS AND TIME
 *   Hooks run on Deno's blocking thread pool, concurrently for different SMTP
 *   sessions and deliveries: keep global state read-only after init, or lock it.
 *   A hook that exceeds its time budget is treated as failed (on_error), but the
 *   thread keeps running it: hooks must not block indefinitely.
 */
#ifndef EMPATH_MODULE_H
#define EMPATH_MODULE_H

#include <stdint.h>

#define EMPATH_MODULE_ABI_VERSION 1u

#define EMPATH_ACCEPT 0
#define EMPATH_ERROR (-1)

#ifdef __cplusplus
extern "C" {
#endif

/* Required: must return EMPATH_MODULE_ABI_VERSION. */
uint32_t empath_module_abi_version(void);

/* Optional: called once at start-up with the module's options as a JSON object.
 * Return 0 on success; anything else stops Empath with a configuration error. */
int32_t empath_module_init(const char *options_json);

/* Optional: called once at shutdown. */
void empath_module_close(void);

/* The hook signature; declare the hooks you implement with it, e.g.
 *   EMPATH_HOOK(empath_rcpt_to);                                              */
typedef int32_t (*empath_hook_fn)(const char *context_json, char *reply, uint32_t reply_size);
#define EMPATH_HOOK(name) int32_t name(const char *context_json, char *reply, uint32_t reply_size)

#ifdef __cplusplus
}
#endif

#endif /* EMPATH_MODULE_H */
