//! The alert pipeline: the detection engine's outputs, on a bridge thread
//! and a tokio task, become stored alerts, events on the bus and
//! automatic quarantines.
//!
//! ```text
//! FleetEngine ──▶ bridge thread ──▶ alert task ──▶ store
//!   (rejections counted on the monitor)    ├─▶ event bus (SSE, webhooks)
//!                                          └─▶ devices: quarantine
//! ```

use std::sync::Arc;

use bulwark_detect::{FleetOutput, Output};
use bulwark_proto::DeviceId;
use bulwark_store::{AlertAction, Audit, DetectionAlert, DetectionKind, MonitorRepo, Severity};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::devices::Devices;
use crate::events::{DomainEvent, EventBus};
use crate::monitor::Monitor;

/// Alerts queued between the engine and the alert task before the engine
/// workers wait.
const ALERT_QUEUE: usize = 10_000;

/// Turns an engine alert into a stored alert.
#[expect(
    clippy::disallowed_methods,
    reason = "alert row id, not a secret: ids need no RandomSource"
)]
fn stored_alert(
    group: &str,
    a: &bulwark_detect::Alert,
    now: OffsetDateTime,
) -> Option<DetectionAlert> {
    let device_id = DeviceId::parse(&a.device).ok()?;
    let Some(kind) = DetectionKind::parse(a.kind) else {
        tracing::error!(kind = a.kind, behaviour = %a.behaviour, "the engine named a kind the store does not know; alert not stored");
        return None;
    };
    let evidence: Vec<serde_json::Value> = a
        .evidence
        .iter()
        .map(|e| {
            serde_json::json!({
                "time": e.time.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                "metric": e.metric,
                "value": match &e.value {
                    bulwark_detect::Value::Number(n) => serde_json::json!(n),
                    bulwark_detect::Value::Set(s) => serde_json::json!(s),
                    bulwark_detect::Value::Flows(f) => serde_json::json!(f.iter().map(ToString::to_string).collect::<Vec<_>>()),
                },
            })
        })
        .collect();
    Some(DetectionAlert {
        id: uuid::Uuid::new_v4().simple().to_string(),
        device_id,
        group: group.to_owned(),
        behaviour: a.behaviour.clone(),
        kind,
        severity: severity(a.severity),
        profile_version: a.profile_version.clone(),
        action: a.action.map(action),
        message: a.reason.clone(),
        evidence: serde_json::Value::Array(evidence).to_string(),
        observed_at: a.time,
        created_at: now,
    })
}

/// An engine severity as the store keeps it.
fn severity(s: bulwark_detect::Severity) -> Severity {
    match s {
        bulwark_detect::Severity::Low => Severity::Low,
        bulwark_detect::Severity::Medium => Severity::Medium,
        bulwark_detect::Severity::High => Severity::High,
        bulwark_detect::Severity::Critical => Severity::Critical,
    }
}

/// An engine action as the store keeps it.
fn action(a: bulwark_detect::Action) -> AlertAction {
    match a {
        bulwark_detect::Action::Quarantine => AlertAction::Quarantine,
    }
}

/// What the alert task needs: the services it hands alerts to.
#[derive(Debug, Clone)]
pub struct AlertPipeline {
    /// Where alerts are stored.
    pub store: Arc<dyn MonitorRepo>,
    /// Stamps stored alerts.
    pub clock: Arc<dyn Clock>,
    /// The stream and webhooks.
    pub events: Arc<EventBus>,
    /// Quarantines devices whose behaviour says so.
    pub devices: Arc<Devices>,
}

/// Starts the bridge thread (engine → tokio) and the alert task (store,
/// event bus, quarantine). They end when the engine stops.
pub fn spawn_alert_pipeline(
    monitor: &Arc<Monitor>,
    to: AlertPipeline,
    engine_out: std::sync::mpsc::Receiver<FleetOutput>,
) {
    let (tx, mut rx) = mpsc::channel::<(String, bulwark_detect::Alert)>(ALERT_QUEUE);
    let bridge_monitor = Arc::clone(monitor);
    let spawned = std::thread::Builder::new()
        .name("detect-bridge".into())
        .spawn(move || {
            for out in engine_out {
                match out {
                    FleetOutput::Engine {
                        group,
                        output: Output::Alert(a),
                    } => {
                        if tx.blocking_send((group, a)).is_err() {
                            return;
                        }
                    }
                    FleetOutput::Engine {
                        output: Output::Rejected { device, error },
                        ..
                    } => {
                        if let Ok(id) = DeviceId::parse(&device) {
                            tracing::debug!(%device, %error, "datapoint rejected");
                            bridge_monitor.reject(id, "invalid_datapoint");
                        }
                    }
                    FleetOutput::Unprofiled { device, .. } => {
                        if let Ok(id) = DeviceId::parse(&device) {
                            bridge_monitor.reject(id, "no_profile");
                        }
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "could not start the detection bridge");
        return;
    }
    tokio::spawn(async move {
        let mut batch = Vec::new();
        while rx.recv_many(&mut batch, 256).await > 0 {
            let now = to.clock.now();
            let stored: Vec<DetectionAlert> = batch
                .drain(..)
                .filter_map(|(group, a)| stored_alert(&group, &a, now))
                .collect();
            if let Err(e) = to.store.insert_detection_alerts(&stored).await {
                tracing::error!(error = %e, alerts = stored.len(), "storing detection alerts failed");
            }
            let events: Vec<DomainEvent> =
                stored.iter().cloned().map(DomainEvent::Detection).collect();
            to.events.publish(&events).await;
            for a in stored.iter().filter(|a| a.action.is_some()) {
                let reason = format!("behaviour {} fired: {}", a.behaviour, a.message);
                let audit = Audit::system(now);
                if let Err(e) = to
                    .devices
                    .quarantine(a.device_id, &reason, Some(&a.id), &audit)
                    .await
                {
                    tracing::error!(device = %a.device_id, error = ?e, "automatic quarantine failed");
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_the_engine_names_is_a_stored_word() {
        for s in bulwark_detect::Semantic::ALL {
            assert!(DetectionKind::parse(s.name()).is_some(), "{}", s.name());
        }
        let profile = bulwark_detect::Profile::from_toml(bulwark_detect::BUILTIN_PROFILE).unwrap();
        for b in &profile.behaviours {
            let name = b.kind.name();
            assert!(DetectionKind::parse(name).is_some(), "{name}");
        }
    }
}
