//! Prometheus metrics, as typed fields (no metric is named by a raw string
//! at a call site).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of [`Metrics::http_requests`].
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct HttpLabels {
    pub(crate) listener: &'static str,
    pub(crate) status: u16,
}

/// Labels of [`Metrics::enrollments`].
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ResultLabels {
    pub(crate) result: &'static str,
}

/// Every metric the server exports.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    pub(crate) http_requests: Family<HttpLabels, Counter>,
    pub(crate) checkins: Counter,
    pub(crate) enrollments: Family<ResultLabels, Counter>,
    pub(crate) tls_handshake_failures: Counter,
    pub(crate) device_connections: Gauge,
    pub(crate) checkin_rows_flushed: Counter,
    pub(crate) checkin_flush_failures: Counter,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("bulwark");
        let m = Metrics {
            registry: Registry::default(),
            http_requests: Family::default(),
            checkins: Counter::default(),
            enrollments: Family::default(),
            tls_handshake_failures: Counter::default(),
            device_connections: Gauge::default(),
            checkin_rows_flushed: Counter::default(),
            checkin_flush_failures: Counter::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests by listener and status",
            m.http_requests.clone(),
        );
        registry.register(
            "device_checkins",
            "Device check-ins accepted",
            m.checkins.clone(),
        );
        registry.register(
            "device_enrollments",
            "Enrollment attempts by result",
            m.enrollments.clone(),
        );
        registry.register(
            "device_tls_handshake_failures",
            "Failed device TLS handshakes",
            m.tls_handshake_failures.clone(),
        );
        registry.register(
            "device_connections",
            "Open device TLS connections",
            m.device_connections.clone(),
        );
        registry.register(
            "checkin_rows_flushed",
            "Check-ins written to the store",
            m.checkin_rows_flushed.clone(),
        );
        registry.register(
            "checkin_flush_failures",
            "Failed check-in flushes",
            m.checkin_flush_failures.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Adds the device gateway's counters (they live in the monitor).
    pub(crate) fn register_monitor(&mut self, monitor: &crate::monitor::Monitor) {
        monitor.register_metrics(&mut self.registry);
    }

    /// The text exposition format.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
