"""Receives HEPv3 on 127.0.0.1:9060 and writes each SIP payload to
OUT/NNN.sip with its addresses in OUT/index.txt."""
import socket, struct, sys, os
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 9060))
n = 0
with open(os.path.join(out, "index.txt"), "a") as index:
    while True:
        data, _ = s.recvfrom(65535)
        if data[:4] != b"HEP3":
            continue
        at, chunks = 6, {}
        while at + 6 <= len(data):
            vendor, kind, length = struct.unpack("!HHH", data[at:at + 6])
            chunks[kind] = data[at + 6:at + length]
            at += length
        src = socket.inet_ntoa(chunks[3]) + ":" + str(struct.unpack("!H", chunks[7])[0])
        dst = socket.inet_ntoa(chunks[4]) + ":" + str(struct.unpack("!H", chunks[8])[0])
        n += 1
        payload = chunks[15]
        with open(os.path.join(out, "%03d.sip" % n), "wb") as f:
            f.write(payload)
        first = payload.split(b"\r\n", 1)[0].decode("utf-8", "replace")
        index.write("%03d %s -> %s %s\n" % (n, src, dst, first))
        index.flush()
