"""A scriptable SMTP sink on aiosmtpd for Empath's delivery tests.

Usage: /usr/bin/python3 script_sink.py --host 127.0.0.1 --port 0 --out DIR [--script FILE]
       [--tls-cert C --tls-key K] [--no-dsn] [--no-smtputf8]
Prints "PORT <n>" once listening. Each accepted message is written to DIR as JSON:
{"mail_from", "rcpt_tos", "mail_options", "rcpt_options", "data", "tls", "peer"}.
The script (JSON) sets replies: {"rcpt": {"addr": "451 4.2.0 later"}, "data": ["451 4.3.0 busy", "250 ok"],
"rcpt_once": {"addr": "451 …"}} — "data" replies are used in order, then 250; "rcpt_once" applies to the
first RCPT of that address only.
"""
import argparse, asyncio, json, os, re, ssl, sys, time, uuid
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

p = argparse.ArgumentParser()
p.add_argument("--host", default="127.0.0.1")
p.add_argument("--port", type=int, default=0)
p.add_argument("--out", required=True)
p.add_argument("--script")
p.add_argument("--tls-cert")
p.add_argument("--tls-key")
p.add_argument("--no-dsn", action="store_true")
p.add_argument("--no-smtputf8", action="store_true")
args = p.parse_args()
script = json.load(open(args.script)) if args.script else {}
data_replies = list(script.get("data", []))
rcpt_once = dict(script.get("rcpt_once", {}))


class Handler:
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if not args.no_dsn:
            responses.insert(-1, "250-DSN")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in rcpt_once:
            return rcpt_once.pop(address)
        reply = script.get("rcpt", {}).get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.append(list(rcpt_options) + list(getattr(server, "_rcpt_dsn", [])))
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if data_replies:
            reply = data_replies.pop(0)
            if not reply.startswith("2"):
                return reply
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "mail_options": envelope.mail_options,
            "rcpt_options": envelope.rcpt_options,
            "data": envelope.original_content.decode("utf-8", "replace"),
            "tls": session.ssl is not None,
            "peer": list(session.peer),
            "received_at": time.time(),
        }
        name = os.path.join(args.out, f"{time.time():.6f}-{uuid.uuid4().hex}.json")
        with open(name + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(name + ".tmp", name)
        return "250 2.0.0 OK queued"


DSN_PARAM = re.compile(r"(?i)^(NOTIFY|ORCPT|RET|ENVID)=")


class DsnSMTP(SMTP):
    """aiosmtpd refuses parameters it does not know; this one takes the RFC 3461 ones when
    DSN is advertised and records them (rcpt_options / mail_options) like a DSN-capable MTA."""

    def _split(self, arg):
        if not arg or args.no_dsn:
            return arg, []
        parts = arg.split()
        dsn = [p for p in parts[1:] if DSN_PARAM.match(p)]
        return " ".join([parts[0]] + [p for p in parts[1:] if not DSN_PARAM.match(p)]), dsn

    async def smtp_MAIL(self, arg):
        arg, dsn = self._split(arg)
        self._mail_dsn = dsn
        await super().smtp_MAIL(arg)
        if self.envelope.mail_from is not None:
            self.envelope.mail_options.extend(dsn)

    async def smtp_RCPT(self, arg):
        arg, dsn = self._split(arg)
        self._rcpt_dsn = dsn
        await super().smtp_RCPT(arg)


tls_context = None
if args.tls_cert:
    tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_context.load_cert_chain(args.tls_cert, args.tls_key)

class DsnController(Controller):
    def factory(self):
        return DsnSMTP(self.handler, **self.SMTP_kwargs)


controller = DsnController(Handler(), hostname=args.host, port=args.port, tls_context=tls_context,
                           require_starttls=False, decode_data=False, enable_SMTPUTF8=not args.no_smtputf8)
if args.port == 0:
    import socket
    s = socket.socket(); s.bind((args.host, 0)); controller.port = s.getsockname()[1]; s.close()
controller.start()
print(f"PORT {controller.port}", flush=True)
try:
    while True:
        time.sleep(3600)
except KeyboardInterrupt:
    pass
finally:
    controller.stop()
