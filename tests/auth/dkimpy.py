"""dkimpy (Debian python3-dkim) as an independent DKIM peer for the tests.

  dkimpy.py verify PORT            < message   -> prints one line per signature: "pass"/"fail"
  dkimpy.py sign DOMAIN SELECTOR KEYFILE ALGO  < message  -> prints the DKIM-Signature field
DNS goes to dnsmasq on 127.0.0.1:PORT.
"""
import sys
import dkim
import dns.resolver


def txt_lookup(port):
    res = dns.resolver.Resolver(configure=False)
    res.nameservers = ["127.0.0.1"]
    res.port = port
    res.lifetime = 3

    def get_txt(name, timeout=5):
        qname = name.decode() if isinstance(name, bytes) else name
        try:
            answer = res.resolve(qname.rstrip("."), "TXT")
        except Exception:
            return None
        for rr in answer:
            return b"".join(rr.strings)
        return None

    return get_txt


def main():
    msg = sys.stdin.buffer.read()
    if sys.argv[1] == "verify":
        dnsfunc = txt_lookup(int(sys.argv[2]))
        d = dkim.DKIM(msg)
        count = len([h for h in d.headers if h[0].lower() == b"dkim-signature"])
        for i in range(count):
            ok = d.verify(idx=i, dnsfunc=dnsfunc)
            print("pass" if ok else "fail")
    else:
        domain, selector, keyfile, algo = sys.argv[2:6]
        key = open(keyfile, "rb").read()
        sig = dkim.sign(msg, selector.encode(), domain.encode(), key,
                        canonicalize=(b"relaxed", b"relaxed"),
                        signature_algorithm=algo.encode(),
                        include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
        sys.stdout.buffer.write(sig)


main()
