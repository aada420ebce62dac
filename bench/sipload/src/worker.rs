//! One thread's load logic, apart from its sockets: which row goes next, how many
//! requests may start now (closed loop: the window; open loop: the schedule,
//! capped by the window), matching an answer to its transaction, recording its
//! latency and building its ACK, and timing out the unanswered. `udp` and `tcp`
//! drive it with their own I/O.

use crate::csv::Row;
use crate::message::{self, BRANCH_COOKIE, Templates};
use crate::pacing::Pacing;
use crate::response::{self, Response};
use crate::stats::Stats;
use crate::table::Table;
use std::time::Duration;

/// Longest a thread waits (blocked in a receive, `poll` or asleep) before it
/// looks at the clock again: timeouts, the end of the run and signals are
/// noticed within this.
pub const WAKE: Duration = Duration::from_millis(10);

/// Receives every outcome, for `verify`; the load run uses `()`, which does
/// nothing and costs nothing.
pub trait Sink {
    fn answered(&mut self, row: u32, response: &Response<'_>);
    fn timed_out(&mut self, row: u32);
}

impl Sink for () {
    #[inline]
    fn answered(&mut self, _: u32, _: &Response<'_>) {}
    #[inline]
    fn timed_out(&mut self, _: u32) {}
}

/// What one thread is asked to do.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Index of this thread and number of threads (rows are dealt round-robin).
    pub thread: u8,
    pub threads: usize,
    /// Outstanding transactions allowed.
    pub window: usize,
    /// Open loop: requests per second for this thread.
    pub rate: Option<f64>,
    /// Requests to send at most (this thread's share).
    pub requests: Option<u64>,
    /// Send until this time (realtime ns).
    pub start_ns: u64,
    pub send_until_ns: u64,
    pub timeout_ns: u64,
    /// Use each row once, in order (verify), instead of wrapping.
    pub once: bool,
}

pub struct Worker<'a, S: Sink> {
    thread: u8,
    run: u32,
    rows: &'a [Row],
    next_row: usize,
    row_step: usize,
    once: bool,
    table: Table,
    window: usize,
    pacing: Option<Pacing>,
    requests_left: u64,
    send_until_ns: u64,
    timeout_ns: u64,
    start_ns: u64,
    sending: bool,
    pub stats: Stats,
    pub sink: S,
}

impl<'a, S: Sink> Worker<'a, S> {
    pub fn new(plan: &Plan, run: u32, rows: &'a [Row], sink: S) -> Self {
        Self {
            thread: plan.thread,
            run,
            rows,
            next_row: plan.thread as usize % rows.len().max(1),
            row_step: plan.threads.max(1),
            once: plan.once,
            table: Table::new(plan.window),
            window: plan.window,
            pacing: plan.rate.map(|r| Pacing::new(plan.start_ns, r)),
            requests_left: plan.requests.unwrap_or(u64::MAX),
            send_until_ns: plan.send_until_ns,
            timeout_ns: plan.timeout_ns,
            start_ns: plan.start_ns,
            sending: true,
            stats: Stats::default(),
            sink,
        }
    }

    /// Whether new requests may still start; the first call that finds the run
    /// over (time, count, rows or a signal) records the sending time.
    #[inline]
    pub fn sending(&mut self, now_ns: u64) -> bool {
        if self.sending
            && (now_ns >= self.send_until_ns
                || self.requests_left == 0
                || (self.once && self.next_row >= self.rows.len())
                || crate::sys::stop_requested())
        {
            self.stop_sending(now_ns);
        }
        self.sending
    }

    /// Stops starting requests (also used when every connection is lost).
    pub fn stop_sending(&mut self, now_ns: u64) {
        if self.sending {
            self.sending = false;
            self.stats.send_ns = now_ns.saturating_sub(self.start_ns);
        }
    }

    /// Whether requests are still being started (as last found by
    /// [`Worker::sending`]).
    #[inline]
    pub fn is_sending(&self) -> bool {
        self.sending
    }

    /// Outstanding transactions.
    #[inline]
    pub fn live(&self) -> usize {
        self.table.live()
    }

    /// How many requests may start now.
    #[inline]
    pub fn budget(&mut self, now_ns: u64) -> usize {
        if !self.sending {
            return 0;
        }
        let room = self.window - self.table.live();
        let want = match &self.pacing {
            None => room as u64,
            Some(p) => {
                let due = p.due(now_ns).saturating_sub(self.stats.sent);
                if due > room as u64 {
                    self.stats.window_full += 1;
                }
                due.min(room as u64)
            }
        };
        let mut n = want.min(self.requests_left);
        if self.once {
            n = n.min((self.rows.len() - self.next_row.min(self.rows.len())) as u64);
        }
        n as usize
    }

    /// Open loop: when the next request is due (realtime ns).
    #[inline]
    pub fn next_due_ns(&self) -> Option<u64> {
        self.pacing.as_ref().map(|p| p.time_of(self.stats.sent))
    }

    /// How long the open loop may wait now: until the next request is due, but at
    /// least one pacing tick (requests due within it go out together: one wake-up
    /// and one send for all of them) and at most [`WAKE`].
    #[inline]
    pub fn open_loop_sleep_ns(&self, now_ns: u64, tick_ns: u64) -> u64 {
        let due = self.next_due_ns().filter(|_| self.sending).unwrap_or(0);
        due.saturating_sub(now_ns)
            .min(WAKE.as_nanos() as u64)
            .max(tick_ns)
    }

    /// Appends a new INVITE to `out` (callers stay within [`Worker::budget`]);
    /// false when the window is full.
    #[inline]
    pub fn start(&mut self, now_ns: u64, tpl: &Templates, out: &mut Vec<u8>) -> bool {
        let row = self.next_row;
        let Some((slot, generation)) = self.table.open(row as u32, now_ns) else {
            return false;
        };
        let id = message::encode_id(self.run, message::tx_number(self.thread, slot, generation));
        tpl.invite(out, &self.rows[row], &id);
        self.next_row += self.row_step;
        if self.next_row >= self.rows.len() && !self.once {
            self.next_row %= self.rows.len();
        }
        self.stats.sent += 1;
        self.requests_left = self.requests_left.saturating_sub(1);
        true
    }

    /// Handles one received message; an ACK, if one is due, is appended to `out`
    /// (with `tpl`, the pieces of the socket it came in on). True when it ended a
    /// transaction (the closed loop may then start another).
    #[inline]
    pub fn answer(&mut self, msg: &[u8], rx_ns: u64, tpl: &Templates, out: &mut Vec<u8>) -> bool {
        let r = match response::parse(msg) {
            Ok(r) => r,
            Err(_) => {
                self.stats.unparsable += 1;
                return false;
            }
        };
        if r.status < 200 {
            self.stats.provisional += 1;
            return false;
        }
        let run = self.run;
        let tx = r
            .branch
            .and_then(|b| b.strip_prefix(BRANCH_COOKIE))
            .and_then(|b| message::decode_id(run, b))
            .or_else(|| r.call_id.and_then(|c| message::decode_id(run, c)));
        let Some(tx) = tx else {
            self.stats.stray += 1;
            return false;
        };
        let (thread, slot, generation) = message::tx_parts(tx);
        let closed = if thread == self.thread {
            self.table.close(slot, generation)
        } else {
            None
        };
        let Some((row, sent_ns)) = closed else {
            self.stats.stray += 1;
            return false;
        };
        self.stats.answered += 1;
        self.stats.codes[usize::from(r.status) - 100] += 1;
        self.stats.latency.record(rx_ns.saturating_sub(sent_ns));
        self.sink.answered(row, &r);
        if r.status >= 300 {
            // RFC 3261 §17.1.1.3: every non-2xx final is ACKed. Without a To
            // there is nothing to put in the ACK's To: counted as an error.
            match r.to {
                Some(to) => {
                    let id = message::encode_id(run, tx);
                    tpl.ack(out, &self.rows[row as usize], &id, to);
                    self.stats.acks += 1;
                }
                None => self.stats.errors += 1,
            }
        }
        true
    }

    /// Times out what was sent `timeout` ago or earlier.
    #[inline]
    pub fn expire(&mut self, now_ns: u64) -> usize {
        let sink = &mut self.sink;
        let n = self
            .table
            .expire(now_ns.saturating_sub(self.timeout_ns), |row| {
                sink.timed_out(row)
            });
        self.stats.timeouts += n as u64;
        n
    }

    /// Times out everything still outstanding (the end of the final wait).
    pub fn expire_all(&mut self) {
        let sink = &mut self.sink;
        let n = self.table.expire(u64::MAX, |row| sink.timed_out(row));
        self.stats.timeouts += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Row> {
        crate::csv::parse("1;a\n2;b\n3;c\n").unwrap()
    }

    fn plan(window: usize) -> Plan {
        Plan {
            thread: 0,
            threads: 1,
            window,
            rate: None,
            requests: None,
            start_ns: 0,
            send_until_ns: u64::MAX,
            timeout_ns: 1_000,
            once: false,
        }
    }

    fn tpl() -> Templates {
        Templates::new(
            "UDP",
            "127.0.0.1:5060".parse().unwrap(),
            "127.0.0.1:4000".parse().unwrap(),
        )
    }

    /// A 404 for the INVITE in `invite`, the way a server would answer it.
    fn answer_to(invite: &[u8], status: &str) -> Vec<u8> {
        let text = std::str::from_utf8(invite).unwrap();
        let mut out = format!("SIP/2.0 {status}\r\n");
        for l in text.split("\r\n") {
            if l.starts_with("Via:") || l.starts_with("From:") || l.starts_with("Call-ID:") {
                out += l;
                out += "\r\n";
            } else if l.starts_with("To:") {
                out += l;
                out += ";tag=srv\r\n";
            }
        }
        out += "Content-Length: 0\r\n\r\n";
        out.into_bytes()
    }

    #[test]
    fn closed_loop_answer_ack_and_stray() {
        let rows = rows();
        let t = tpl();
        let mut w = Worker::new(&plan(2), 7, &rows, ());
        assert_eq!(w.budget(0), 2);
        let mut inv = Vec::new();
        assert!(w.start(10, &t, &mut inv));
        assert_eq!(w.budget(0), 1);
        let resp = answer_to(&inv, "404 Not Found");
        let mut ack = Vec::new();
        assert!(w.answer(&resp, 60, &t, &mut ack));
        let ack = String::from_utf8(ack).unwrap();
        assert!(
            ack.starts_with("ACK sip:1@127.0.0.1:5060 SIP/2.0\r\n"),
            "{ack}"
        );
        assert!(ack.contains(";tag=srv\r\n"));
        assert_eq!(w.stats.codes[404 - 100], 1);
        assert_eq!(w.stats.latency.max(), 50);
        // The same answer again matches nothing and is not ACKed.
        let mut again = Vec::new();
        assert!(!w.answer(&resp, 70, &t, &mut again));
        assert!(again.is_empty());
        assert_eq!(w.stats.stray, 1);
        assert_eq!(w.budget(0), 2);
    }

    #[test]
    fn a_2xx_is_not_acked_and_1xx_ignored() {
        let rows = rows();
        let t = tpl();
        let mut w = Worker::new(&plan(2), 7, &rows, ());
        let mut inv = Vec::new();
        w.start(0, &t, &mut inv);
        let mut out = Vec::new();
        assert!(!w.answer(&answer_to(&inv, "180 Ringing"), 1, &t, &mut out));
        assert!(w.answer(&answer_to(&inv, "200 OK"), 1, &t, &mut out));
        assert!(out.is_empty());
        assert_eq!(
            (w.stats.provisional, w.stats.answered, w.stats.acks),
            (1, 1, 0)
        );
    }

    #[test]
    fn timeouts_and_rows_wrap() {
        let rows = rows();
        let t = tpl();
        let mut w = Worker::new(&plan(4), 7, &rows, ());
        let mut out = Vec::new();
        for _ in 0..4 {
            w.start(10, &t, &mut out);
        }
        let text = String::from_utf8(out).unwrap();
        let ruris: Vec<_> = text.lines().filter(|l| l.starts_with("INVITE")).collect();
        assert!(
            ruris[3].starts_with("INVITE sip:1@"),
            "wrapped to the first row"
        );
        assert_eq!(w.expire(1_009), 0);
        assert_eq!(w.expire(1_010), 4);
        assert_eq!(w.stats.timeouts, 4);
        assert_eq!(w.live(), 0);
    }

    #[test]
    fn once_sends_each_row_once() {
        let rows = rows();
        let t = tpl();
        let mut p = plan(10);
        p.once = true;
        let mut w = Worker::new(&p, 7, &rows, ());
        assert_eq!(w.budget(0), 3);
        let mut out = Vec::new();
        for _ in 0..3 {
            w.start(0, &t, &mut out);
        }
        assert!(!w.sending(0));
        assert_eq!(w.budget(0), 0);
    }

    #[test]
    fn open_loop_budget_follows_the_schedule() {
        let rows = rows();
        let t = tpl();
        let mut p = plan(2);
        p.rate = Some(1_000.0);
        let mut w = Worker::new(&p, 7, &rows, ());
        assert_eq!(w.budget(0), 1);
        assert_eq!(w.budget(5_000_000), 2, "6 due, the window caps");
        assert_eq!(w.stats.window_full, 1);
        let mut out = Vec::new();
        w.start(0, &t, &mut out);
        assert_eq!(w.next_due_ns(), Some(1_000_000));
    }
}
