//! One module per source (DESIGN.md, "Layout"): its config and the listener
//! or handler that frames bytes and hands them to its decoder.

pub mod cms;
pub mod cti;
pub mod feed;
pub mod hep;
pub mod radius;

/// A UDP socket bound to `addr` with a receive buffer of `recv_buffer`
/// bytes (the kernel caps it at `net.core.rmem_max`): a burst from many
/// senders waits in the kernel instead of being dropped there.
pub(crate) fn udp_socket(
    addr: std::net::SocketAddr,
    recv_buffer: usize,
) -> std::io::Result<tokio::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(false).ok();
    }
    // Best effort: a smaller buffer still works.
    socket.set_recv_buffer_size(recv_buffer).ok();
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    tokio::net::UdpSocket::from_std(socket.into())
}

/// The receive buffer asked for UDP sources.
pub(crate) const UDP_RECV_BUFFER: usize = 16 << 20;
