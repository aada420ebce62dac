//! `switchboard serve` over real sockets: every row of the SIP behaviour
//! table of DESIGN §3, over UDP and TCP, with raw bytes.

mod common;

use common::{Server, TcpClient, UdpClient, header, invite, request, status};

#[test]
fn invite_over_udp_gets_the_routing_answer() {
    let server = Server::start();
    let client = UdpClient::new();
    let answer = client.exchange(
        server.udp,
        &invite("+18005550100", "+16505550123", "udp-1", client.port()),
    );
    assert_eq!(status(&answer), 302, "{answer}");
    assert_eq!(
        header(&answer, "Contact"),
        Some("<sip:+14155550101@127.0.0.1;user=phone>")
    );
}

#[test]
fn invite_over_tcp_gets_the_routing_answer() {
    let server = Server::start();
    let mut client = TcpClient::connect(server.tcp);
    let port = client.port();
    client.send(&request(
        &[
            "INVITE sip:+18005550144@127.0.0.1 SIP/2.0",
            "Via: SIP/2.0/TCP 127.0.0.1:{port};branch=z9hG4bK-tcp-1",
            "Max-Forwards: 70",
            "From: <sip:+19995550000@127.0.0.1>;tag=f",
            "To: <sip:+18005550144@127.0.0.1>",
            "Call-ID: tcp-1",
            "CSeq: 1 INVITE",
            "Content-Length: 0",
            "",
        ],
        port,
    ));
    let answers = client.read_responses(1);
    assert_eq!(status(&answers[0]), 480, "{}", answers[0]);
}
