"""A fault-injecting SMTP sink on aiosmtpd for Empath's reliability tests.

Usage: /usr/bin/python3 fault_sink.py --out DIR [--host H] [--port P] [--config FILE]
Prints "PORT <n>" once listening. Writes, one JSON object per line:

  DIR/received.jsonl  every message the sink accepted (or took and then dropped the
                      connection on, see "dot:lost"): {"key", "mail_from", "rcpt_tos",
                      "test_id", "tls", "conn", "attempt", "at"}
  DIR/events.jsonl    every transaction and every fault injected: {"conn", "key",
                      "attempt", "stage", "action", "at"}

A transaction's key is the local part of its MAIL FROM address (the null sender has
key ""); "attempt" counts the transactions seen for that key (1, 2, ...). "test_id" is
the value of the message's X-Test-Id header field.

Config (JSON), every key optional:

  "plans":  {"<key>": ["<stage>:<action>", ...]}  one entry per successive transaction
            of that key, then "ok" for ever. Stages and actions:
              mail:<reply> | rcpt:<reply> | data:<reply>   reply instead of 250/354,
                  e.g. "rcpt:452 4.5.3 Too many recipients"
              mail:stall | rcpt:stall | dot:stall         say nothing for stall_seconds, close
              mail:disconnect | rcpt:disconnect           close without a reply
              data:disconnect                             354, read a line of the message, close
              dot:<reply>                                 the message is read, then this reply
              dot:lost                                    the message is recorded as received,
                                                          then the connection closes without a
                                                          reply (the client must retry: a duplicate)
              ok                                          no fault
  "connections": ["greet:<reply>" | "greet:stall" | "starttls:broken" | "ok", ...]
            one entry per successive connection, then "ok".
  "stall_seconds": how long a stall lasts (default 30).
  "tls_cert", "tls_key": PEM files; STARTTLS is offered when given.
  "starttls": "ok" (default) or "broken": every STARTTLS gets "220" and then bytes that
            are not a TLS handshake, and the connection closes.
  "keep_data": true adds the message itself ("data") to received.jsonl.
"""
import argparse, asyncio, json, os, re, ssl, time

from aiosmtpd.smtp import SMTP

p = argparse.ArgumentParser()
p.add_argument("--host", default="127.0.0.1")
p.add_argument("--port", type=int, default=0)
p.add_argument("--out", required=True)
p.add_argument("--config")
args = p.parse_args()
config = json.load(open(args.config)) if args.config else {}
plans = {k: list(v) for k, v in config.get("plans", {}).items()}
conn_plan = list(config.get("connections", []))
stall_seconds = float(config.get("stall_seconds", 30))
broken_tls = config.get("starttls", "ok") == "broken"
keep_data = bool(config.get("keep_data"))

received_log = open(os.path.join(args.out, "received.jsonl"), "a", buffering=1)
events_log = open(os.path.join(args.out, "events.jsonl"), "a", buffering=1)
closes_log = open(os.path.join(args.out, "closes.jsonl"), "a", buffering=1)
attempts = {}
connections = 0
TEST_ID = re.compile(rb"(?im)^X-Test-Id:[ \t]*(\S+)")


def event(**fields):
    fields["at"] = time.time()
    events_log.write(json.dumps(fields) + "\n")


def key_of(address):
    if not address or address == "<>":
        return ""
    return address.rsplit("@", 1)[0]


class FaultSMTP(SMTP):
    """One session. Faults are looked up per connection (greeting, STARTTLS) and per
    transaction (the plan of the sender's key)."""

    def __init__(self, *a, **kw):
        global connections
        super().__init__(*a, **kw)
        connections += 1
        self.conn = connections
        self.conn_fault = conn_plan.pop(0) if conn_plan else "ok"
        self.fault = "ok"
        self.key = None
        self.attempt = 0

    def connection_lost(self, error):
        # A peer that dies with our reply unread in its socket makes its kernel answer with a
        # reset instead of a FIN: "reset" proves the client never read what we last wrote.
        reset = isinstance(error, ConnectionResetError)
        closes_log.write(json.dumps({"conn": self.conn, "how": "reset" if reset else "eof", "at": time.time()}) + "\n")
        return super().connection_lost(error)

    async def _die(self, delay=0.0):
        """Closes the connection (after `delay` seconds of silence) and never returns:
        the session's coroutine is cancelled when the connection is lost."""
        if delay:
            await asyncio.sleep(delay)
        if self.transport is not None:
            self.transport.close()  # flushes what was written (a 421, a garbage handshake) first
        await asyncio.sleep(3600)

    async def _handle_client(self):
        stage, _, action = self.conn_fault.partition(":")
        if stage == "greet":
            event(conn=self.conn, key=None, attempt=0, stage="greet", action=action)
            if action == "stall":
                return await self._die(stall_seconds)
            await self.push(action)
            return await self._die()
        return await super()._handle_client()

    async def smtp_STARTTLS(self, arg):
        if broken_tls or self.conn_fault == "starttls:broken":
            event(conn=self.conn, key=None, attempt=0, stage="starttls", action="broken")
            await self.push("220 2.0.0 Ready to start TLS")
            # Not a ServerHello: the client's handshake fails.
            self._writer.write(b"this is not a TLS handshake\r\n")
            await self._writer.drain()
            return await self._die()
        return await super().smtp_STARTTLS(arg)

    async def _fault_at(self, stage):
        """Applies the transaction's fault if it belongs to `stage`; returns a reply or None."""
        f_stage, _, action = self.fault.partition(":")
        if f_stage != stage:
            return None
        event(conn=self.conn, key=self.key, attempt=self.attempt, stage=stage, action=action)
        if action == "stall":
            await self._die(stall_seconds)
        if action == "disconnect" and stage != "data":
            await self._die()
        return action

    async def smtp_DATA(self, arg):
        if self.envelope.rcpt_tos and self.fault.startswith("data:"):
            action = await self._fault_at("data")
            if action == "disconnect":
                await self.push("354 End data with <CR><LF>.<CR><LF>")
                await self._reader.readuntil(b"\r\n")
                return await self._die()
            return await self.push(action)
        return await super().smtp_DATA(arg)


class Handler:
    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        server.key = key_of(address)
        server.attempt = attempts[server.key] = attempts.get(server.key, 0) + 1
        plan = plans.get(server.key, [])
        server.fault = plan[server.attempt - 1] if server.attempt <= len(plan) else "ok"
        event(conn=server.conn, key=server.key, attempt=server.attempt, stage="transaction", action=server.fault)
        reply = await server._fault_at("mail")
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = await server._fault_at("rcpt")
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.append(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or b""
        m = TEST_ID.search(data.split(b"\r\n\r\n", 1)[0])
        f_stage, _, action = server.fault.partition(":")
        lost = f_stage == "dot" and action == "lost"
        if f_stage == "dot" and not lost:
            return await server._fault_at("dot")
        record = {
            "key": server.key,
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "test_id": m.group(1).decode("ascii", "replace") if m else None,
            "tls": session.ssl is not None,
            "conn": server.conn,
            "attempt": server.attempt,
            "at": time.time(),
        }
        if keep_data:
            record["data"] = data.decode("utf-8", "replace")
        received_log.write(json.dumps(record) + "\n")
        if lost:
            await server._fault_at("dot")
            return await server._die()
        return "250 2.0.0 OK queued"


tls_context = None
if config.get("tls_cert"):
    tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_context.load_cert_chain(config["tls_cert"], config["tls_key"])


async def main():
    loop = asyncio.get_running_loop()
    handler = Handler()
    server = await loop.create_server(
        lambda: FaultSMTP(handler, hostname="fault-sink.test", tls_context=tls_context, require_starttls=False,
                          decode_data=False, enable_SMTPUTF8=True),
        host=args.host, port=args.port)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    await server.serve_forever()


try:
    asyncio.run(main())
except KeyboardInterrupt:
    pass
