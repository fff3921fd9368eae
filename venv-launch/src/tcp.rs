//! TCP connections to the servers started here, for a check in HTTP ([`crate::http`]) or in a
//! server's own protocol: resolved, connected, and read and written with a timeout.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// How long connecting, and then each read and each write, may take.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// A connection to `authority`, `HOST:PORT` (an IPv6 host in brackets), whose reads and writes
/// time out after [`TIMEOUT`]. The error says what went wrong, for a readiness or health
/// message.
pub fn connect(authority: &str) -> Result<TcpStream, String> {
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("cannot resolve {authority}"))?;
    let stream =
        TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("cannot connect: {e}"))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, TcpListener};

    use super::*;

    #[test]
    fn connects_with_timeouts_and_says_why_not() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind loopback");
        let authority = listener.local_addr().expect("address").to_string();
        let stream = connect(&authority).expect("a listening port accepts");
        assert_eq!(stream.read_timeout().expect("read timeout"), Some(TIMEOUT));
        assert_eq!(
            stream.write_timeout().expect("write timeout"),
            Some(TIMEOUT)
        );
        // The client's own port: nothing listens on it, and while the stream holds it no
        // listener elsewhere can take it (a port given up would be free for anyone to take).
        let unheard = stream.local_addr().expect("client address").to_string();
        let refused = connect(&unheard).expect_err("nothing listens on a client's port");
        assert!(refused.starts_with("cannot connect: "), "{refused}");
        drop((stream, listener));
        assert_eq!(
            connect("127.0.0.1").expect_err("no port"),
            "cannot resolve 127.0.0.1: invalid socket address"
        );
    }
}
