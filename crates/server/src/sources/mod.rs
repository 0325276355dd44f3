//! One module per source (DESIGN.md, "Layout"): its config and the listener
//! or handler that frames bytes and hands them to its decoder.

pub mod cms;
pub mod cti;
pub mod events;
pub mod feed;
pub mod guard;
pub mod hep;
pub mod radius;
pub mod tls;

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

/// The kernel's inode of a socket, which `/proc/net/udp` names it by
/// (Linux; None elsewhere).
pub(crate) fn socket_inode(socket: &tokio::net::UdpSocket) -> Option<u64> {
    use std::os::fd::AsRawFd;
    let link = std::fs::read_link(format!("/proc/self/fd/{}", socket.as_raw_fd())).ok()?;
    let text = link.to_str()?;
    text.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Datagrams the kernel dropped for the UDP socket with this inode since
/// it was opened (its receive buffer was full): the `drops` column of
/// `/proc/net/udp` and `/proc/net/udp6`.
pub(crate) fn udp_drops(inode: u64) -> Option<u64> {
    ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|table| table.lines().skip(1).map(str::to_owned).collect::<Vec<_>>())
        .find_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            (cols.get(9)?.parse::<u64>().ok()? == inode)
                .then(|| cols.last()?.parse().ok())
                .flatten()
        })
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_udp_socket_has_an_inode_and_no_drops_yet() {
        let socket = super::udp_socket("127.0.0.1:0".parse().unwrap(), 1 << 16).unwrap();
        let inode = super::socket_inode(&socket).expect("Linux names the socket");
        assert_eq!(super::udp_drops(inode), Some(0));
    }
}
