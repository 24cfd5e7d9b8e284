//! Behaviour semantics: what a device's [`Flow`]s *mean*, scored from the
//! first flow on, with no clean warm-up to learn from.
//!
//! A device infected before it was first seen would teach a per-device
//! baseline that the attack is normal. These behaviours instead judge
//! what the traffic does, in absolute, explained terms:
//!
//! | kind | what it measures | grows with |
//! |---|---|---|
//! | `scan` | distinct hosts on one port (horizontal), distinct ports on one host (vertical), within the window | the count, and the share of attempts nobody answered |
//! | `flood` | connection attempts, or one-way small-packet traffic, towards one host within the window | the rate above a base rate (higher for DNS and NTP) |
//! | `c2` | unanswered retries to one endpoint (a bot calling a dead C&C), regularly spaced repeats (beaconing), outbound to ports no device software dials | the retries above a base, the regularity and the repeats, the port's service class |
//! | `bruteforce` | answered short connections to login services (telnet, SSH, ...) on one host, and on many hosts | the count above a base |
//!
//! Each gives a graded score in `[0, 1]` per flow (so that a ranking of
//! records means something); the datapoint's score is the highest of its
//! flows. Scores saturate as `x / (x + h)`: half way at `h`, never quite 1.
//! Loopback, link-local, multicast and broadcast traffic ([`Scope::Local`])
//! is its own category and never a destination; inbound flows (a peer
//! connecting to one of the device's listening ports) are not the device's
//! behaviour and score 0 here.
//!
//! Services are understood by what they are, not whitelisted by address:
//! DNS, NTP, DHCP, mDNS and SSDP are infrastructure, so repeats to a
//! resolver are normal and a higher flood base applies, while scanning
//! port 53 across many hosts is still scanning.
//!
//! # Memory
//!
//! Every table is a small vector with a fixed capacity; when full, expired
//! entries go first, then the least recently seen. The worst case per
//! device and behaviour is stated by [`MAX_STATE_BYTES`] and checked by a
//! test.

use std::net::IpAddr;

use crate::flow::{Direction, Flow, Proto, Scope, Service};

/// Keys (ports, hosts, endpoints) one table tracks.
const KEYS: usize = 32;
/// Members (hosts of a port, ports of a host) one key tracks.
const MEMBERS: usize = 32;
/// Repeat times kept per endpoint for beaconing.
const BEACON_TIMES: usize = 12;

/// The most memory one semantic behaviour keeps for one device, in bytes
/// (every table full). Typical devices, with a handful of peers, keep a
/// few hundred bytes.
pub const MAX_STATE_BYTES: usize =
    2 * KEYS * (40 + MEMBERS * 24) + 2 * KEYS * (64 + 8 * BEACON_TIMES);

/// `x / (x + half)` for `x > 0`, else 0: 0.5 at `half`, towards 1 beyond.
fn sat(x: f64, half: f64) -> f64 {
    if x > 0.0 { x / (x + half) } else { 0.0 }
}

/// A count that decays exponentially with time constant `tau`: after a
/// steady rate, it holds about the events of the last `tau` seconds.
#[derive(Debug, Clone, Copy, Default)]
struct Decayed {
    value: f64,
    at: f64,
}

impl Decayed {
    fn get(&self, now: f64, tau: f64) -> f64 {
        let dt = (now - self.at).max(0.0);
        self.value * (-dt / tau).exp()
    }

    fn add(&mut self, now: f64, tau: f64, x: f64) -> f64 {
        self.value = self.get(now, tau) + x;
        self.at = now.max(self.at);
        self.value
    }
}

/// A bounded map kept as a vector (small, so a linear scan is cheap and
/// there is no per-entry allocation).
#[derive(Debug)]
struct Table<K, V> {
    entries: Vec<(K, f64, V)>,
    cap: usize,
}

impl<K: PartialEq + Copy, V> Table<K, V> {
    fn new(cap: usize) -> Self {
        Table {
            entries: Vec::new(),
            cap,
        }
    }

    /// The entry for `key`, created with `make` if new; marks it seen at
    /// `now`. A full table drops entries not seen since `horizon`, then
    /// the least recently seen one.
    fn touch(&mut self, key: K, now: f64, horizon: f64, make: impl FnOnce() -> V) -> &mut V {
        if let Some(i) = self.entries.iter().position(|(k, _, _)| *k == key) {
            let e = &mut self.entries[i];
            e.1 = e.1.max(now);
            return &mut self.entries[i].2;
        }
        if self.entries.len() >= self.cap {
            self.entries.retain(|(_, seen, _)| *seen >= horizon);
            if self.entries.len() >= self.cap {
                let oldest = self
                    .entries
                    .iter()
                    .enumerate()
                    .min_by(|a, b| a.1.1.total_cmp(&b.1.1))
                    .map_or(0, |(i, _)| i);
                self.entries.swap_remove(oldest);
            }
        }
        self.entries.push((key, now, make()));
        let last = self.entries.len() - 1;
        &mut self.entries[last].2
    }

    /// Keys seen since `horizon`.
    fn live(&self, horizon: f64) -> impl Iterator<Item = &(K, f64, V)> {
        self.entries
            .iter()
            .filter(move |(_, seen, _)| *seen >= horizon)
    }
}

/// One flow's assessment by one behaviour.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Assessment {
    /// In `[0, 1]`.
    pub(crate) score: f64,
    /// What fired and why, with the rate or spacing and the baseline.
    pub(crate) detail: String,
    /// The endpoints that mattered, most recent first.
    pub(crate) endpoints: Vec<String>,
}

impl Assessment {
    fn none() -> Assessment {
        Assessment {
            score: 0.0,
            detail: String::new(),
            endpoints: Vec::new(),
        }
    }
}

/// Whether a flow is the device's own outbound traffic to a real
/// destination (not its link, not a peer calling in).
fn outbound(f: &Flow) -> bool {
    f.direction == Direction::Outbound && f.scope() != Scope::Local
}

fn pct(x: f64) -> String {
    format!("{:.0}%", (x * 100.0).clamp(0.0, 100.0))
}

fn endpoint(proto: Proto, host: IpAddr, port: u16) -> String {
    format!("{}/{}", proto.name(), crate::flow::host_port(host, port))
}

#[derive(Debug)]
struct Spread<M> {
    members: Table<M, ()>,
    tries: Decayed,
    unanswered: Decayed,
}

impl<M: PartialEq + Copy> Spread<M> {
    fn new() -> Self {
        Spread {
            members: Table::new(MEMBERS),
            tries: Decayed::default(),
            unanswered: Decayed::default(),
        }
    }

    /// Records one flow to `member`; returns (distinct members in the
    /// window, unanswered share).
    fn add(&mut self, member: M, f: &Flow, now: f64, window: f64) -> (usize, f64) {
        let horizon = now - window;
        self.members.touch(member, now, horizon, || ());
        let tries = self.tries.add(now, window, f64::from(f.attempts));
        let unanswered = self
            .unanswered
            .add(now, window, f64::from(f.unanswered() + f.rejected));
        (self.members.live(horizon).count(), unanswered / tries)
    }
}

/// Distinct hosts per port, distinct ports per host.
#[derive(Debug)]
pub(crate) struct ScanState {
    by_port: Table<(Proto, u16), Spread<IpAddr>>,
    by_host: Table<IpAddr, Spread<(Proto, u16)>>,
}

/// How far the share of unanswered attempts moves a scan score: a fan-out
/// that everyone answers (a device talking to many CDN hosts on 443) stays
/// at 35 % of a scan that nobody answers.
fn unanswered_weight(u: f64) -> f64 {
    0.35 + 0.65 * u.clamp(0.0, 1.0)
}

impl ScanState {
    pub(crate) fn new() -> Self {
        ScanState {
            by_port: Table::new(KEYS),
            by_host: Table::new(KEYS),
        }
    }

    pub(crate) fn assess(&mut self, f: &Flow, now: f64, window: f64, explain: f64) -> Assessment {
        if !outbound(f) {
            return Assessment::none();
        }
        let horizon = now - window;
        let port = (f.proto, f.remote_port);
        let (hosts, u_h) = self
            .by_port
            .touch(port, now, horizon, Spread::new)
            .add(f.remote, f, now, window);
        let (ports, u_v) = self
            .by_host
            .touch(f.remote, now, horizon, Spread::new)
            .add(port, f, now, window);
        let horizontal = sat(hosts as f64 - 1.0, 6.0) * unanswered_weight(u_h);
        let vertical = sat(ports as f64 - 1.0, 6.0) * unanswered_weight(u_v);
        let score = horizontal.max(vertical);
        if score < explain {
            return Assessment {
                score,
                ..Assessment::none()
            };
        }
        let more = |n: usize| if n >= MEMBERS { "at least " } else { "" };
        let (detail, endpoints) = if horizontal >= vertical {
            let spread = self.by_port.live(horizon).find(|(k, _, _)| *k == port);
            let mut hosts_seen: Vec<_> = spread
                .map(|(_, _, s)| s.members.live(horizon).map(|(h, t, _)| (*t, *h)).collect())
                .unwrap_or_default();
            hosts_seen.sort_by(|a, b| b.0.total_cmp(&a.0));
            (
                format!(
                    "horizontal scan: {}{hosts} distinct hosts on {}/{} within {}s, {} of attempts unanswered (a device normally dials one or a few hosts per port)",
                    more(hosts),
                    f.proto.name(),
                    f.remote_port,
                    window as i64,
                    pct(u_h)
                ),
                hosts_seen
                    .iter()
                    .map(|(_, h)| endpoint(f.proto, *h, f.remote_port))
                    .collect(),
            )
        } else {
            let spread = self.by_host.live(horizon).find(|(k, _, _)| *k == f.remote);
            let mut ports_seen: Vec<_> = spread
                .map(|(_, _, s)| s.members.live(horizon).map(|(p, t, _)| (*t, *p)).collect())
                .unwrap_or_default();
            ports_seen.sort_by(|a, b| b.0.total_cmp(&a.0));
            (
                format!(
                    "vertical scan: {}{ports} distinct ports on {} within {}s, {} of attempts unanswered",
                    more(ports),
                    f.remote,
                    window as i64,
                    pct(u_v)
                ),
                ports_seen
                    .iter()
                    .map(|(_, (p, port))| endpoint(*p, f.remote, *port))
                    .collect(),
            )
        };
        Assessment {
            score,
            detail,
            endpoints,
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct FloodEntry {
    tries: Decayed,
    packets_out: Decayed,
    packets_in: Decayed,
    bytes_out: Decayed,
}

/// Attempts and one-way packets per host.
#[derive(Debug)]
pub(crate) struct FloodState {
    by_host: Table<IpAddr, FloodEntry>,
}

/// Attempts towards one host within the window that a device may make
/// (per 10 s: a chatty app, a burst of lookups).
const FLOOD_BASE: f64 = 20.0;
/// The same for DNS and NTP, which devices query in bursts.
const FLOOD_BASE_INFRA: f64 = 60.0;
/// One-way packets per second towards one host a device may send.
const FLOOD_PPS_BASE: f64 = 200.0;

impl FloodState {
    pub(crate) fn new() -> Self {
        FloodState {
            by_host: Table::new(KEYS),
        }
    }

    pub(crate) fn assess(&mut self, f: &Flow, now: f64, window: f64, explain: f64) -> Assessment {
        if !outbound(f) {
            return Assessment::none();
        }
        let e = self
            .by_host
            .touch(f.remote, now, now - window, FloodEntry::default);
        let tries = e.tries.add(now, window, f64::from(f.attempts));
        let pout = e.packets_out.add(now, window, f.packets_out as f64);
        let pin = e.packets_in.add(now, window, f.packets_in as f64);
        let bout = e.bytes_out.add(now, window, f.bytes_out as f64);
        let infra = Service::of(f.proto, f.remote_port) == Service::Infrastructure;
        // Attempts per window, scaled to the 10 s the bases are given for.
        let per10 = tries * 10.0 / window;
        let base = if infra { FLOOD_BASE_INFRA } else { FLOOD_BASE };
        let by_attempts = sat(per10 - base, 2.0 * base);
        // Packets that nobody answers, small ones (not a video stream).
        let pps = pout / window;
        let one_way = pout > 0.0 && pin < 0.1 * pout && bout / pout.max(1.0) < 1000.0;
        let by_packets = if one_way {
            sat(pps - FLOOD_PPS_BASE, FLOOD_PPS_BASE)
        } else {
            0.0
        };
        let score = by_attempts.max(by_packets);
        if score < explain {
            return Assessment {
                score,
                ..Assessment::none()
            };
        }
        let detail = if by_attempts >= by_packets {
            format!(
                "flood: {per10:.0} connection attempts per 10s to {} ({} unanswered in this flow; base {base:.0} per 10s{})",
                f.remote,
                f.unanswered(),
                if infra { " for DNS/NTP" } else { "" }
            )
        } else {
            format!(
                "flood: {pps:.0} one-way packets/s to {} ({:.0} B each; base {FLOOD_PPS_BASE:.0}/s)",
                f.remote,
                bout / pout.max(1.0)
            )
        };
        Assessment {
            score,
            detail,
            endpoints: vec![endpoint(f.proto, f.remote, f.remote_port)],
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct C2Entry {
    unanswered: Decayed,
    times: [f64; BEACON_TIMES],
    n: usize,
}

impl Default for C2Entry {
    fn default() -> Self {
        C2Entry {
            unanswered: Decayed::default(),
            times: [0.0; BEACON_TIMES],
            n: 0,
        }
    }
}

impl C2Entry {
    fn push(&mut self, t: f64) {
        self.times[self.n % BEACON_TIMES] = t;
        self.n += 1;
    }

    /// The kept repeat times, oldest first.
    fn times(&self) -> Vec<f64> {
        let k = self.n.min(BEACON_TIMES);
        (0..k)
            .map(|i| self.times[(self.n - k + i) % BEACON_TIMES])
            .collect()
    }

    /// (intervals, mean spacing, coefficient of variation).
    fn spacing(&self) -> Option<(usize, f64, f64)> {
        let t = self.times();
        if t.len() < 4 {
            return None;
        }
        let gaps: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
        let n = gaps.len() as f64;
        let mean = gaps.iter().sum::<f64>() / n;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n;
        Some((gaps.len(), mean, var.sqrt() / mean.max(1e-9)))
    }
}

/// Retries, repeat spacing and service class per endpoint.
#[derive(Debug)]
pub(crate) struct C2State {
    by_endpoint: Table<(Proto, IpAddr, u16), C2Entry>,
}

/// Unanswered attempts to one endpoint within the window that are not yet
/// a retry storm (a flaky link, a reboot); DNS and NTP get more.
const RETRY_BASE: f64 = 2.0;
const RETRY_BASE_INFRA: f64 = 10.0;
/// Shortest mean spacing that counts as beaconing (faster is a flood).
const BEACON_MIN_PERIOD: f64 = 1.0;
/// The coefficient of variation of the spacing at which regularity is 0.
const BEACON_MAX_CV: f64 = 0.3;
/// Score of a flow to a port no device software usually dials (on its
/// own below any sensible threshold: it orders, it does not alert).
const UNUSUAL_PORT: f64 = 0.3;
/// Score of an outbound flow to a remote-login service.
const OUTBOUND_LOGIN: f64 = 0.35;

impl C2State {
    pub(crate) fn new() -> Self {
        C2State {
            by_endpoint: Table::new(KEYS),
        }
    }

    pub(crate) fn assess(&mut self, f: &Flow, now: f64, window: f64, explain: f64) -> Assessment {
        if !outbound(f) {
            return Assessment::none();
        }
        let service = Service::of(f.proto, f.remote_port);
        let e = self.by_endpoint.touch(
            (f.proto, f.remote, f.remote_port),
            now,
            now - window,
            C2Entry::default,
        );
        let u = e
            .unanswered
            .add(now, window, f64::from(f.unanswered() + f.rejected));
        e.push(now);
        let (base, half) = if service == Service::Infrastructure {
            (RETRY_BASE_INFRA, 10.0)
        } else {
            (RETRY_BASE, 4.0)
        };
        let retry = sat(u - base, half);
        let port_factor = match service {
            Service::Unusual | Service::Login => 1.0,
            Service::Application => 0.45,
            Service::Infrastructure => 0.0,
        };
        let beacon = match e.spacing() {
            Some((gaps, mean, cv)) if mean >= BEACON_MIN_PERIOD => {
                let regularity = (1.0 - cv / BEACON_MAX_CV).clamp(0.0, 1.0);
                (
                    regularity * sat(gaps as f64 - 2.0, 3.0) * port_factor,
                    gaps,
                    mean,
                    cv,
                )
            }
            _ => (0.0, 0, 0.0, 0.0),
        };
        let port = match service {
            Service::Unusual => UNUSUAL_PORT,
            Service::Login => OUTBOUND_LOGIN,
            _ => 0.0,
        };
        let score = retry.max(beacon.0).max(port);
        if score < explain {
            return Assessment {
                score,
                ..Assessment::none()
            };
        }
        let what = endpoint(f.proto, f.remote, f.remote_port);
        let detail = if retry >= beacon.0 && retry >= port {
            format!(
                "C&C retry storm: {u:.0} unanswered attempts to {what} within {}s (base {base:.0})",
                window as i64
            )
        } else if beacon.0 >= port {
            format!(
                "beaconing: {} connections to {what} every {:.1}s (spacing varies {}; regular under {})",
                beacon.1 + 1,
                beacon.2,
                pct(beacon.3),
                pct(BEACON_MAX_CV)
            )
        } else if service == Service::Login {
            format!("outbound connection to the remote-login service {what}")
        } else {
            format!("outbound connection to {what}, a port no common device service uses")
        };
        Assessment {
            score,
            detail,
            endpoints: vec![what],
        }
    }
}

/// Login attempts per host and port.
#[derive(Debug)]
pub(crate) struct BruteState {
    by_target: Table<(IpAddr, u16), Decayed>,
}

/// Answered login connections to one host within the window before it is
/// brute force (a person retyping a password).
const LOGIN_BASE: f64 = 2.0;
/// Longest connection that counts as one login attempt, seconds.
const LOGIN_ATTEMPT_SECS: f64 = 30.0;

impl BruteState {
    pub(crate) fn new() -> Self {
        BruteState {
            by_target: Table::new(KEYS),
        }
    }

    pub(crate) fn assess(&mut self, f: &Flow, now: f64, window: f64, explain: f64) -> Assessment {
        if !outbound(f) || Service::of(f.proto, f.remote_port) != Service::Login {
            return Assessment::none();
        }
        let short = f.duration.is_none_or(|d| d <= LOGIN_ATTEMPT_SECS);
        let horizon = now - window;
        let tries = f64::from(if short { f.answered } else { 0 });
        let c = self
            .by_target
            .touch((f.remote, f.remote_port), now, horizon, Decayed::default)
            .add(now, window, tries);
        let targets = self
            .by_target
            .live(horizon)
            .filter(|(_, _, d)| d.get(now, window) >= 0.5)
            .count();
        let repeated = sat(c - LOGIN_BASE, 4.0);
        let spreading = sat(targets as f64 - 1.0, 4.0);
        let score = repeated.max(spreading);
        if score < explain {
            return Assessment {
                score,
                ..Assessment::none()
            };
        }
        let what = endpoint(f.proto, f.remote, f.remote_port);
        let detail = if repeated >= spreading {
            format!(
                "brute force: {c:.0} short answered connections to {what} within {}s (base {LOGIN_BASE:.0})",
                window as i64
            )
        } else {
            format!(
                "brute force: login connections answered by {targets} hosts within {}s (latest {what})",
                window as i64
            )
        };
        Assessment {
            score,
            detail,
            endpoints: vec![what],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(host: &str, port: u16, answered: bool) -> Flow {
        let mut f = Flow::outbound(Proto::Tcp, host.parse().unwrap(), port);
        if answered {
            f.answered = 1;
        }
        f
    }

    #[test]
    fn tables_stay_bounded() {
        let mut t: Table<u32, ()> = Table::new(4);
        for i in 0..100 {
            t.touch(i, f64::from(i), f64::from(i) - 2.0, || ());
            assert!(t.entries.len() <= 4);
        }
        // The most recent survive.
        assert!(t.entries.iter().any(|(k, _, _)| *k == 99));
        let mut scan = ScanState::new();
        for i in 0..10_000u32 {
            let host = format!("198.51.{}.{}", i / 256 % 256, i % 256);
            scan.assess(
                &flow(&host, (i % 1000) as u16, false),
                f64::from(i),
                300.0,
                0.0,
            );
        }
        assert!(scan.by_port.entries.len() <= KEYS);
        assert!(scan.by_host.entries.len() <= KEYS);
        assert!(
            scan.by_port
                .entries
                .iter()
                .all(|(_, _, s)| s.members.entries.len() <= MEMBERS)
        );
    }

    #[test]
    fn a_scan_nobody_answers_outranks_a_fan_out_everyone_answers() {
        let mut scan = ScanState::new();
        let mut cdn = ScanState::new();
        let (mut s, mut c) = (0.0, 0.0);
        for i in 0..20u8 {
            let t = f64::from(i);
            s = scan
                .assess(&flow(&format!("203.0.113.{i}"), 23, false), t, 300.0, 0.0)
                .score;
            c = cdn
                .assess(&flow(&format!("203.0.113.{i}"), 443, true), t, 300.0, 0.0)
                .score;
        }
        assert!(s > 0.7, "{s}");
        assert!(c < 0.35, "{c}");
    }

    #[test]
    fn beacons_are_regular_and_retries_unanswered() {
        let mut c2 = C2State::new();
        let mut a = Assessment::none();
        for i in 0..12 {
            let t = 1000.0 + 60.0 * f64::from(i) + if i % 2 == 0 { 0.5 } else { -0.5 };
            a = c2.assess(&flow("198.51.100.7", 6667, true), t, 600.0, 0.0);
        }
        assert!(a.score > 0.6, "{a:?}");
        let mut jittery = C2State::new();
        let mut t = 0.0;
        for i in 0..12 {
            t += [5.0, 300.0, 40.0][i % 3];
            a = jittery.assess(&flow("198.51.100.7", 443, true), t, 600.0, 0.0);
        }
        assert!(a.score < 0.1, "{a:?}");
        let mut storm = C2State::new();
        for i in 0..10 {
            a = storm.assess(
                &flow("198.51.100.9", 443, false),
                f64::from(i) * 3.0,
                600.0,
                0.5,
            );
        }
        assert!(
            a.score > 0.5 && a.detail.starts_with("C&C retry storm"),
            "{a:?}"
        );
    }

    #[test]
    fn the_stated_bound_covers_the_tables() {
        use std::mem::size_of;
        let scan_entry = size_of::<((Proto, u16), f64, Spread<IpAddr>)>()
            + MEMBERS * size_of::<(IpAddr, f64, ())>();
        let host_entry = size_of::<(IpAddr, f64, Spread<(Proto, u16)>)>()
            + MEMBERS * size_of::<((Proto, u16), f64, ())>();
        let c2_entry = size_of::<((Proto, IpAddr, u16), f64, C2Entry)>();
        let flood_entry = size_of::<(IpAddr, f64, FloodEntry)>();
        let scan = KEYS * (scan_entry + host_entry);
        assert!(scan <= MAX_STATE_BYTES, "{scan} > {MAX_STATE_BYTES}");
        assert!(KEYS * c2_entry <= MAX_STATE_BYTES);
        assert!(KEYS * flood_entry <= MAX_STATE_BYTES);
    }
}
