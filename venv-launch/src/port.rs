//! Ports of 127.0.0.1 for the servers started here.

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;

use crate::Error;

/// Whether `port` of 127.0.0.1 can be bound now.
pub fn is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// A port of 127.0.0.1 that the system chose as free a moment ago. Another process could take
/// it before the server binds it; the server's start would then fail, not hang.
pub fn free() -> Result<u16, Error> {
    let any = Path::new("127.0.0.1:0");
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(Error::io(any))?;
    Ok(listener.local_addr().map_err(Error::io(any))?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_port_is_not_free_and_a_released_one_is() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind loopback");
        let port = listener.local_addr().expect("address").port();
        assert!(!is_free(port), "{port} is bound");
        drop(listener);
        assert!(is_free(port), "{port} was released");
        assert_ne!(free().expect("a free port"), 0);
    }
}
