#!/usr/bin/env python3
"""SIP over TLS setup time against a running bridge: N times, open a TLS connection (verifying
the certificate for `localhost` with CAFILE), send an INVITE, wait for its 200, ACK, BYE, wait
for the BYE's 200, close. Prints the median/min/max of the TCP+TLS handshake and of INVITE ->
200 in milliseconds; exits 1 if any call fails.

Usage: tlstime.py HOST PORT CAFILE N
"""
import socket
import ssl
import statistics
import sys
import time


def frames(sock, buf):
    """Yield whole SIP messages (framed by Content-Length) from the stream."""
    while True:
        head_end = buf.find(b"\r\n\r\n")
        if head_end >= 0:
            head = buf[:head_end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() in ("content-length", "l"):
                    length = int(value.strip())
            end = head_end + 4 + length
            if len(buf) >= end:
                msg, buf[:] = bytes(buf[:end]), buf[end:]
                yield msg
                continue
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed")
        buf.extend(chunk)


def request(method, uri, to, call_id, local, n, cseq, body=""):
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/TLS {local};branch=z9hG4bK-tt{n}-{method}-{cseq};rport",
        "Max-Forwards: 70",
        f"From: <sip:timer@127.0.0.1>;tag=tt{n}",
        f"To: {to}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:timer@{local};transport=tls>",
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def header(msg, name):
    for line in msg.split(b"\r\n")[1:]:
        if line.lower().startswith(name.lower() + b":"):
            return line.split(b":", 1)[1].strip().decode()
    return ""


def one_call(host, port, ctx, n):
    t0 = time.perf_counter()
    raw = socket.create_connection((host, port), timeout=5)
    sock = ctx.wrap_socket(raw, server_hostname="localhost")
    t1 = time.perf_counter()
    local = "%s:%d" % sock.getsockname()[:2]
    uri = f"sip:echo@{host}:{port};transport=tls"
    call_id = f"tlstime-{n}-{time.time_ns()}@127.0.0.1"
    sdp = (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    )
    sock.sendall(request("INVITE", uri, f"<{uri}>", call_id, local, n, 1, sdp))
    msgs = frames(sock, bytearray())
    while True:
        m = next(msgs)
        first = m.split(b"\r\n", 1)[0].decode()
        status = first.split(" ")[1]
        if status == "200":
            break
        if not status.startswith("1"):
            raise RuntimeError(f"INVITE got {first!r}")
    t2 = time.perf_counter()
    to = header(m, b"To")
    target = header(m, b"Contact").strip("<>")
    ack = request("ACK", target, to, call_id, local, n, 1)
    bye = request("BYE", target, to, call_id, local, n, 2)
    sock.sendall(ack + bye)
    while True:
        m = next(msgs)
        if m.startswith(b"SIP/2.0 200") and header(m, b"CSeq").endswith("BYE"):
            break
    sock.close()
    return (t1 - t0) * 1e3, (t2 - t1) * 1e3


def main():
    host, port, cafile, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    ctx = ssl.create_default_context(cafile=cafile)
    hs, setup = [], []
    for i in range(n):
        try:
            a, b = one_call(host, port, ctx, i)
        except Exception as e:  # noqa: BLE001 - report and fail
            print(f"call {i}: {e}")
            return 1
        hs.append(a)
        setup.append(b)
    f = lambda v: f"median {statistics.median(v):.2f} min {min(v):.2f} max {max(v):.2f}"  # noqa: E731
    print(f"calls={n} handshake_ms: {f(hs)}; invite_to_200_ms: {f(setup)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
