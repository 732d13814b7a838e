/**
 * An example Empath module (the one in README "Writing a module"):
 *
 * - refuses recipients in `blocked_domains` at RCPT TO (550 5.7.1);
 * - tags mail from `vip_domains` at MAIL FROM: metadata `vip = true` and a header `X-VIP: yes`;
 * - at end of DATA, requires a Subject and counts the body's lines by streaming it;
 * - logs when a VIP message is delivered — possibly hours later, after restarts,
 *   because metadata is stored with the message.
 *
 * Config:
 *
 *     [[modules]]
 *     path = "./modules/example.ts"
 *     options = { vip_domains = ["example.com"], blocked_domains = ["spam.test"] }
 */
import { defineModule, reject } from "../src/modules/mod.ts";

interface Options {
  vip_domains?: string[];
  blocked_domains?: string[];
}

const domainOf = (address: string) => address.slice(address.lastIndexOf("@") + 1).toLowerCase();

export default defineModule<Options>(({ options, log }) => {
  // Runs once at start-up: check options here, so mistakes stop the daemon at once.
  const vip = new Set((options.vip_domains ?? []).map((d) => d.toLowerCase()));
  const blocked = new Set((options.blocked_domains ?? []).map((d) => d.toLowerCase()));

  return {
    mailFrom(ctx, { address }) {
      if (vip.has(domainOf(address))) {
        ctx.metadata.vip = true; // stored with the message, seen again in delivery hooks
        ctx.addHeader("X-VIP", "yes");
      }
      return undefined; // no objection
    },

    rcptTo(_ctx, { address }) {
      const domain = domainOf(address);
      if (blocked.has(domain)) return reject(`We do not accept mail for ${domain}`, 550, "5.7.1");
      return undefined;
    },

    async data(ctx, message) {
      if (!message.headers.has("Subject")) return reject("A Subject header is required here", 550, "5.6.0");
      let lines = 0;
      for await (const chunk of message.body()) {
        if (ctx.signal.aborted) break; // our time budget ran out: stop reading
        for (const byte of chunk) if (byte === 0x0a) lines++;
      }
      ctx.metadata.bodyLines = lines;
      return undefined;
    },

    deliverySuccess(ctx, { recipients, server }) {
      if (ctx.metadata.vip) {
        log.info("VIP message {id} delivered to {recipients} via {server}", {
          id: ctx.messageId,
          recipients,
          server,
        });
      }
    },

    deliveryFailure(ctx, { recipients, permanent, reason }) {
      if (ctx.metadata.vip && permanent) {
        log.warning("VIP message {id} failed for {recipients}: {reason}", {
          id: ctx.messageId,
          recipients,
          reason,
        });
      }
    },
  };
});
