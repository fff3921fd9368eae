//! A bench-only TCP proxy on loopback that adds a fixed round trip to everything in front of
//! LocalStack: a stand-in for a distant endpoint.
//!
//! Each connection pays the round trip once when it is opened (the handshake), and every chunk
//! of bytes is held for half of it in each direction, from the moment it was read: the delay
//! is the line's, not a queue's, so requests in flight on many connections (or pipelined on
//! one) overlap as they would over a long network path. Plain threads, no async runtime: xtask
//! stays light.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// A running proxy; it stops accepting when dropped (open connections end with their peers).
#[derive(Debug)]
pub(super) struct DelayProxy {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl DelayProxy {
    /// Listens on a free loopback port and forwards to `upstream` (an `http://host:port` URL)
    /// with `rtt` added to every round trip.
    pub(super) fn start(upstream: &str, rtt: Duration) -> Result<DelayProxy> {
        let authority = upstream
            .strip_prefix("http://")
            .with_context(|| format!("the delay proxy needs an http:// endpoint, not {upstream}"))?
            .trim_end_matches('/');
        let upstream: SocketAddr = authority
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve {authority}"))?
            .next()
            .with_context(|| format!("{authority} has no address"))?;
        let listener =
            TcpListener::bind("127.0.0.1:0").context("cannot listen for the delay proxy")?;
        let address = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let accept = std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopping.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                std::thread::spawn(move || connect(client, upstream, rtt));
            }
        });
        Ok(DelayProxy {
            address,
            stop,
            accept: Some(accept),
        })
    }

    /// The endpoint to give clients instead of the upstream's.
    pub(super) fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.address);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// One client connection: the handshake's round trip, then both directions, each delayed by
/// half the round trip.
fn connect(client: TcpStream, upstream: SocketAddr, rtt: Duration) {
    std::thread::sleep(rtt);
    let Ok(server) = TcpStream::connect(upstream) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let (Ok(client_read), Ok(server_read)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let half = rtt / 2;
    let up = std::thread::spawn(move || pipe(client_read, server, half));
    pipe(server_read, client, half);
    let _ = up.join();
}

/// Copies `from` to `to`, each chunk written `delay` after it was read; ends `to`'s writing
/// when `from` ends.
fn pipe(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let (chunks, delayed) = mpsc::channel::<(Instant, Vec<u8>)>();
    let writer = std::thread::spawn(move || {
        for (due, chunk) in delayed {
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if chunks
                    .send((Instant::now() + delay, buffer[..n].to_vec()))
                    .is_err()
                {
                    break;
                }
            }
        }
    }
    drop(chunks);
    let _ = writer.join();
    let _ = from.shutdown(Shutdown::Read);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server behind the proxy: what goes in comes back, in order, whole.
    #[test]
    fn forwards_both_ways_in_order() {
        let echo = TcpListener::bind("127.0.0.1:0").expect("bind");
        let upstream = format!("http://{}", echo.local_addr().expect("address"));
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = echo.accept() {
                let mut reader = stream.try_clone().expect("clone");
                let _ = std::io::copy(&mut reader, &mut stream);
            }
        });
        let proxy = DelayProxy::start(&upstream, Duration::from_millis(2)).expect("proxy");
        let address = proxy.endpoint().trim_start_matches("http://").to_owned();
        let mut stream = TcpStream::connect(address).expect("connect");
        let sent: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut writer = stream.try_clone().expect("clone");
        let payload = sent.clone();
        let writing = std::thread::spawn(move || {
            writer.write_all(&payload).expect("write");
            writer.shutdown(Shutdown::Write).expect("shutdown");
        });
        let mut received = Vec::new();
        stream.read_to_end(&mut received).expect("read");
        writing.join().expect("writer");
        assert_eq!(received, sent);
    }
}
