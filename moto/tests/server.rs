//! The launcher: a server of its own answers, takes the IAM switch, and is gone once dropped.

use std::net::TcpStream;

#[test]
fn a_server_starts_answers_and_stops_on_drop() {
    let server = moto::start(&moto::Config::from_env()).expect("moto starts");
    let endpoint = server.endpoint();
    let authority = endpoint.trim_start_matches("http://").to_owned();
    assert!(
        TcpStream::connect(&authority).is_ok(),
        "{endpoint} does not answer"
    );
    server.enforce_iam().expect("reset-auth is accepted");
    let other = moto::start(&moto::Config::from_env()).expect("a second server");
    assert_ne!(
        other.endpoint(),
        endpoint,
        "each caller has a server of its own"
    );
    drop(server);
    assert!(
        TcpStream::connect(&authority).is_err(),
        "{endpoint} still answers after drop"
    );
}
