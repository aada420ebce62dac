//! Proxy mode under lost datagrams (issue #21): 1,000 calls through two
//! lossy UDP relays written here (this kernel has no netem), 5 % lost in
//! both directions, each ending with the right answer, and nothing left in
//! flight. A test binary of its own so that it runs alone: with the other
//! proxy tests' SIPp processes beside it on a 2-core machine, a starved
//! relay or SIPp looked like loss no retransmission could cover.
//!
//! SIPp is required (`apt-get install -y sip-tester`): without it this test
//! fails and says so.

mod common;
#[path = "common/proxy_rig.rs"]
mod proxy_rig;

use std::time::Duration;

use proxy_rig::{Rig, RigOptions, scenario, sipp};

/// The ring time here: long enough never to matter.
const NEVER_RINGS_OUT: u32 = 20;

/// A lossy UDP relay on loopback, standing in for a network that loses
/// datagrams (this kernel has no netem): whatever reaches its `port` from
/// the client side goes on to `target` from a socket of its own, and
/// whatever comes back to that socket goes to the last client address
/// seen; each direction drops `percent` % of datagrams, chosen by a
/// xorshift generator with a fixed seed (the same datagrams in the same
/// order are dropped in every run). Stopped and joined when dropped.
struct LossyRelay {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<(u64, u64)>>,
}

impl LossyRelay {
    fn start(target: std::net::SocketAddr, percent: u64, seed: u64) -> LossyRelay {
        use std::net::{SocketAddr, UdpSocket};
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};

        let front = UdpSocket::bind("127.0.0.1:0").expect("bind the relay");
        let back = UdpSocket::bind("127.0.0.1:0").expect("bind the relay");
        let port = front.local_addr().expect("address").port();
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        // One direction: read `from`, send through `to` to where `dest`
        // says; returns (forwarded, dropped).
        let run = |from: UdpSocket,
                   to: UdpSocket,
                   mut state: u64,
                   towards_target: bool,
                   client: Arc<Mutex<Option<SocketAddr>>>,
                   stop: Arc<AtomicBool>| {
            move || {
                from.set_read_timeout(Some(Duration::from_millis(100)))
                    .expect("timeout");
                let mut buf = vec![0u8; 65_535];
                let (mut forwarded, mut dropped) = (0u64, 0u64);
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, sender)) = from.recv_from(&mut buf) else {
                        continue;
                    };
                    let dest = if towards_target {
                        *client.lock().expect("lock") = Some(sender);
                        Some(target)
                    } else {
                        *client.lock().expect("lock")
                    };
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    if state % 100 < percent {
                        dropped += 1;
                        continue;
                    }
                    if let Some(dest) = dest
                        && to.send_to(&buf[..n], dest).is_ok()
                    {
                        forwarded += 1;
                    }
                }
                (forwarded, dropped)
            }
        };
        let threads = vec![
            std::thread::spawn(run(
                front.try_clone().expect("clone"),
                back.try_clone().expect("clone"),
                seed | 1,
                true,
                Arc::clone(&client),
                Arc::clone(&stop),
            )),
            std::thread::spawn(run(
                back,
                front,
                seed.rotate_left(17) | 1,
                false,
                client,
                Arc::clone(&stop),
            )),
        ];
        LossyRelay {
            port,
            stop,
            threads,
        }
    }

    fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Stops the relay: datagrams forwarded and dropped, both directions.
    fn stop(mut self) -> (u64, u64) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.threads
            .drain(..)
            .map(|t| t.join().expect("relay thread"))
            .fold((0, 0), |(f, d), (f2, d2)| (f + f2, d + d2))
    }
}

impl Drop for LossyRelay {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// How many calls the loss test places, and how fast.
const LOSSY_CALLS: u32 = 1000;
const LOSSY_RATE: u32 = 100;

/// 5 % of datagrams lost in both directions, between the caller and
/// switchboard and between switchboard and the phone (two lossy relays:
/// the caller dials the first, the routing data's phone URI names the
/// second): 1,000 calls at 100 per second each end with the phone's 200,
/// the phone gets each call's ACK, and the in-flight gauge returns to 0.
///
/// Why it is not flaky: every message that matters is retransmitted until
/// it gets through. The caller's INVITE (SIPp, every 500 ms until a
/// response), switchboard's INVITE (Timer A from T1; when the 180 and the
/// first 200s were all lost it reaches the phone again after its 200, and
/// the phone answers it with the 200 again, as a phone's server
/// transaction does: sipp-scenarios/proxy_uas_answer_lossy.xml), the phone's 200
/// (SIPp `retrans="100"`, doubling, until the ACK) and the caller's ACK
/// (SIPp sends it again for each retransmitted 200 it gets: the caller
/// stays in the call `-d` 14 s after its ACK for that). An ACK can only
/// reach the phone while switchboard still holds the call (Timer L, 64×T1
/// after the 2xx: T1 = 200 ms here, 12.8 s), which leaves each call eight
/// 200/ACK round trips, each lost with p ≈ 0.19: a call fails with
/// p ≈ 1.4e-6, a run with p ≈ 0.14 %.
#[test]
fn five_percent_loss_both_ways_every_call_answered_and_nothing_leaks() {
    let started = std::time::Instant::now();
    // The phone behind relay B, relay B's port in the routing data.
    let phone_port = common::free_udp_port();
    let phone_relay = LossyRelay::start(
        std::net::SocketAddr::from(([127, 0, 0, 1], phone_port)),
        5,
        0x5eed_0001,
    );
    let rig = Rig::start_at(
        RigOptions {
            ring_seconds: NEVER_RINGS_OUT,
            t1_ms: 200,
            ..RigOptions::default()
        },
        phone_relay.port,
        common::free_udp_port(),
    );
    let caller_relay = LossyRelay::start(rig.server.udp, 5, 0x5eed_0002);
    let calls = LOSSY_CALLS.to_string();
    let retrans = ["-max_invite_retrans", "12", "-max_non_invite_retrans", "12"];
    let mut uas_args = vec!["-m", &calls];
    uas_args.extend(retrans);
    let mut phone = rig.uas("phone", "proxy_uas_answer_lossy.xml", phone_port, &uas_args);
    let mut caller_args: Vec<String> = vec![
        "-sf".into(),
        scenario("proxy_uac.xml"),
        "-s".into(),
        proxy_rig::DIALED.into(),
        "-set".into(),
        "expected_status".into(),
        "200".into(),
        "-set".into(),
        "expected_answerer".into(),
        "phone".into(),
        "-d".into(),
        "14000".into(),
        "-i".into(),
        "127.0.0.1".into(),
        "-p".into(),
        common::free_udp_port().to_string(),
        "-m".into(),
        calls.clone(),
        "-r".into(),
        LOSSY_RATE.to_string(),
        "-l".into(),
        "3000".into(),
        "-recv_timeout".into(),
        "30000".into(),
    ];
    caller_args.extend(retrans.map(str::to_owned));
    caller_args.push(caller_relay.addr().to_string());
    let mut caller = sipp(rig.path(), "caller", &caller_args, "150s", false);
    let caller_status = caller.wait(Duration::from_secs(180));
    let phone_status = phone.wait(Duration::from_secs(60));
    let report = || rig.report(&["caller", "phone"]);
    assert!(
        caller_status.success(),
        "not every call got the phone's 200 (exit {caller_status})\n{}",
        report()
    );
    assert!(
        phone_status.success(),
        "not every call's ACK reached the phone (exit {phone_status})\n{}",
        report()
    );
    let idle = rig.wait_idle(Duration::from_secs(60));
    let (through_a, dropped_a) = caller_relay.stop();
    let (through_b, dropped_b) = phone_relay.stop();
    let calls_f = f64::from(LOSSY_CALLS);
    assert_eq!(
        rig.metric(r#"switchboard_proxy_calls_total{final="2xx"}"#),
        calls_f,
        "{}",
        rig.metrics()
    );
    assert_eq!(
        rig.metric(r#"switchboard_proxy_legs_total{outcome="answered"}"#),
        calls_f
    );
    assert_eq!(rig.metric("switchboard_proxy_failovers_total"), 0.0);
    // The relays did lose about 5 %.
    for (through, dropped) in [(through_a, dropped_a), (through_b, dropped_b)] {
        let share = dropped as f64 / (through + dropped) as f64;
        assert!((0.03..0.07).contains(&share), "{dropped} of {through}");
    }
    eprintln!(
        "{LOSSY_CALLS} calls through 5 % loss: relay A {through_a} through, {dropped_a} lost; \
         relay B {through_b} through, {dropped_b} lost; idle {idle:?} after the last; {:?} in all",
        started.elapsed()
    );
}
