/*
 * example_module.c — an Empath native module in C (see ../empath_module.h).
 *
 *   - rcptTo: refuses recipients at options.deny_domain with 550 5.7.1;
 *   - mailFrom: notes the sender in the message's metadata ({"native_sender": …});
 *   - data: reads the stored message and refuses it with 554 5.7.1 when it contains
 *     "NATIVE-REJECT"; otherwise notes its line count in the metadata.
 *
 * Build:  cc -shared -fPIC -O2 -I native -o libexample_module.so native/example/example_module.c
 * Config: [[modules]]
 *         path = "./libexample_module.so"
 *         native = true
 *         options = { deny_domain = "blocked.test" }
 *
 * The JSON handling is deliberately naive (find a key, copy a string) to keep the
 * example short; a real module would use a JSON parser such as cJSON.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "empath_module.h"

static char deny_domain[256] = "";

/* Copies the JSON string value of the first "key" in json into out; returns 0 if found. */
static int json_string(const char *json, const char *key, char *out, size_t size) {
  char pattern[64];
  snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
  const char *p = strstr(json, pattern);
  if (!p) return -1;
  p += strlen(pattern);
  size_t n = 0;
  while (*p && *p != '"' && n + 1 < size) {
    if (*p == '\\' && p[1]) p++; /* keep the escaped character (enough for paths and addresses) */
    out[n++] = *p++;
  }
  out[n] = '\0';
  return 0;
}

uint32_t empath_module_abi_version(void) { return EMPATH_MODULE_ABI_VERSION; }

int32_t empath_module_init(const char *options_json) {
  json_string(options_json, "deny_domain", deny_domain, sizeof deny_domain);
  return 0;
}

void empath_module_close(void) {}

EMPATH_HOOK(empath_mail_from) {
  char sender[512] = "";
  json_string(context_json, "address", sender, sizeof sender); /* "args" comes first */
  snprintf(reply, reply_size, "{\"native_sender\":\"%s\"}", sender);
  return EMPATH_ACCEPT;
}

EMPATH_HOOK(empath_rcpt_to) {
  char rcpt[512];
  if (json_string(context_json, "address", rcpt, sizeof rcpt) != 0) {
    snprintf(reply, reply_size, "no recipient address in the context");
    return EMPATH_ERROR;
  }
  const char *at = strrchr(rcpt, '@');
  if (deny_domain[0] && at && strcasecmp(at + 1, deny_domain) == 0) {
    snprintf(reply, reply_size, "5.7.1 Mail for %s is refused by a native module", deny_domain);
    return 550;
  }
  return EMPATH_ACCEPT;
}

EMPATH_HOOK(empath_data) {
  char path[1024];
  if (json_string(context_json, "path", path, sizeof path) != 0) {
    snprintf(reply, reply_size, "no message path in the context");
    return EMPATH_ERROR;
  }
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(reply, reply_size, "cannot open %s", path);
    return EMPATH_ERROR;
  }
  char line[1024];
  long lines = 0;
  int found = 0;
  while (fgets(line, sizeof line, f)) {
    lines++;
    if (strstr(line, "NATIVE-REJECT")) found = 1;
  }
  fclose(f);
  if (found) {
    snprintf(reply, reply_size, "5.7.1 Message refused by the native content check");
    return 554;
  }
  snprintf(reply, reply_size, "{\"lines\":%ld}", lines);
  return EMPATH_ACCEPT;
}
