//! [`FleetEngine`]: a whole fleet on `N` worker threads, one profile per
//! device group, profiles replaceable while it runs.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, SyncSender, TrySendError, channel, sync_channel};
use std::thread::JoinHandle;

use time::OffsetDateTime;

use crate::engine::{Engine, HashMap, SharedPeers};
use crate::metric::Datapoint;
use crate::profile::Profile;
use crate::shard::{MAX_SHARDS, Output, SHARD_QUEUE, shard_of};

/// The group name of the profile that applies to groups without their own.
pub const DEFAULT_GROUP: &str = "*";

enum Input {
    Datapoint {
        group: String,
        // Boxed: a datapoint is a few hundred bytes, the other inputs are
        // small (the gateway's path is `Batch`).
        dp: Box<Datapoint>,
        now: OffsetDateTime,
    },
    Profile {
        profile: Arc<Profile>,
        peers: SharedPeers,
    },
    Forget(String),
    Batch {
        group: String,
        dps: Vec<Datapoint>,
        now: OffsetDateTime,
    },
}

/// Why [`FleetEngine::submit`] did not queue a datapoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitError {
    /// The device's shard queue is full (the caller counts and drops: a
    /// gateway must not block on detection).
    Full,
    /// The workers have stopped (the output receiver was dropped).
    Stopped,
}

/// Runs every device group's profile on `N` worker threads.
///
/// - A device always lands on the same shard (as in
///   [`crate::ShardedEngine`]), so its alerts come out in order.
/// - Each shard keeps one [`Engine`] per group. A group without a
///   profile of its own uses the [`DEFAULT_GROUP`] profile; with neither,
///   its datapoints are dropped and reported as [`FleetOutput::Unprofiled`].
/// - [`FleetEngine::set_profile`] replaces a group's profile on every
///   shard, in queue order with the datapoints: datapoints submitted
///   before it are judged by the old profile, later ones by the new. The
///   group's learned state (baselines, known elements) starts over, since
///   behaviours may have changed meaning.
/// - [`FleetEngine::submit`] never blocks: a full shard queue is
///   [`SubmitError::Full`], so one flooding device cannot stall the
///   caller. Datapoints are judged with the caller's clock passed in
///   (`now`), which rejects far-future device times
///   ([`Engine::observe_at`]).
#[derive(Debug)]
pub struct FleetEngine {
    senders: Vec<SyncSender<Input>>,
    workers: Vec<JoinHandle<()>>,
}

/// What the fleet engine reports.
#[derive(Debug, Clone, PartialEq)]
pub enum FleetOutput {
    /// An alert or a rejected datapoint, as from one [`Engine`].
    Engine {
        /// The device's group.
        group: String,
        /// What happened.
        output: Output,
    },
    /// A datapoint of a group with no profile and no default.
    Unprofiled {
        /// The device.
        device: String,
        /// Its group.
        group: String,
    },
}

struct Shard {
    engines: HashMap<String, Engine>,
    out: Sender<FleetOutput>,
}

impl Shard {
    /// Handles one input; false when nobody listens any more.
    fn handle(&mut self, input: Input) -> bool {
        match input {
            Input::Profile { profile, peers } => {
                self.engines
                    .insert(profile.group.clone(), Engine::with_peers(profile, peers));
                true
            }
            Input::Forget(device) => {
                for e in self.engines.values_mut() {
                    e.forget(&device);
                }
                true
            }
            // By reference: a datapoint is a few hundred bytes, and the
            // engine only reads it.
            Input::Batch { group, dps, now } => self.datapoints(&group, &dps, now),
            Input::Datapoint { group, dp, now } => {
                self.datapoints(&group, std::slice::from_ref(&*dp), now)
            }
        }
    }

    /// Observes datapoints of one group, in order; the group's engine is
    /// looked up once for them all.
    fn datapoints(&mut self, group: &str, dps: &[Datapoint], now: OffsetDateTime) -> bool {
        let key = if self.engines.contains_key(group) {
            group
        } else {
            DEFAULT_GROUP
        };
        let out = &self.out;
        let Some(engine) = self.engines.get_mut(key) else {
            return dps.iter().all(|dp| {
                out.send(FleetOutput::Unprofiled {
                    device: dp.device.to_string(),
                    group: group.to_owned(),
                })
                .is_ok()
            });
        };
        dps.iter().all(|dp| {
            let outputs: Vec<Output> = match engine.observe_in_group(dp, group, now) {
                Ok(alerts) => alerts.into_iter().map(Output::Alert).collect(),
                Err(error) => vec![Output::Rejected {
                    device: dp.device.to_string(),
                    error,
                }],
            };
            outputs.into_iter().all(|output| {
                out.send(FleetOutput::Engine {
                    group: group.to_owned(),
                    output,
                })
                .is_ok()
            })
        })
    }
}

impl FleetEngine {
    /// Starts `shards` workers (clamped to 1..=[`MAX_SHARDS`]) with these
    /// profiles (a later one for the same group wins); outputs go to the
    /// returned receiver.
    pub fn new(
        profiles: impl IntoIterator<Item = Profile>,
        shards: usize,
    ) -> (FleetEngine, Receiver<FleetOutput>) {
        let (out, rx) = channel();
        let mut senders = Vec::new();
        let mut workers = Vec::new();
        for _ in 0..shards.clamp(1, MAX_SHARDS) {
            let (tx, inbox) = sync_channel::<Input>(SHARD_QUEUE);
            let mut shard = Shard {
                engines: HashMap::default(),
                out: out.clone(),
            };
            senders.push(tx);
            workers.push(std::thread::spawn(move || {
                for input in inbox {
                    if !shard.handle(input) {
                        return;
                    }
                }
            }));
        }
        let fleet = FleetEngine { senders, workers };
        for p in profiles {
            fleet.set_profile(p);
        }
        (fleet, rx)
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.senders.len()
    }

    /// Installs or replaces a group's profile on every shard. Blocks while
    /// a shard's queue is full (profile changes are rare and must not be
    /// lost). False when the workers have stopped.
    pub fn set_profile(&self, profile: Profile) -> bool {
        let profile = Arc::new(profile);
        let peers = SharedPeers::default();
        self.senders.iter().all(|s| {
            s.send(Input::Profile {
                profile: Arc::clone(&profile),
                peers: Arc::clone(&peers),
            })
            .is_ok()
        })
    }

    /// Queues a device's datapoint, judged at the caller's time `now`.
    pub fn submit(
        &self,
        group: &str,
        dp: Datapoint,
        now: OffsetDateTime,
    ) -> Result<(), SubmitError> {
        let shard = shard_of(&dp.device, self.senders.len());
        self.senders[shard]
            .try_send(Input::Datapoint {
                group: group.to_owned(),
                dp: Box::new(dp),
                now,
            })
            .map_err(|e| match e {
                TrySendError::Full(_) => SubmitError::Full,
                TrySendError::Disconnected(_) => SubmitError::Stopped,
            })
    }

    /// Queues datapoints of one group in one hand-over per shard, judged at
    /// `now`, in order: one queue slot and one worker wake-up for the lot
    /// instead of one each (the gateway batches what one read from a
    /// device carried). On `Err` the datapoints of the shards whose queue
    /// was full (or stopped) were dropped; the error says how many.
    pub fn submit_batch(
        &self,
        group: &str,
        dps: Vec<Datapoint>,
        now: OffsetDateTime,
    ) -> Result<(), (SubmitError, usize)> {
        if dps.is_empty() {
            return Ok(());
        }
        let n = self.senders.len();
        let first = shard_of(&dps[0].device, n);
        let mut per_shard: Vec<(usize, Vec<Datapoint>)> = Vec::new();
        // A gateway batch is one session's: every datapoint shares the id
        // (one `Arc`), so the id is hashed once, not once per datapoint.
        let same_shard = |d: &Datapoint| {
            Arc::ptr_eq(&d.device, &dps[0].device) || shard_of(&d.device, n) == first
        };
        if dps.iter().all(same_shard) {
            per_shard.push((first, dps));
        } else {
            for dp in dps {
                let s = shard_of(&dp.device, n);
                match per_shard.iter_mut().find(|(k, _)| *k == s) {
                    Some((_, v)) => v.push(dp),
                    None => per_shard.push((s, vec![dp])),
                }
            }
        }
        let mut failed: Option<(SubmitError, usize)> = None;
        for (shard, dps) in per_shard {
            let count = dps.len();
            let sent = self.senders[shard].try_send(Input::Batch {
                group: group.to_owned(),
                dps,
                now,
            });
            if let Err(e) = sent {
                let why = match e {
                    TrySendError::Full(_) => SubmitError::Full,
                    TrySendError::Disconnected(_) => SubmitError::Stopped,
                };
                let (w, c) = failed.get_or_insert((why, 0));
                *w = why;
                *c += count;
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Drops a device's state in every group (re-imaged, released from
    /// quarantine); its next datapoint starts a new warm-up.
    pub fn forget(&self, device: &str) -> bool {
        let shard = shard_of(device, self.senders.len());
        self.senders[shard]
            .send(Input::Forget(device.to_owned()))
            .is_ok()
    }

    /// Closes the queues and waits for the workers to drain them. Returns
    /// how many workers ended by panicking (a bug; 0 expected).
    pub fn finish(self) -> usize {
        drop(self.senders);
        self.workers
            .into_iter()
            .map(JoinHandle::join)
            .filter(Result::is_err)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::metric::Value;

    fn profile(group: &str, version: &str, port: &str) -> Profile {
        Profile::from_toml(&format!(
            "group = \"{group}\"\nversion = \"{version}\"\n[[behaviour]]\nname = \"bad-port\"\n\
             severity = \"high\"\nmetric = \"listening_ports\"\noperator = \"in-set\"\n\
             threshold = [\"{port}\"]\n"
        ))
        .unwrap()
    }

    fn dp(device: &str, port: &str) -> Datapoint {
        Datapoint {
            device: device.into(),
            time: datetime!(2026-11-23 10:00 UTC),
            metrics: crate::Metrics::from([(
                "listening_ports",
                Value::Set([port.to_owned()].into()),
            )]),
        }
    }

    const NOW: OffsetDateTime = datetime!(2026-11-23 10:00 UTC);

    fn drain(fleet: FleetEngine, rx: &Receiver<FleetOutput>) -> Vec<FleetOutput> {
        assert_eq!(fleet.finish(), 0);
        rx.try_iter().collect()
    }

    #[test]
    fn groups_use_their_profile_then_the_default_then_none() {
        let (fleet, rx) = FleetEngine::new(
            [
                profile("cams", "1", "tcp/23"),
                profile("*", "d", "tcp/2323"),
            ],
            3,
        );
        fleet.submit("cams", dp("c1", "tcp/23"), NOW).unwrap();
        fleet.submit("doors", dp("d1", "tcp/2323"), NOW).unwrap();
        fleet.submit("doors", dp("d2", "tcp/23"), NOW).unwrap();
        let out = drain(fleet, &rx);
        let mut fired: Vec<(String, String, String)> = out
            .iter()
            .filter_map(|o| match o {
                FleetOutput::Engine {
                    group,
                    output: Output::Alert(a),
                } => Some((group.clone(), a.device.clone(), a.profile_version.clone())),
                _ => None,
            })
            .collect();
        fired.sort();
        assert_eq!(
            fired,
            [
                ("cams".into(), "c1".into(), "1".into()),
                ("doors".into(), "d1".into(), "d".into())
            ]
        );

        let (fleet, rx) = FleetEngine::new([profile("cams", "1", "tcp/23")], 2);
        fleet.submit("doors", dp("d1", "tcp/23"), NOW).unwrap();
        assert_eq!(
            drain(fleet, &rx),
            [FleetOutput::Unprofiled {
                device: "d1".into(),
                group: "doors".into()
            }]
        );
    }

    #[test]
    fn a_new_profile_applies_to_later_datapoints_only() {
        let (fleet, rx) = FleetEngine::new([profile("cams", "1", "tcp/23")], 2);
        fleet.submit("cams", dp("c1", "tcp/23"), NOW).unwrap();
        assert!(fleet.set_profile(profile("cams", "2", "tcp/8080")));
        fleet.submit("cams", dp("c1", "tcp/23"), NOW).unwrap();
        fleet.submit("cams", dp("c2", "tcp/8080"), NOW).unwrap();
        let versions: Vec<(String, String)> = drain(fleet, &rx)
            .into_iter()
            .filter_map(|o| match o {
                FleetOutput::Engine {
                    output: Output::Alert(a),
                    ..
                } => Some((a.device, a.profile_version)),
                _ => None,
            })
            .collect();
        assert!(
            versions.contains(&("c1".into(), "1".into())),
            "{versions:?}"
        );
        assert!(
            versions.contains(&("c2".into(), "2".into())),
            "{versions:?}"
        );
        assert_eq!(versions.len(), 2, "{versions:?}");
    }

    #[test]
    fn far_future_datapoints_are_rejected_against_the_callers_clock() {
        let (fleet, rx) = FleetEngine::new([profile("cams", "1", "tcp/23")], 1);
        let mut future = dp("c1", "tcp/23");
        future.time = NOW + time::Duration::hours(1);
        fleet.submit("cams", future, NOW).unwrap();
        let out = drain(fleet, &rx);
        assert!(
            matches!(
                &out[..],
                [FleetOutput::Engine {
                    output: Output::Rejected { .. },
                    ..
                }]
            ),
            "{out:?}"
        );
    }

    #[test]
    fn a_batch_is_judged_in_order_across_shards_like_single_datapoints() {
        let alerts = |out: Vec<FleetOutput>| -> Vec<String> {
            let mut v: Vec<String> = out
                .into_iter()
                .filter_map(|o| match o {
                    FleetOutput::Engine {
                        output: Output::Alert(a),
                        ..
                    } => Some(a.device),
                    _ => None,
                })
                .collect();
            v.sort();
            v
        };
        let batch: Vec<Datapoint> = (0..50)
            .map(|i| {
                dp(
                    &format!("d{i}"),
                    if i % 5 == 0 { "tcp/23" } else { "tcp/22" },
                )
            })
            .collect();
        let (fleet, rx) = FleetEngine::new([profile("cams", "1", "tcp/23")], 4);
        fleet.submit_batch("cams", batch.clone(), NOW).unwrap();
        fleet.submit_batch("cams", Vec::new(), NOW).unwrap();
        let batched = alerts(drain(fleet, &rx));
        let (fleet, rx) = FleetEngine::new([profile("cams", "1", "tcp/23")], 4);
        for d in batch {
            fleet.submit("cams", d, NOW).unwrap();
        }
        assert_eq!(batched, alerts(drain(fleet, &rx)));
        assert_eq!(batched.len(), 10);
    }

    #[test]
    fn a_batch_that_does_not_fit_is_counted_not_blocked() {
        let (fleet, rx) = FleetEngine::new([profile("cams", "1", "tcp/23")], 1);
        // Stop the worker: its queue is closed and every batch is refused
        // with the number of datapoints lost.
        drop(rx);
        let mut refused = None;
        for _ in 0..10 {
            fleet.submit("cams", dp("c1", "tcp/23"), NOW).ok();
            if let Err(e) = fleet.submit_batch("cams", vec![dp("c1", "tcp/23"); 7], NOW) {
                refused = Some(e);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(refused, Some((SubmitError::Stopped, 7)));
        fleet.finish();
    }
}
