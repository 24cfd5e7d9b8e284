//! Fleet rarity: an element of a set metric (a listening port, a
//! destination) that (almost) no peer in the device's group holds.
//!
//! A device infected from its first record teaches a per-device baseline
//! that the infection is normal; its peers do not. A telnet listener that
//! one camera in a thousand opens, or a host on port 8081 that one device
//! dials, is rare across the group from the first sample on.
//!
//! # What counts
//!
//! - An element is a device's from each datapoint that reports it until
//!   `window` after the last one (sets are snapshots: a connection that
//!   lasts is reported by every sample).
//! - A group's peers are the devices that reported the metric; the
//!   element's holders are counted among them. What is judged is not the
//!   share seen but how large the share could be: the upper 95 %
//!   confidence bound of the holders (Poisson, [`upper_bound`]) over the
//!   peers. The score is `threshold × peers / upper_bound(holders)`, so
//!   1 means "confidently at most the rare share": one device in a
//!   thousand scores 2.1 at a 1 % share, three score 1.3, five 0.95. A
//!   small or half-arrived group cannot call anything rare (one holder
//!   among 150 could be a 3 % element): after a restart, while devices
//!   come back one by one, an element 2 % of the fleet holds is not
//!   flagged by chance. Groups smaller than `min_peers` are not judged
//!   at all.
//! - Destinations (`host:port`) are judged by what the port means: an
//!   infrastructure service (DNS, NTP) is never rare; a web or IoT
//!   application port counts as the port alone (`*:443`), since content
//!   networks and pools hand each device different addresses; any other
//!   port counts as the exact endpoint.
//!
//! # Memory
//!
//! Per device and behaviour at most [`MAX_HELD`] elements are
//! remembered; a group's count table holds at most
//! [`MAX_GROUP_ELEMENTS`] distinct elements. Elements past either bound
//! are still judged (as held by this device alone on top of the count),
//! but not remembered, so they raise no alert of their own.

use std::fmt::Write as _;

use smol_str::{SmolStr, format_smolstr};

use crate::engine::HashMap;
use crate::flow::{Proto, Service};
use crate::metric::Metric;

/// Most elements remembered per device and rarity behaviour.
pub const MAX_HELD: usize = 256;
/// Most distinct elements counted per group and rarity behaviour.
pub const MAX_GROUP_ELEMENTS: usize = 1 << 20;
/// Upper bound of a device's rarity state per behaviour, in bytes
/// (about 36 KB): its remembered elements (a hash table of at most 512
/// buckets of a 24-byte string, time and flag, and a control byte) and
/// its share of the group's count table (string and count, the table
/// at most half full).
pub const MAX_RARITY_BYTES: usize =
    2 * MAX_HELD * (24 + 16 + 1) + 2 * MAX_HELD * (24 + 4 + 1) + 128;

#[derive(Debug, Clone, Copy)]
struct Entry {
    last_seen: f64,
    alerted: bool,
}

#[derive(Debug, Default)]
struct Held {
    elements: HashMap<SmolStr, Entry>,
    /// No element is older than this: expiry sweeps only when due.
    oldest: f64,
}

/// The holders of each element in one group, for one behaviour.
#[derive(Debug, Default)]
pub(crate) struct RarityGroup {
    counts: HashMap<SmolStr, u32>,
    devices: HashMap<String, Held>,
}

/// The rarity settings of one behaviour.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rule {
    pub(crate) metric: Metric,
    pub(crate) threshold: f64,
    pub(crate) min_peers: u32,
    pub(crate) window: f64,
}

/// What one datapoint's elements showed.
#[derive(Debug, Default)]
pub(crate) struct Judgement {
    /// `threshold × peers / upper_bound(holders)` of the rarest element
    /// (0 below `min_peers`).
    pub(crate) score: f64,
    /// Rare elements not alerted on before, with their holders: what an
    /// alert names. Marked alerted.
    pub(crate) fresh: Vec<(SmolStr, u32)>,
    /// The rarest elements (at most four) and the group, in words; empty
    /// when the score is below half the alert level.
    pub(crate) detail: String,
    /// Devices in the group.
    pub(crate) peers: usize,
}

/// Upper 95 % confidence bounds of a Poisson mean after observing 0..=20
/// events (one-sided, exact: the chi-square quantiles over two).
const UPPER_95: [f64; 21] = [
    3.00, 4.74, 6.30, 7.75, 9.15, 10.51, 11.84, 13.15, 14.43, 15.71, 16.96, 18.21, 19.44, 20.67,
    21.89, 23.10, 24.30, 25.50, 26.69, 27.88, 29.06,
];

/// How many holders an element could have in truth, at 95 % confidence,
/// when `holders` were seen: the exact bound up to 20, then the normal
/// approximation `c + 1.645 √c + 1.7` (at most 0.1 % above the exact
/// bound from 21 to 100 holders, never below it).
pub(crate) fn upper_bound(holders: u32) -> f64 {
    match UPPER_95.get(holders as usize) {
        Some(u) => *u,
        None => {
            let c = f64::from(holders);
            c + 1.645 * c.sqrt() + 1.7
        }
    }
}

/// The element under which rarity counts `element` of `metric`; `None`
/// when it is never rare.
pub(crate) fn key(metric: Metric, element: &str) -> Option<SmolStr> {
    if metric != Metric::RemoteDestinations {
        return Some(SmolStr::new(element));
    }
    let port = element
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok());
    let Some(port) = port else {
        return Some(SmolStr::new(element));
    };
    match Service::of(Proto::Tcp, port) {
        Service::Infrastructure => None,
        Service::Application => Some(format_smolstr!("*:{port}")),
        Service::Login | Service::Unusual => Some(SmolStr::new(element)),
    }
}

impl RarityGroup {
    /// Records the elements a device reported at `now` (unix seconds) and
    /// judges them against the group.
    pub(crate) fn observe<'a>(
        &mut self,
        device: &str,
        elements: impl Iterator<Item = &'a str>,
        rule: Rule,
        now: f64,
    ) -> Judgement {
        if !self.devices.contains_key(device) {
            self.devices.insert(device.to_owned(), Held::default());
        }
        let RarityGroup { counts, devices } = self;
        let peers = devices.len();
        let Some(held) = devices.get_mut(device) else {
            return Judgement::default();
        };
        // Expire what the device has not reported for a window.
        if now - held.oldest > rule.window && !held.elements.is_empty() {
            let horizon = now - rule.window;
            let mut oldest = now;
            held.elements.retain(|e, entry| {
                if entry.last_seen < horizon {
                    release(counts, e);
                    false
                } else {
                    oldest = oldest.min(entry.last_seen);
                    true
                }
            });
            held.oldest = oldest;
        }
        if held.elements.is_empty() {
            held.oldest = now;
        }
        // (element, holders, remembered) of this datapoint.
        let mut seen: Vec<(SmolStr, u32, bool)> = Vec::new();
        for e in elements {
            let Some(k) = key(rule.metric, e) else {
                continue;
            };
            if seen.iter().any(|(s, _, _)| *s == k) {
                continue;
            }
            let remembered = if let Some(entry) = held.elements.get_mut(&k) {
                entry.last_seen = now;
                true
            } else if held.elements.len() < MAX_HELD
                && (counts.len() < MAX_GROUP_ELEMENTS || counts.contains_key(&k))
            {
                *counts.entry(k.clone()).or_insert(0) += 1;
                held.elements.insert(
                    k.clone(),
                    Entry {
                        last_seen: now,
                        alerted: false,
                    },
                );
                true
            } else {
                false
            };
            let holders = counts.get(&k).copied().unwrap_or(0) + u32::from(!remembered);
            seen.push((k, holders.max(1), remembered));
        }
        let mut out = Judgement {
            peers,
            ..Judgement::default()
        };
        if peers < rule.min_peers as usize || seen.is_empty() {
            return out;
        }
        seen.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        let score_of = |holders: u32| rule.threshold * peers as f64 / upper_bound(holders);
        out.score = score_of(seen[0].1);
        for (k, holders, remembered) in &seen {
            if score_of(*holders) < 1.0 {
                break;
            }
            if let (true, Some(entry)) = (*remembered, held.elements.get_mut(k))
                && !entry.alerted
            {
                entry.alerted = true;
                out.fresh.push((k.clone(), *holders));
            }
        }
        // Words only when they will be shown (the engine lists reasons from
        // half the threshold up): this runs for every datapoint of a group.
        if out.score < 0.5 {
            return out;
        }
        let shown: Vec<String> = seen
            .iter()
            .take(4)
            .map(|(k, h, _)| format!("{k} ({h})"))
            .collect();
        let _ = write!(
            out.detail,
            "{} held by few of the group's {peers} devices: {} (rare: at most {}%)",
            rule.metric.name(),
            shown.join(", "),
            rule.threshold * 100.0
        );
        out
    }

    /// Drops a device's elements.
    pub(crate) fn forget(&mut self, device: &str) {
        if let Some(held) = self.devices.remove(device) {
            for e in held.elements.keys() {
                release(&mut self.counts, e);
            }
        }
    }

    /// Bytes of `device`'s remembered elements and its share of the count
    /// table, as [`MAX_RARITY_BYTES`] bounds them.
    #[cfg(test)]
    pub(crate) fn device_bytes(&self, device: &str) -> usize {
        let Some(held) = self.devices.get(device) else {
            return 0;
        };
        let buckets = (held.elements.capacity() * 8 / 7).next_power_of_two();
        assert_eq!(size_of::<SmolStr>() + size_of::<Entry>(), 24 + 16);
        buckets * (24 + 16 + 1) + 2 * held.elements.len() * (24 + 4 + 1) + 128
    }
}

fn release(counts: &mut HashMap<SmolStr, u32>, e: &SmolStr) {
    if let Some(c) = counts.get_mut(e) {
        *c -= 1;
        if *c == 0 {
            counts.remove(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(metric: Metric) -> Rule {
        Rule {
            metric,
            threshold: 0.01,
            min_peers: 100,
            window: 3600.0,
        }
    }

    #[test]
    fn the_bound_grows_with_the_holders_and_joins_its_approximation() {
        let mut last = 0.0;
        for c in 0..500 {
            let u = upper_bound(c);
            assert!(u > last && u > f64::from(c), "{c}: {u}");
            last = u;
        }
        // The exact bounds at 21, 30 and 100 holders.
        for (c, exact) in [(21, 30.24), (30, 40.69), (100, 118.08)] {
            let u = upper_bound(c);
            assert!(u >= exact - 0.01 && u <= exact * 1.001, "{c}: {u}");
        }
    }

    #[test]
    fn destinations_count_by_what_their_port_means() {
        let k = |e| key(Metric::RemoteDestinations, e);
        assert_eq!(k("8.8.8.8:53"), None);
        assert_eq!(k("203.0.113.5:443").as_deref(), Some("*:443"));
        assert_eq!(k("[2001:db8::1]:8883").as_deref(), Some("*:8883"));
        assert_eq!(
            k("198.51.100.66:8081").as_deref(),
            Some("198.51.100.66:8081")
        );
        assert_eq!(k("198.51.100.9:23").as_deref(), Some("198.51.100.9:23"));
        assert_eq!(k("no-port").as_deref(), Some("no-port"));
        assert_eq!(
            key(Metric::ListeningPorts, "udp/123").as_deref(),
            Some("udp/123")
        );
    }

    #[test]
    fn one_in_a_thousand_is_rare_once_and_a_common_element_never() {
        let mut g = RarityGroup::default();
        let r = rule(Metric::ListeningPorts);
        for i in 0..999 {
            let ports = if i % 10 == 0 {
                vec!["udp/123", "tcp/554"]
            } else {
                vec!["udp/123"]
            };
            let j = g.observe(&format!("d{i}"), ports.into_iter(), r, 0.0);
            assert!(j.fresh.is_empty(), "d{i}: {j:?}");
            if i >= 99 {
                assert!(j.score < 1.0, "d{i}: {}", j.score);
            }
        }
        // The group is too small to judge below min_peers.
        let mut small = RarityGroup::default();
        let j = small.observe("x", ["tcp/4444"].into_iter(), r, 0.0);
        assert_eq!((j.score, j.fresh.len()), (0.0, 0));

        let j = g.observe("bot", ["udp/123", "tcp/4444"].into_iter(), r, 10.0);
        assert_eq!(j.peers, 1000);
        assert!((j.score - 10.0 / 4.74).abs() < 1e-9, "{j:?}");
        assert_eq!(j.fresh, vec![(SmolStr::new("tcp/4444"), 1)]);
        assert!(j.detail.contains("tcp/4444 (1)"), "{}", j.detail);
        // Once per element: the next sample scores, but does not alert.
        let j = g.observe("bot", ["udp/123", "tcp/4444"].into_iter(), r, 20.0);
        assert!(j.score >= 1.0 && j.fresh.is_empty(), "{j:?}");
        // A window after it last reported it, it is no longer the bot's.
        let j = g.observe("bot", ["udp/123"].into_iter(), r, 20.0 + 3601.0);
        assert!(j.score < 1.0);
        assert!(!g.counts.contains_key("tcp/4444"));
        g.forget("bot");
        assert_eq!(g.devices.len(), 999);
        assert_eq!(g.counts.get("udp/123"), Some(&999));
    }

    #[test]
    fn a_device_reporting_endless_elements_stays_within_its_bound() {
        let mut g = RarityGroup::default();
        let r = rule(Metric::RemoteDestinations);
        for i in 0..1000 {
            g.observe(&format!("d{i}"), ["203.0.113.1:443"].into_iter(), r, 0.0);
        }
        let mut alerts = 0;
        for round in 0..8u32 {
            let many: Vec<String> = (0..4096u32)
                .map(|i| format!("198.51.{}.{}:{}", round % 256, i % 256, 1024 + i))
                .collect();
            let j = g.observe("scanner", many.iter().map(String::as_str), r, 1.0);
            alerts += j.fresh.len();
            assert!(j.score >= 1.0);
            assert!(g.device_bytes("scanner") <= MAX_RARITY_BYTES);
        }
        // Only the remembered ones alert, once each.
        assert_eq!(alerts, MAX_HELD);
        assert_eq!(g.devices["scanner"].elements.len(), MAX_HELD);
        assert!(g.counts.len() <= MAX_HELD + 1);
    }
}
