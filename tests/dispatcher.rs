//! Scale-out, tested without Docker: two switchboard replicas behind
//! Kamailio's dispatcher (`deploy/kamailio/dispatcher.cfg`, the same file
//! the compose profile uses), all on loopback. Calls through the proxy are
//! answered by both replicas, and keep being answered when one is stopped.
//!
//! Kamailio is required (`apt-get install -y kamailio`): without it this
//! test fails and says so.

mod common;

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::kamailio::Kamailio;
use common::{Server, UdpClient, example_data, header, project_path, request, status};

/// Kamailio dispatching to `replicas`, answering.
fn start_kamailio(replicas: &[SocketAddr], dir: &Path) -> Kamailio {
    let list = dir.join("dispatcher.list");
    let lines: String = replicas
        .iter()
        .map(|addr| format!("1 sip:{addr}\n"))
        .collect();
    fs::write(&list, lines).expect("write the dispatcher list");
    Kamailio::start(
        &project_path("deploy/kamailio/dispatcher.cfg"),
        &[format!("DISPATCHER_LIST=\"{}\"", list.display())],
    )
}

/// One call through the proxy: INVITE, the final answer, and the ACK that
/// completes the proxy's transaction. The final answer's Contact host.
fn call(client: &UdpClient, proxy: SocketAddr, n: usize) -> String {
    let port = client.port();
    let call_id = format!("dispatch-{n}");
    let branch = format!("z9hG4bK-dispatch-{n}");
    let head = |method: &str, to_tag: &str| {
        request(
            &[
                &format!("{method} sip:+18005550100@127.0.0.1 SIP/2.0"),
                &format!("Via: SIP/2.0/UDP 127.0.0.1:{{port}};branch={branch};rport"),
                "Max-Forwards: 70",
                "From: <sip:+16505550123@127.0.0.1>;tag=caller",
                &format!("To: <sip:+18005550100@127.0.0.1>{to_tag}"),
                &format!("Call-ID: {call_id}"),
                &format!("CSeq: 1 {method}"),
                "Content-Length: 0",
                "",
            ],
            port,
        )
    };
    client.send(proxy, &head("INVITE", ""));
    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        let bytes = client
            .receive_within(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("call {n}: no answer through the proxy"));
        let text = String::from_utf8_lossy(&bytes).into_owned();
        // Skip provisional answers and anything left from an earlier call.
        if header(&text, "Call-ID") == Some(call_id.as_str()) && status(&text) >= 200 {
            break text;
        }
        assert!(Instant::now() < deadline, "call {n}: no final answer");
    };
    assert_eq!(status(&answer), 302, "call {n}: {answer}");
    let to = header(&answer, "To").expect("To");
    let tag = to.split(";tag=").nth(1).expect("a To tag");
    client.send(proxy, &head("ACK", &format!(";tag={tag}")));
    let contact = header(&answer, "Contact").expect("Contact").to_owned();
    contact
        .split('@')
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .expect("a Contact host")
        .to_owned()
}

fn replica(name: &str) -> Server {
    Server::start_with(&[
        "--routing",
        &example_data(),
        "--contact-template",
        &format!("sip:{{number}}@{name}.replica.test;user=phone"),
    ])
}

#[test]
fn calls_through_the_dispatcher_reach_both_replicas_and_survive_one_stopping() {
    let a = replica("a");
    let b = replica("b");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let kamailio = start_kamailio(&[a.udp, b.udp], dir.path());
    let client = UdpClient::new();

    let hosts: Vec<String> = (0..20).map(|n| call(&client, kamailio.addr, n)).collect();
    let on_a = hosts.iter().filter(|h| *h == "a.replica.test").count();
    let on_b = hosts.iter().filter(|h| *h == "b.replica.test").count();
    assert_eq!(on_a + on_b, 20, "{hosts:?}");
    assert!(
        on_a >= 5 && on_b >= 5,
        "round robin: {on_a} on a, {on_b} on b"
    );

    // Replica a goes away: every call is still answered, by b.
    let stopped = a.stop();
    assert!(stopped.success(), "{stopped:?}");
    let started = Instant::now();
    let hosts: Vec<String> = (20..40).map(|n| call(&client, kamailio.addr, n)).collect();
    assert!(
        hosts.iter().all(|h| h == "b.replica.test"),
        "after a stopped: {hosts:?}"
    );
    eprintln!(
        "20 calls over two replicas ({on_a} a, {on_b} b); with a stopped, 20 of 20 answered by b in {:?}",
        started.elapsed()
    );
}
