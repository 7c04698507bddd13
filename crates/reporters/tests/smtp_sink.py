#!/usr/bin/env python3
"""SMTP sink for Signalbox's mail tests and benchmark (aiosmtpd on 127.0.0.1).

Each message received is written to DIR as NAME.eml (the message) and NAME.json (envelope,
whether TLS was on, the authenticated user, and the time the DATA command arrived). Files
are written before the server answers 250, so a sender that saw 250 finds the file.

    smtp_sink.py --dir DIR --port PORT [--starttls TLSDIR] [--implicit-tls TLSDIR]
                 [--auth USER:PASSWORD] [--raw]

With --starttls or --implicit-tls, TLSDIR/ca.pem, server.pem and server.key are made with the
openssl command when missing: a CA and a server certificate for 127.0.0.1 and localhost.
Clients trust the server by adding TLSDIR/ca.pem to their roots. --starttls requires
STARTTLS before MAIL; --auth requires AUTH (PLAIN or LOGIN), over TLS only.
"""

import argparse
import email
import email.policy
import json
import os
import signal
import ssl
import subprocess
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def make_certificates(tls_dir):
    os.makedirs(tls_dir, exist_ok=True)
    ca_key, ca_pem = os.path.join(tls_dir, "ca.key"), os.path.join(tls_dir, "ca.pem")
    key, pem = os.path.join(tls_dir, "server.key"), os.path.join(tls_dir, "server.pem")
    if all(os.path.exists(p) for p in (ca_pem, key, pem)):
        return
    run = lambda *args: subprocess.run(args, check=True, capture_output=True)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3",
        "-keyout", ca_key, "-out", ca_pem, "-subj", "/CN=Signalbox test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    csr = os.path.join(tls_dir, "server.csr")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
        "-subj", "/CN=localhost")
    ext = os.path.join(tls_dir, "server.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca_pem, "-CAkey", ca_key,
        "-CAcreateserial", "-days", "3", "-out", pem, "-extfile", ext)


def tls_context(tls_dir):
    make_certificates(tls_dir)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(os.path.join(tls_dir, "server.pem"),
                            os.path.join(tls_dir, "server.key"))
    return context


class TimedSMTP(SMTP):
    """Notes when the DATA command arrives (the benchmark measures up to it)."""

    async def smtp_DATA(self, arg):
        self.session.data_command_at = time.time()
        return await super().smtp_DATA(arg)


class Handler:
    def __init__(self, out_dir, decode):
        self.out_dir = out_dir
        self.decode = decode
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        name = "%d-%d-%d" % (time.time_ns(), os.getpid(), self.count)
        content = envelope.original_content or b""
        with open(os.path.join(self.out_dir, name + ".eml.tmp"), "wb") as f:
            f.write(content)
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            # session.ssl is only set by STARTTLS; with implicit TLS the transport itself
            # carries the TLS object.
            "tls": (session.ssl is not None
                    or server.transport.get_extra_info("ssl_object") is not None),
            "auth_user": (session.auth_data.login.decode()
                          if isinstance(session.auth_data, LoginPassword) else None),
            "data_command_at": getattr(session, "data_command_at", time.time()),
            "received_at": time.time(),
        }
        # The decoded message, so tests need no MIME parser (the benchmark skips it).
        if self.decode:
            message = email.message_from_bytes(content, policy=email.policy.default)
            meta["headers"] = [[k, str(v)] for k, v in message.items()]
            meta["parts"] = [
                {"content_type": part.get_content_type(),
                 "filename": part.get_filename(),
                 "text": part.get_content() if part.get_content_maintype() == "text" else None}
                for part in message.walk() if not part.is_multipart()
            ]
        with open(os.path.join(self.out_dir, name + ".json.tmp"), "w") as f:
            json.dump(meta, f)
        os.rename(os.path.join(self.out_dir, name + ".eml.tmp"),
                  os.path.join(self.out_dir, name + ".eml"))
        os.rename(os.path.join(self.out_dir, name + ".json.tmp"),
                  os.path.join(self.out_dir, name + ".json"))
        return "250 Message accepted for delivery"


class SinkController(Controller):
    def factory(self):
        return TimedSMTP(self.handler, **self.SMTP_kwargs)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--starttls")
    parser.add_argument("--implicit-tls")
    parser.add_argument("--auth")
    parser.add_argument("--raw", action="store_true", help="do not decode messages (benchmark)")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    kwargs = {}
    if args.starttls:
        kwargs.update(tls_context=tls_context(args.starttls), require_starttls=True)
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword)
                  and auth_data.login.decode() == user
                  and auth_data.password.decode() == password)
            return AuthResult(success=ok, auth_data=auth_data)

        # aiosmtpd counts only STARTTLS as TLS for AUTH; with --implicit-tls the whole
        # connection is TLS, so AUTH must not wait for a STARTTLS that never comes.
        kwargs.update(authenticator=authenticator, auth_required=True,
                      auth_require_tls=not args.implicit_tls)
    controller_kwargs = {}
    if args.implicit_tls:
        controller_kwargs["ssl_context"] = tls_context(args.implicit_tls)
    controller = SinkController(Handler(args.dir, not args.raw), hostname="127.0.0.1", port=args.port,
                                ready_timeout=30, **controller_kwargs, **kwargs)
    controller.start()
    print("smtp sink listening on 127.0.0.1:%d" % args.port, flush=True)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    while not stop:
        time.sleep(0.1)
    controller.stop()


if __name__ == "__main__":
    sys.exit(main())
