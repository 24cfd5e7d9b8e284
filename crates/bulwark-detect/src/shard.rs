//! [`ShardedEngine`]: one [`Engine`] per worker thread, devices assigned
//! by a hash of their id.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use crate::engine::{Alert, Engine, SharedPeers};
use crate::metric::{Datapoint, DatapointError};
use crate::profile::Profile;

/// Most worker threads.
pub const MAX_SHARDS: usize = 256;
/// Datapoints queued per shard before [`ShardedEngine::submit`] blocks.
pub const SHARD_QUEUE: usize = 1024;

/// What a shard reports for each datapoint it could not observe or each
/// alert it raised, in per-device order.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A behaviour fired.
    Alert(Alert),
    /// The datapoint was rejected (count it).
    Rejected {
        /// The device it claimed to come from.
        device: String,
        /// Why.
        error: DatapointError,
    },
}

/// Runs devices on `N` worker threads. Each device always lands on the
/// same shard (FNV-1a of its id modulo `N`), and each shard is a FIFO, so
/// a device's outputs come out in the order its datapoints went in;
/// outputs of different devices interleave arbitrarily.
///
/// Peer-outlier behaviours compare a device against every device of the
/// group, so the shards share one table of latest values behind a mutex;
/// their results depend on how shards interleave, unlike everything else,
/// which matches a single [`Engine`] exactly.
#[derive(Debug)]
pub struct ShardedEngine {
    senders: Vec<SyncSender<Datapoint>>,
    workers: Vec<JoinHandle<()>>,
}

/// FNV-1a, 64 bits: stable across runs and Rust versions (unlike
/// `DefaultHasher`), so a device keeps its shard.
pub fn shard_of(device: &str, shards: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in device.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % shards.max(1) as u64) as usize
}

impl ShardedEngine {
    /// Starts `shards` workers (clamped to 1..=[`MAX_SHARDS`]); outputs go
    /// to the returned receiver.
    pub fn new(profile: Profile, shards: usize) -> (ShardedEngine, Receiver<Output>) {
        let (out, rx) = std::sync::mpsc::channel();
        let profile = Arc::new(profile);
        let peers = SharedPeers::default();
        let mut senders = Vec::new();
        let mut workers = Vec::new();
        for _ in 0..shards.clamp(1, MAX_SHARDS) {
            let (tx, inbox) = sync_channel::<Datapoint>(SHARD_QUEUE);
            let mut engine = Engine::with_peers(Arc::clone(&profile), Arc::clone(&peers));
            let out = out.clone();
            senders.push(tx);
            workers.push(std::thread::spawn(move || {
                for dp in inbox {
                    let outputs = match engine.observe(&dp) {
                        Ok(alerts) => alerts.into_iter().map(Output::Alert).collect(),
                        Err(error) => vec![Output::Rejected {
                            device: dp.device.to_string(),
                            error,
                        }],
                    };
                    let sent = outputs.into_iter().all(|o| out.send(o).is_ok());
                    if !sent {
                        // Nobody is listening any more: stop.
                        return;
                    }
                }
            }));
        }
        (ShardedEngine { senders, workers }, rx)
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.senders.len()
    }

    /// Queues a datapoint on its device's shard; blocks while that shard's
    /// queue is full. Returns the datapoint back if the shard has stopped
    /// (its output receiver was dropped).
    pub fn submit(&self, dp: Datapoint) -> Result<(), Box<Datapoint>> {
        let shard = shard_of(&dp.device, self.senders.len());
        self.senders[shard].send(dp).map_err(|e| Box::new(e.0))
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
