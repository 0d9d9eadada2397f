//! Reading a call's socket in the media engine: every datagram waiting in one system call
//! where the platform has `recvmmsg` (Linux), one `recvfrom` each elsewhere.
//!
//! The engine polls edge-triggered, so a socket must be read until the kernel has nothing
//! left. One datagram per socket per step is the common case (a packet every 20 ms, a step
//! every 2 ms); with `recvfrom` that takes two calls, the datagram and the `EAGAIN` that says
//! the queue is empty. `recvmmsg` with room for several datagrams returns the one it found and
//! says the same by returning fewer than it had room for: half the system calls.

use std::io;
use std::net::SocketAddr;

/// Datagrams one call may return.
pub const BATCH: usize = 8;
/// Room for one datagram: RTP over a 1,500-byte MTU with room to spare; longer ones are cut.
pub const DATAGRAM: usize = 2048;

/// What one read returned: how many datagrams, and whether the socket may hold more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Got {
    pub count: usize,
    /// The read filled every slot: read again to drain the socket.
    pub more: bool,
}

/// The buffers of one media thread's reads.
pub struct Reader {
    bufs: Box<[[u8; DATAGRAM]; BATCH]>,
    /// Datagrams the last read returned: the entries below are valid up to here.
    count: usize,
    lens: [usize; BATCH],
    from: [Option<SocketAddr>; BATCH],
    /// Where the kernel writes each datagram's source.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    addrs: [socket2::SockAddrStorage; BATCH],
}

impl Default for Reader {
    fn default() -> Self {
        Reader {
            bufs: Box::new([[0; DATAGRAM]; BATCH]),
            count: 0,
            lens: [0; BATCH],
            from: [None; BATCH],
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            addrs: std::array::from_fn(|_| socket2::SockAddrStorage::zeroed()),
        }
    }
}

impl Reader {
    /// Datagram `i` of the last read and where it came from (None: an address family we do
    /// not speak, which UDP/IP sockets do not produce).
    pub fn datagram(&self, i: usize) -> Option<(SocketAddr, &[u8])> {
        if i >= self.count {
            return None;
        }
        let from = self.from.get(i).copied().flatten()?;
        let len = *self.lens.get(i)?;
        Some((from, self.bufs.get(i)?.get(..len)?))
    }

    /// Read what `socket` holds, without blocking. `WouldBlock` when it held nothing.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    pub fn read(&mut self, socket: &mio::net::UdpSocket) -> io::Result<Got> {
        use std::os::fd::AsRawFd;
        let fd = socket.as_raw_fd();
        // The kernel's view of the buffers: rebuilt on every read (a few stores), so no
        // pointer outlives the borrow it was taken from.
        let mut iov: [libc::iovec; BATCH] = std::array::from_fn(|_| libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        });
        // SAFETY: mmsghdr is plain old data; all-zero is a valid value (null pointers, zero
        // lengths), and every field the kernel reads is set below.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        self.count = 0;
        for ((h, v), (buf, addr)) in hdrs
            .iter_mut()
            .zip(iov.iter_mut())
            .zip(self.bufs.iter_mut().zip(self.addrs.iter_mut()))
        {
            v.iov_base = buf.as_mut_ptr().cast();
            v.iov_len = DATAGRAM;
            h.msg_hdr.msg_namelen = addr.size_of();
            h.msg_hdr.msg_name = (addr as *mut socket2::SockAddrStorage).cast();
            h.msg_hdr.msg_iov = v;
            h.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: `hdrs` holds BATCH headers, each naming one iovec of `iov` that points into
        // its own DATAGRAM-byte buffer of `self.bufs`, and an address buffer of
        // `self.addrs` with its true length; all of them live, unaliased, until the call
        // returns. MSG_DONTWAIT: it never blocks; a null timeout: no deadline.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let count = usize::try_from(n).unwrap_or(0).min(BATCH);
        for (i, h) in hdrs.iter().enumerate().take(count) {
            self.lens[i] = (h.msg_len as usize).min(DATAGRAM);
            let written = std::mem::replace(&mut self.addrs[i], socket2::SockAddrStorage::zeroed());
            // SAFETY: the kernel wrote datagram i's source into this storage, family and
            // all, and its length into msg_namelen (recvmmsg(2)).
            let source = unsafe { socket2::SockAddr::new(written, h.msg_hdr.msg_namelen) };
            self.from[i] = source.as_socket();
        }
        self.count = count;
        Ok(Got {
            count,
            more: count == BATCH,
        })
    }

    /// Read one datagram (no batch read on this platform): `more` is always true, the next
    /// read's `WouldBlock` ends it.
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    pub fn read(&mut self, socket: &mio::net::UdpSocket) -> io::Result<Got> {
        self.count = 0;
        let (n, from) = socket.recv_from(&mut self.bufs[0])?;
        self.lens[0] = n.min(DATAGRAM);
        self.from[0] = Some(from);
        self.count = 1;
        Ok(Got {
            count: 1,
            more: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket as StdUdp;

    fn pair(v6: bool) -> (mio::net::UdpSocket, StdUdp) {
        let host = if v6 { "[::1]:0" } else { "127.0.0.1:0" };
        let rx = StdUdp::bind(host).expect("bind loopback");
        rx.set_nonblocking(true).expect("nonblocking");
        let tx = StdUdp::bind(host).expect("bind loopback");
        tx.connect(rx.local_addr().expect("addr")).expect("connect");
        (mio::net::UdpSocket::from_std(rx), tx)
    }

    /// Every datagram the socket holds, read until a read says it is empty.
    fn read_all(r: &mut Reader, s: &mio::net::UdpSocket) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut out = Vec::new();
        loop {
            match r.read(s) {
                Ok(got) => {
                    for i in 0..got.count {
                        let (from, bytes) = r.datagram(i).expect("datagram");
                        out.push((from, bytes.to_vec()));
                    }
                    if !got.more {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("read: {e}"),
            }
        }
        out
    }

    #[test]
    fn an_empty_socket_would_block() {
        let (rx, _tx) = pair(false);
        let mut r = Reader::default();
        let e = r.read(&rx).expect_err("nothing queued");
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn one_datagram_comes_with_its_source_and_says_the_socket_is_drained() {
        for v6 in [false, true] {
            let (rx, tx) = pair(v6);
            tx.send(b"one").expect("send");
            let mut r = Reader::default();
            let got = r.read(&rx).expect("read");
            assert_eq!(got.count, 1);
            if cfg!(all(target_os = "linux", target_env = "gnu")) {
                assert!(!got.more, "fewer than a batch: nothing left");
            }
            let (from, bytes) = r.datagram(0).expect("datagram 0");
            assert_eq!(bytes, b"one");
            assert_eq!(from, tx.local_addr().expect("addr"));
            assert!(r.datagram(1).is_none() || !cfg!(all(target_os = "linux", target_env = "gnu")));
        }
    }

    #[test]
    fn more_than_a_batch_is_read_in_order_over_several_reads() {
        let (rx, tx) = pair(false);
        let n = BATCH * 2 + 3;
        for i in 0..n {
            tx.send(&[i as u8; 172]).expect("send");
        }
        let mut r = Reader::default();
        let first = r.read(&rx).expect("read");
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            assert_eq!(
                first,
                Got {
                    count: BATCH,
                    more: true
                }
            );
        }
        let mut all: Vec<Vec<u8>> = (0..first.count)
            .map(|i| r.datagram(i).expect("datagram").1.to_vec())
            .collect();
        all.extend(read_all(&mut r, &rx).into_iter().map(|(_, b)| b));
        assert_eq!(all.len(), n);
        for (i, b) in all.iter().enumerate() {
            assert_eq!(b, &vec![i as u8; 172], "datagram {i} in order, whole");
        }
    }

    #[test]
    fn an_oversized_datagram_is_cut_to_the_buffer() {
        let (rx, tx) = pair(false);
        tx.send(&[7u8; DATAGRAM + 100]).expect("send");
        let mut r = Reader::default();
        let got = read_all(&mut r, &rx);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1.len(), DATAGRAM);
    }
}
