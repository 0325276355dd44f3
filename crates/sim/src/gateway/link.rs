//! A gateway's socket to the server: lines out, answer lines in
//! (docs/gateway-feed.md, "Transport"). Over TCP one message per line and
//! the answers in order on the same connection; over UDP one line per
//! datagram out, and answers in datagrams of one or more lines.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, UdpSocket};

use super::config::{ServerAddr, Transport};

/// The longest answer line read; the server's are far shorter.
const MAX_ANSWER_LEN: usize = 64 * 1024;
/// A datagram as large as UDP allows.
const MAX_DATAGRAM: usize = 65_536;

pub(super) enum Link {
    Tcp {
        read: OwnedReadHalf,
        write: OwnedWriteHalf,
        /// Bytes read that do not yet end a line.
        buf: BytesMut,
    },
    Udp {
        socket: UdpSocket,
        buf: Vec<u8>,
    },
}

/// What [`Link::receive`] got.
pub(super) enum Received {
    /// Answer lines, in order, their terminators removed.
    Lines(Vec<String>),
    /// The server closed the TCP connection.
    Closed,
    /// Nothing to read after all (a UDP datagram refused by the server's
    /// host, reported by the network).
    Nothing,
}

impl Link {
    /// Opens a connection (TCP) or a connected socket (UDP) to `server`,
    /// from the local address `from` when there is one.
    pub(super) async fn open(server: ServerAddr, from: Option<IpAddr>) -> io::Result<Link> {
        let local = SocketAddr::new(from.unwrap_or(unspecified(server.addr)), 0);
        match server.transport {
            Transport::Tcp => {
                let socket = if server.addr.is_ipv4() {
                    TcpSocket::new_v4()?
                } else {
                    TcpSocket::new_v6()?
                };
                if from.is_some() {
                    socket.bind(local)?;
                }
                let stream = socket.connect(server.addr).await?;
                // An event is small and must not wait for more to fill a packet.
                stream.set_nodelay(true)?;
                let (read, write) = stream.into_split();
                Ok(Link::Tcp {
                    read,
                    write,
                    buf: BytesMut::with_capacity(4096),
                })
            }
            Transport::Udp => {
                let socket = UdpSocket::bind(local).await?;
                socket.connect(server.addr).await?;
                Ok(Link::Udp {
                    socket,
                    buf: vec![0; MAX_DATAGRAM],
                })
            }
        }
    }

    /// The local address the server sees the gateway come from.
    pub(super) fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Link::Tcp { write, .. } => write.local_addr(),
            Link::Udp { socket, .. } => socket.local_addr(),
        }
    }

    /// Sends one line, `line` without its terminator.
    pub(super) async fn send(&mut self, line: &[u8]) -> io::Result<()> {
        match self {
            Link::Tcp { write, .. } => {
                let mut framed = Vec::with_capacity(line.len() + 1);
                framed.extend_from_slice(line);
                framed.push(b'\n');
                write.write_all(&framed).await
            }
            Link::Udp { socket, .. } => match socket.send(line).await {
                Ok(_) => Ok(()),
                // The network's word that an earlier datagram found no
                // server: this one is as good as lost, and is sent again
                // if it has no answer.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Ok(()),
                Err(e) => Err(e),
            },
        }
    }

    /// The next answer lines. Cancel-safe: a read cut short loses nothing,
    /// so it can wait in a `select!` beside the gateway's timers.
    pub(super) async fn receive(&mut self) -> io::Result<Received> {
        match self {
            Link::Tcp { read, buf, .. } => loop {
                if let Some(end) = buf.iter().rposition(|&b| b == b'\n') {
                    let complete = buf.split_to(end + 1);
                    return Ok(Received::Lines(lines(&complete)));
                }
                if buf.len() > MAX_ANSWER_LEN {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("the server sent an answer line over {MAX_ANSWER_LEN} bytes"),
                    ));
                }
                if read.read_buf(buf).await? == 0 {
                    return Ok(Received::Closed);
                }
            },
            Link::Udp { socket, buf } => match socket.recv(buf).await {
                Ok(n) => Ok(Received::Lines(lines(&buf[..n]))),
                // The ICMP answer to an earlier datagram: the server is not
                // (yet) there. The message waits for its resend.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Ok(Received::Nothing),
                Err(e) => Err(e),
            },
        }
    }
}

/// The lines of `bytes`: split at LF, a CR before it dropped, empty lines
/// skipped.
fn lines(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .filter(|line| !line.is_empty())
        .map(|line| String::from_utf8_lossy(line).into_owned())
        .collect()
}

fn unspecified(server: SocketAddr) -> IpAddr {
    if server.is_ipv4() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    }
}

/// A loopback address other than `than`, so that a gateway on 127.0.0.1 can
/// come back from 127.0.0.2 (Linux routes all of 127.0.0.0/8 to the
/// loopback device; elsewhere binding it fails and a new port has to do).
pub(super) fn other_loopback(than: IpAddr) -> Option<IpAddr> {
    match than {
        IpAddr::V4(v4) if v4.is_loopback() => {
            let other = if v4 == Ipv4Addr::new(127, 0, 0, 2) {
                Ipv4Addr::new(127, 0, 0, 3)
            } else {
                Ipv4Addr::new(127, 0, 0, 2)
            };
            Some(IpAddr::V4(other))
        }
        _ => None,
    }
}
