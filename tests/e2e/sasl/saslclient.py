#!/usr/bin/python3
"""A long-lived libsasl2 client for the end-to-end tests: several IMAP
logins from one process, the way a Postfix smtp process or a mail client
that stays running authenticates again and again.  libsasl2 (and so the
mailoauth plugin, with its in-process token cache and its "rejected" mark)
is initialised once; every login gets a new sasl_conn_t, a new connection
with STARTTLS, AUTHENTICATE (no SASL-IR) and, if accepted, SELECT INBOX.

    saslclient.py '{"account": ..., "port": ..., "ca_file": ..., "mech":
                    "XOAUTH2", "logins": 2}'

Prints one JSON object per login: auth ("OK"/"NO"), select, server (the
server's refusal), sasl (return codes of sasl_client_start/step), errdetail
(sasl_errdetail after the login) and log (what libsasl2's log callback got:
the plugin's messages).  Never prints what the client sent.
"""
import ctypes
import ctypes.util
import imaplib
import json
import ssl
import sys

SASL_OK, SASL_CONTINUE = 0, 1
SASL_CB_LIST_END, SASL_CB_LOG, SASL_CB_AUTHNAME = 0, 2, 0x4002


class Callback(ctypes.Structure):
    _fields_ = [("id", ctypes.c_ulong), ("proc", ctypes.c_void_p),
                ("context", ctypes.c_void_p)]


LOGFN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
                         ctypes.c_char_p)
SIMPLEFN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
                            ctypes.POINTER(ctypes.c_char_p),
                            ctypes.POINTER(ctypes.c_uint))


def main(plan):
    lib = ctypes.CDLL(ctypes.util.find_library("sasl2") or "libsasl2.so.2")
    lib.sasl_errdetail.restype = ctypes.c_char_p
    lib.sasl_errdetail.argtypes = [ctypes.c_void_p]
    lib.sasl_client_start.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_uint),
        ctypes.POINTER(ctypes.c_char_p)]
    lib.sasl_client_step.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint, ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_uint)]
    logs = []
    account = plan["account"].encode()

    @LOGFN
    def log_cb(_ctx, _level, message):
        logs.append(message.decode("utf-8", "replace"))
        return SASL_OK

    @SIMPLEFN
    def authname_cb(_ctx, _id, result, length):
        result[0] = account
        if length:
            length[0] = len(account)
        return SASL_OK

    callbacks = (Callback * 3)(
        Callback(SASL_CB_LOG, ctypes.cast(log_cb, ctypes.c_void_p), None),
        Callback(SASL_CB_AUTHNAME, ctypes.cast(authname_cb, ctypes.c_void_p),
                 None),
        Callback(SASL_CB_LIST_END, None, None))
    rc = lib.sasl_client_init(callbacks)
    if rc != SASL_OK:
        print(json.dumps({"error": "sasl_client_init: %d" % rc}), flush=True)
        return 1
    tls = ssl.create_default_context(cafile=plan["ca_file"])
    remote = ("127.0.0.1;%d" % plan["port"]).encode()
    for n in range(plan["logins"]):
        del logs[:]
        conn = ctypes.c_void_p()
        rc = lib.sasl_client_new(b"imap", b"localhost", None, remote, None, 0,
                                 ctypes.byref(conn))
        result = {"login": n + 1, "sasl": []}
        if rc != SASL_OK:
            result["error"] = "sasl_client_new: %d" % rc
            print(json.dumps(result), flush=True)
            continue

        def answer(challenge):
            out = ctypes.c_char_p()
            outlen = ctypes.c_uint()
            if not result["sasl"]:
                chosen = ctypes.c_char_p()
                rc = lib.sasl_client_start(conn, plan["mech"].encode(), None,
                                           ctypes.byref(out),
                                           ctypes.byref(outlen),
                                           ctypes.byref(chosen))
            else:
                rc = lib.sasl_client_step(conn, challenge, len(challenge),
                                          None, ctypes.byref(out),
                                          ctypes.byref(outlen))
            result["sasl"].append(rc)
            if rc not in (SASL_OK, SASL_CONTINUE):
                return None                 # imaplib answers "*": cancel
            return ctypes.string_at(out, outlen.value) if out else b""

        imap = imaplib.IMAP4("127.0.0.1", plan["port"], timeout=20)
        try:
            imap.starttls(tls)
            try:
                result["auth"] = imap.authenticate(plan["mech"], answer)[0]
                result["select"] = imap.select("INBOX")[0]
            except imaplib.IMAP4.error as e:
                result["auth"] = "NO"
                result["server"] = str(e)
            detail = lib.sasl_errdetail(conn)
            result["errdetail"] = detail.decode("utf-8", "replace") \
                if detail else ""
            result["log"] = list(logs)
            try:
                imap.logout()
            except (imaplib.IMAP4.error, OSError):
                pass
        finally:
            lib.sasl_dispose(ctypes.byref(conn))
        print(json.dumps(result), flush=True)
    lib.sasl_client_done()
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
