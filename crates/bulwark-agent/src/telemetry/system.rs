//! Parsers for `/proc/stat`, `/proc/meminfo` and the auth log. Pure: text
//! in, values out; nothing here panics on any input.

/// Cumulative CPU time of the `cpu` line of `/proc/stat`, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// user + nice + system + idle + iowait + irq + softirq + steal.
    pub total: u64,
    /// idle + iowait.
    pub idle: u64,
}

/// Reads the aggregate `cpu` line of `/proc/stat`; `None` when it is absent
/// or has fewer than the four fields every kernel prints.
pub fn parse_proc_stat(text: &str) -> Option<CpuTimes> {
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some("cpu"))?;
    let fields: Option<Vec<u64>> = line
        .split_whitespace()
        .skip(1)
        .take(8) // guest and guest_nice are already inside user and nice
        .map(|f| f.parse().ok())
        .collect();
    let fields = fields?;
    if fields.len() < 4 {
        return None;
    }
    let total = fields.iter().fold(0u64, |a, &b| a.saturating_add(b));
    let idle = fields[3].saturating_add(fields.get(4).copied().unwrap_or(0));
    Some(CpuTimes { total, idle })
}

/// Busy share of the CPU time between two samples, 0–100. Counters that did
/// not grow (same sample, reboot, garbage) give 0.
pub fn cpu_percent(prev: CpuTimes, cur: CpuTimes) -> f32 {
    let (Some(total), Some(idle)) = (
        cur.total.checked_sub(prev.total),
        cur.idle.checked_sub(prev.idle),
    ) else {
        return 0.0;
    };
    if total == 0 {
        return 0.0;
    }
    let busy = total.saturating_sub(idle);
    ((busy as f64 / total as f64 * 100.0) as f32).clamp(0.0, 100.0)
}

/// Memory in use from `/proc/meminfo`: `(MemTotal − MemAvailable) /
/// MemTotal`, 0–100. Falls back to `MemFree` on kernels without
/// `MemAvailable` (before 3.14). `None` without a positive `MemTotal`.
pub fn parse_meminfo(text: &str) -> Option<f32> {
    let field = |name: &str| -> Option<u64> {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.split_whitespace().next()?.parse().ok())?
        })
    };
    let total = field("MemTotal").filter(|&t| t > 0)?;
    let available = field("MemAvailable").or_else(|| field("MemFree"))?;
    let used = total.saturating_sub(available);
    Some(((used as f64 / total as f64 * 100.0) as f32).clamp(0.0, 100.0))
}

/// Markers of a failed login in syslog's auth facility (sshd, PAM).
const FAILED_LOGIN_MARKERS: [&str; 2] = ["Failed password", "authentication failure"];

/// Counts the lines of an auth log that record a failed login.
pub fn count_failed_logins(text: &str) -> u64 {
    text.lines()
        .filter(|l| FAILED_LOGIN_MARKERS.iter().any(|m| l.contains(m)))
        .count() as u64
}
