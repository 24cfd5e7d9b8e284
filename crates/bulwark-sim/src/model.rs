//! The behaviour of one virtual device: pure, seeded, time passed in.
//!
//! A [`DeviceModel`] turns `(seed, now)` into the telemetry a small Linux
//! device would report: a few services listening, a few long-lived peers,
//! traffic that follows the device's local time of day, the odd failed
//! login, reboots that reset its counters, and — on flaky links — samples
//! that never arrive. Personas make a fleet varied: most devices are
//! ordinary, some quiet, a few chatty. An [`AttackSwitch`] turns one of the
//! named [`Attack`]s on; once the device is isolated
//! ([`DeviceModel::cut_off`]) its traffic stops except to the control plane.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use bulwark_proto::telemetry::{
    Connection, ConnectionState, ListeningPort, NetCounters, TELEMETRY_SCHEMA, Telemetry,
    TransportProto,
};

/// SplitMix64: a small, seedable generator for simulated noise (not for
/// anything secret).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `lo..hi` (`lo` when the range is empty).
    pub fn below(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// A standard normal variate (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// The attacks the simulator can stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    /// Mirai-style telnet scanning: SYNs to hundreds of random addresses
    /// on ports 23 and 2323.
    MiraiScan,
    /// Password guessing against the device's SSH: many failed logins.
    Bruteforce,
    /// Bulk upload to one new destination: bytes out far above normal.
    Exfil,
    /// A command-and-control beacon: a short connection to a new remote
    /// peer at every sample, regularly spaced.
    C2Beacon,
    /// A backdoor: new listening ports (4444 and telnet).
    NewListener,
}

impl Attack {
    /// Every attack, in CLI order.
    pub const ALL: [Attack; 5] = [
        Attack::MiraiScan,
        Attack::Bruteforce,
        Attack::Exfil,
        Attack::C2Beacon,
        Attack::NewListener,
    ];

    /// The CLI name, e.g. `mirai-scan`.
    pub fn name(self) -> &'static str {
        match self {
            Attack::MiraiScan => "mirai-scan",
            Attack::Bruteforce => "bruteforce",
            Attack::Exfil => "exfil",
            Attack::C2Beacon => "c2-beacon",
            Attack::NewListener => "new-listener",
        }
    }

    fn code(self) -> u8 {
        match self {
            Attack::MiraiScan => 1,
            Attack::Bruteforce => 2,
            Attack::Exfil => 3,
            Attack::C2Beacon => 4,
            Attack::NewListener => 5,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        Attack::ALL.into_iter().find(|a| a.code() == c)
    }
}

impl fmt::Display for Attack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Attack {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Attack::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown attack {s:?}; one of: {}",
                    Attack::ALL.map(Attack::name).join(", ")
                )
            })
    }
}

/// Turns an attack on for the devices that share it: set once, from a
/// given time on. Shared by the attacking devices' models.
#[derive(Debug, Default)]
pub struct AttackSwitch {
    kind: AtomicU8,
    from_ms: AtomicU64,
}

impl AttackSwitch {
    /// Armed for `attack` from `from_ms` (unix milliseconds).
    pub fn arm(&self, attack: Attack, from_ms: u64) {
        self.from_ms.store(from_ms, Ordering::Release);
        self.kind.store(attack.code(), Ordering::Release);
    }

    /// The attack running at `now_ms`, if any.
    pub fn active(&self, now_ms: u64) -> Option<Attack> {
        let kind = Attack::from_code(self.kind.load(Ordering::Acquire))?;
        (now_ms >= self.from_ms.load(Ordering::Acquire)).then_some(kind)
    }
}

/// How busy a device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persona {
    /// A sensor that mostly sleeps.
    Quiet,
    /// The common case.
    Normal,
    /// A camera or gateway: ten times the traffic, more peers.
    Chatty,
}

/// The fixed traits of one device, drawn from its seed.
#[derive(Debug, Clone)]
pub struct Traits {
    /// How busy it is.
    pub persona: Persona,
    /// Loses samples and check-ins now and then.
    pub flaky: bool,
    /// Hours ahead of UTC of the device's site (for the daily cycle).
    pub utc_offset_h: f64,
    /// Services it runs.
    pub listening: Vec<ListeningPort>,
    /// Peers it keeps talking to.
    pub peers: Vec<(IpAddr, u16)>,
    /// Mean bytes sent per sample at the daily mean.
    pub bytes_per_sample: f64,
    base_cpu: f64,
    base_memory: f64,
    base_processes: u64,
}

impl Traits {
    /// The traits of device `index` in a fleet seeded with `seed`.
    pub fn draw(seed: u64, index: u64) -> Self {
        let mut rng = Rng::new(seed ^ index.wrapping_mul(0xA24B_AED4_963E_E407));
        let persona = match rng.below(0, 100) {
            0..15 => Persona::Quiet,
            15..93 => Persona::Normal,
            _ => Persona::Chatty,
        };
        let any4 = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let mut listening = vec![ListeningPort {
            proto: TransportProto::Udp,
            port: 123,
            addr: any4,
        }];
        if rng.chance(0.7) {
            listening.push(ListeningPort {
                proto: TransportProto::Tcp,
                port: 22,
                addr: any4,
            });
        }
        if persona == Persona::Chatty {
            listening.push(ListeningPort {
                proto: TransportProto::Tcp,
                port: 554,
                addr: any4,
            });
        }
        listening.sort();
        let peer_count = match persona {
            Persona::Quiet => 1,
            Persona::Normal => rng.below(2, 4),
            Persona::Chatty => rng.below(4, 7),
        };
        // The fleet's cloud endpoints (TEST-NET-3) and a per-site NTP server.
        let mut peers: Vec<(IpAddr, u16)> = (0..peer_count)
            .map(|_| {
                let host = u8::try_from(rng.below(10, 20)).unwrap_or(10);
                (IpAddr::V4(Ipv4Addr::new(203, 0, 113, host)), 443)
            })
            .collect();
        peers.sort();
        peers.dedup();
        let bytes_per_sample = match persona {
            Persona::Quiet => 2_000.0,
            Persona::Normal => 20_000.0,
            Persona::Chatty => 200_000.0,
        } * (0.5 + rng.unit());
        Self {
            persona,
            flaky: rng.chance(0.05),
            utc_offset_h: rng.below(0, 24) as f64,
            listening,
            peers,
            bytes_per_sample,
            base_cpu: 5.0 + 20.0 * rng.unit(),
            base_memory: 25.0 + 30.0 * rng.unit(),
            base_processes: rng.below(40, 120),
        }
    }
}

/// Chance per sample that a device reboots.
pub const REBOOT_CHANCE: f64 = 1.0 / 5_000.0;
/// Chance per sample that a flaky device's sample is lost.
pub const FLAKY_LOSS: f64 = 0.15;

/// One virtual device's telemetry over time.
#[derive(Debug)]
pub struct DeviceModel {
    traits: Traits,
    rng: Rng,
    seq: u64,
    counters: NetCounters,
    down_until_ms: u64,
}

impl DeviceModel {
    /// Device `index` of a fleet seeded with `seed`.
    pub fn new(seed: u64, index: u64) -> Self {
        Self {
            traits: Traits::draw(seed, index),
            rng: Rng::new(seed.rotate_left(17) ^ index),
            seq: 0,
            counters: NetCounters::default(),
            down_until_ms: 0,
        }
    }

    /// Its fixed traits.
    pub fn traits(&self) -> &Traits {
        &self.traits
    }

    /// Whether the device is rebooting (or its link is down) at `now_ms`.
    pub fn is_down(&self, now_ms: u64) -> bool {
        now_ms < self.down_until_ms
    }

    /// The daily cycle at `now_ms`: 0.4 at night to 1.6 in the afternoon.
    pub fn diurnal(&self, now_ms: u64) -> f64 {
        let hours = (now_ms as f64 / 3_600_000.0 + self.traits.utc_offset_h).rem_euclid(24.0);
        1.0 + 0.6 * (std::f64::consts::TAU * (hours - 9.0) / 24.0).sin()
    }

    /// The sample at `now_ms`, `None` when nothing arrives (rebooting, or a
    /// flaky link dropped it). `attack` is what the device is doing on top
    /// of its normal behaviour; `cut_off` means it is isolated: only the
    /// control plane is reachable, so only its baseline shows and nothing
    /// of the attack gets out.
    pub fn sample(
        &mut self,
        now_ms: u64,
        attack: Option<Attack>,
        cut_off: bool,
    ) -> Option<Telemetry> {
        if self.is_down(now_ms) {
            return None;
        }
        if self.rng.chance(REBOOT_CHANCE) {
            // Down for 20–60 s; counters and the sample number start over.
            self.down_until_ms = now_ms + self.rng.below(20_000, 60_000);
            self.seq = 0;
            self.counters = NetCounters::default();
            return None;
        }
        if self.traits.flaky && self.rng.chance(FLAKY_LOSS) {
            return None;
        }
        let d = self.diurnal(now_ms);
        let noise = (0.25 * self.rng.normal()).exp();
        let mut out = if cut_off {
            0.0
        } else {
            self.traits.bytes_per_sample * d * noise
        };
        let mut inb = out * 3.0;
        let mut t = Telemetry {
            schema: TELEMETRY_SCHEMA,
            time: now_ms,
            seq: self.seq,
            listening: self.traits.listening.clone(),
            ..Telemetry::default()
        };
        if !cut_off {
            for (i, (addr, port)) in self.traits.peers.iter().enumerate() {
                t.connections.push(Connection {
                    proto: TransportProto::Tcp,
                    local_port: 40_000 + u16::try_from(i).unwrap_or(0),
                    remote_addr: *addr,
                    remote_port: *port,
                    state: ConnectionState::Established,
                });
            }
        }
        let attempts_max = match self.traits.persona {
            Persona::Quiet => 1,
            Persona::Normal => 3,
            Persona::Chatty => 8,
        };
        t.connection_attempts = self.rng.below(0, attempts_max + 1);
        t.failed_logins = Some(u64::from(self.rng.chance(0.01)));
        t.failed_attempts = Some(0);
        t.process_count = self.traits.base_processes + self.rng.below(0, 6);
        t.cpu_percent =
            (self.traits.base_cpu * d + 3.0 * self.rng.normal()).clamp(0.0, 100.0) as f32;
        t.memory_percent =
            (self.traits.base_memory + 2.0 * self.rng.normal()).clamp(0.0, 100.0) as f32;
        if let (Some(attack), false) = (attack, cut_off) {
            match attack {
                Attack::MiraiScan => {
                    let n = self.rng.below(100, 160);
                    for _ in 0..n {
                        let a = Ipv4Addr::new(
                            u8::try_from(self.rng.below(1, 224)).unwrap_or(1),
                            u8::try_from(self.rng.below(0, 256)).unwrap_or(0),
                            u8::try_from(self.rng.below(0, 256)).unwrap_or(0),
                            u8::try_from(self.rng.below(1, 255)).unwrap_or(1),
                        );
                        t.connections.push(Connection {
                            proto: TransportProto::Tcp,
                            local_port: u16::try_from(self.rng.below(32_768, 61_000))
                                .unwrap_or(40_000),
                            remote_addr: IpAddr::V4(a),
                            remote_port: if self.rng.chance(0.9) { 23 } else { 2323 },
                            state: ConnectionState::SynSent,
                        });
                    }
                    t.connection_attempts += n;
                    // Hosts that refuse, and attempts that timed out.
                    t.failed_attempts = Some(n / 3);
                    out += 60.0 * n as f64;
                    t.cpu_percent = (t.cpu_percent + 40.0).min(100.0);
                    t.process_count += 3;
                }
                Attack::Bruteforce => {
                    t.failed_logins = Some(self.rng.below(40, 90));
                    let attacker = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 23));
                    for k in 0..8 {
                        t.connections.push(Connection {
                            proto: TransportProto::Tcp,
                            local_port: 22,
                            remote_addr: attacker,
                            remote_port: 50_000 + k,
                            state: ConnectionState::SynRecv,
                        });
                    }
                    inb += 200_000.0;
                }
                Attack::Exfil => {
                    out += 400.0 * self.traits.bytes_per_sample.max(20_000.0);
                    t.connections.push(Connection {
                        proto: TransportProto::Tcp,
                        local_port: 45_000,
                        remote_addr: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 77)),
                        remote_port: 443,
                        state: ConnectionState::Established,
                    });
                }
                Attack::C2Beacon => {
                    // A short connection every sample, from a new port,
                    // closed by the time the agent looks (TIME-WAIT).
                    out += 512.0;
                    t.connections.push(Connection {
                        proto: TransportProto::Tcp,
                        local_port: 46_000 + u16::try_from(self.seq % 10_000).unwrap_or(0),
                        remote_addr: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 66)),
                        remote_port: 8081,
                        state: ConnectionState::Closing,
                    });
                }
                Attack::NewListener => {
                    for port in [23, 4444] {
                        t.listening.push(ListeningPort {
                            proto: TransportProto::Tcp,
                            port,
                            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                        });
                    }
                }
            }
        }
        t.listening.sort();
        t.listening.dedup();
        t.connections.sort();
        t.connections.dedup();
        self.counters.bytes_out += out as u64;
        self.counters.bytes_in += inb as u64;
        self.counters.packets_out += (out / 600.0) as u64 + 1;
        self.counters.packets_in += (inb / 900.0) as u64 + 1;
        t.net = self.counters;
        self.seq += 1;
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600_000;

    #[test]
    fn the_same_seed_gives_the_same_device() {
        let mut a = DeviceModel::new(7, 3);
        let mut b = DeviceModel::new(7, 3);
        for i in 0..200 {
            let now = 1_700_000_000_000 + i * 10_000;
            assert_eq!(a.sample(now, None, false), b.sample(now, None, false));
        }
    }

    #[test]
    fn a_fleet_is_varied() {
        let traits: Vec<Traits> = (0..1000).map(|i| Traits::draw(42, i)).collect();
        let chatty = traits
            .iter()
            .filter(|t| t.persona == Persona::Chatty)
            .count();
        let quiet = traits
            .iter()
            .filter(|t| t.persona == Persona::Quiet)
            .count();
        let flaky = traits.iter().filter(|t| t.flaky).count();
        assert!((30..120).contains(&chatty), "{chatty} chatty");
        assert!((80..250).contains(&quiet), "{quiet} quiet");
        assert!((20..90).contains(&flaky), "{flaky} flaky");
        let ssh = traits
            .iter()
            .filter(|t| t.listening.iter().any(|l| l.port == 22))
            .count();
        assert!((600..800).contains(&ssh), "{ssh} with ssh");
    }

    #[test]
    fn traffic_follows_the_time_of_day() {
        let m = DeviceModel::new(1, 1);
        let peak = (0..24).map(|h| m.diurnal(h * HOUR)).fold(0.0, f64::max);
        let low = (0..24)
            .map(|h| m.diurnal(h * HOUR))
            .fold(f64::MAX, f64::min);
        assert!(peak > 1.5 && low < 0.5, "{low}..{peak}");
    }

    #[test]
    fn counters_only_grow_until_a_reboot() {
        let mut m = DeviceModel::new(5, 9);
        let mut last: Option<Telemetry> = None;
        let mut reboots = 0;
        for i in 0..60_000u64 {
            let now = i * 10_000;
            let Some(t) = m.sample(now, None, false) else {
                continue;
            };
            if let Some(p) = &last {
                if t.seq == 0 {
                    reboots += 1;
                } else {
                    assert!(t.net.bytes_out >= p.net.bytes_out);
                    assert_eq!(t.seq, p.seq + 1, "samples are numbered");
                }
            }
            t.encode().expect("every sample encodes within the limits");
            last = Some(t);
        }
        assert!(
            (2..30).contains(&reboots),
            "{reboots} reboots in a week of samples"
        );
    }

    #[test]
    fn each_attack_shows_in_the_metrics_it_should() {
        let base = |m: &mut DeviceModel| m.sample(1_000, None, false).unwrap();
        let mut m = DeviceModel::new(3, 0);
        let normal = base(&mut m);
        let at = |a: Attack| {
            let mut m = DeviceModel::new(3, 0);
            let _ = base(&mut m);
            m.sample(11_000, Some(a), false).unwrap()
        };
        let scan = at(Attack::MiraiScan);
        let syn = scan
            .connections
            .iter()
            .filter(|c| c.state == ConnectionState::SynSent && matches!(c.remote_port, 23 | 2323))
            .count();
        assert!(syn >= 90, "{syn} telnet SYNs");
        assert!(scan.connection_attempts >= 100);
        assert!(at(Attack::Bruteforce).failed_logins.unwrap() >= 40);
        let ex = at(Attack::Exfil);
        assert!(ex.net.bytes_out - normal.net.bytes_out > 100 * normal.net.bytes_out);
        assert!(
            at(Attack::C2Beacon)
                .connections
                .iter()
                .any(|c| c.remote_port == 8081)
        );
        let nl = at(Attack::NewListener);
        assert!(nl.listening.iter().any(|l| l.port == 4444));
        // Isolated: the attack does not get out.
        let mut m = DeviceModel::new(3, 0);
        let _ = base(&mut m);
        let cut = m.sample(11_000, Some(Attack::MiraiScan), true).unwrap();
        assert!(cut.connections.is_empty());
        assert!(cut.connection_attempts <= 3);
    }

    #[test]
    fn attack_names_round_trip_and_unknown_ones_are_refused() {
        for a in Attack::ALL {
            assert_eq!(a.name().parse::<Attack>(), Ok(a));
        }
        let e = "ddos".parse::<Attack>().unwrap_err();
        assert!(e.contains("mirai-scan"), "{e}");
        let s = AttackSwitch::default();
        assert_eq!(s.active(5), None);
        s.arm(Attack::Exfil, 10);
        assert_eq!(s.active(5), None);
        assert_eq!(s.active(10), Some(Attack::Exfil));
    }
}
