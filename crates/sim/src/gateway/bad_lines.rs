//! Lines a gateway sends that the server cannot read: each a Bad Packet of
//! docs/gateway-feed.md, "Bad lines", one for each way a line goes wrong.

use cdrhub_protocols::feed::{GatewayRef, MAX_LINE_LEN, VERSION};

/// How a bad line is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum BadLine {
    /// A later protocol version, `GWFEED/2`.
    WrongVersion,
    /// A type word the protocol does not have (`HOOKOFF`).
    UnknownType,
    /// A call event without its `ref`.
    MissingField,
    /// Bytes that are not UTF-8 in a value.
    NotUtf8,
    /// A line longer than [`MAX_LINE_LEN`] bytes, otherwise well formed.
    Overlong,
}

impl BadLine {
    pub(super) const ALL: [BadLine; 5] = [
        BadLine::WrongVersion,
        BadLine::UnknownType,
        BadLine::MissingField,
        BadLine::NotUtf8,
        BadLine::Overlong,
    ];

    /// The line's bytes, without a terminator, naming `gateway` and `seq`
    /// as a gateway's line would.
    pub(super) fn bytes(self, gateway: &GatewayRef, seq: u32) -> Vec<u8> {
        let head = format!("seq={seq} gw={} mac={}", gateway.id, gateway.mac);
        let event = "ref=1 port=1 at=2000-01-01T08:13:11";
        match self {
            BadLine::WrongVersion => format!("GWFEED/2 KEEPALIVE {head}").into_bytes(),
            BadLine::UnknownType => format!("{VERSION} HOOKOFF {head} {event}").into_bytes(),
            BadLine::MissingField => {
                format!("{VERSION} HOOK_OFF {head} port=1 at=2000-01-01T08:13:11").into_bytes()
            }
            BadLine::NotUtf8 => {
                let mut line = format!("{VERSION} DIAL {head} {event} digits=").into_bytes();
                line.extend_from_slice(b"\xFF\xFE22");
                line
            }
            BadLine::Overlong => {
                // A KEEPALIVE whose clock the server would keep as text:
                // only its length is wrong, and were it taken it would do
                // no harm.
                let mut line = format!("{VERSION} KEEPALIVE {head} clock=").into_bytes();
                line.resize(MAX_LINE_LEN + 64, b'x');
                line
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdrhub_protocols::feed::{Mac, parse_line, split_datagram};

    fn gateway() -> GatewayRef {
        GatewayRef {
            id: "8200".to_owned(),
            mac: Mac([0x00, 0x0C, 0x2A, 0x02, 0x20, 0x08]),
        }
    }

    /// What the server does with a TCP line: bytes over the limit or not
    /// UTF-8 are refused before the parser sees them.
    fn tcp_line_reads(bytes: &[u8]) -> bool {
        bytes.len() <= MAX_LINE_LEN
            && std::str::from_utf8(bytes).is_ok_and(|line| parse_line(line).is_ok())
    }

    #[test]
    fn no_bad_line_can_be_read() {
        for kind in BadLine::ALL {
            let bytes = kind.bytes(&gateway(), 7);
            assert!(!tcp_line_reads(&bytes), "{kind:?} reads over TCP");
            let over_udp: Vec<_> = split_datagram(&bytes).collect();
            assert_eq!(over_udp.len(), 1);
            assert!(
                over_udp[0]
                    .as_ref()
                    .map_or(true, |line| parse_line(line).is_err()),
                "{kind:?} reads over UDP"
            );
            assert!(!bytes.contains(&b'\n'), "{kind:?} is one line");
        }
    }

    #[test]
    fn each_bad_line_is_wrong_in_its_own_way_only() {
        let line = |kind: BadLine| BadLine::bytes(kind, &gateway(), 7);
        let overlong = line(BadLine::Overlong);
        assert!(overlong.len() > MAX_LINE_LEN);
        // Within the limit, the overlong KEEPALIVE would be a good line.
        let cut = String::from_utf8(overlong[..200].to_vec()).unwrap();
        assert!(parse_line(&cut).is_ok());
        assert!(std::str::from_utf8(&line(BadLine::NotUtf8)).is_err());
        let version = String::from_utf8(line(BadLine::WrongVersion)).unwrap();
        assert!(parse_line(&version.replacen("GWFEED/2", "GWFEED/1", 1)).is_ok());
        let unknown = String::from_utf8(line(BadLine::UnknownType)).unwrap();
        assert!(parse_line(&unknown.replacen("HOOKOFF", "HOOK_OFF", 1)).is_ok());
        let missing = String::from_utf8(line(BadLine::MissingField)).unwrap();
        assert!(parse_line(&missing.replacen(" port=", " ref=1 port=", 1)).is_ok());
    }
}
