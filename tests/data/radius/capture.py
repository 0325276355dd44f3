#!/usr/bin/env python3
"""Capture one RADIUS Accounting-Request from radclient and answer it.

Usage: capture.py NAME SECRET PORTFILE

Binds 127.0.0.1:0, writes the port to PORTFILE, waits for one datagram,
saves it as NAME.hex, answers with an Accounting-Response (no attributes)
whose Response Authenticator is computed here from RFC 2866 section 3, saves
that answer as NAME.response.hex and exits. radclient exits 0 only when it
accepts the answer, so a capture also checks this independent computation.
"""
import hashlib
import socket
import sys

name, secret, portfile = sys.argv[1], sys.argv[2].encode(), sys.argv[3]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 0))
with open(portfile, "w") as f:
    f.write(str(sock.getsockname()[1]))
sock.settimeout(30)
request, peer = sock.recvfrom(65535)
with open(name + ".hex", "w") as f:
    f.write(request.hex() + "\n")
# Accounting-Response: Code 5, the request's Identifier, Length 20.
header = bytes([5, request[1], 0, 20])
authenticator = hashlib.md5(header + request[4:20] + secret).digest()
response = header + authenticator
with open(name + ".response.hex", "w") as f:
    f.write(response.hex() + "\n")
sock.sendto(response, peer)
