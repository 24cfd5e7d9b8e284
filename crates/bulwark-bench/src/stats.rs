//! Percentiles, per-process CPU accounting and machine description.

use std::time::Duration;

/// Linux `USER_HZ`: the unit of the CPU times in `/proc/<pid>/stat`. It is
/// 100 on every mainstream architecture (this crate forbids the unsafe
/// `sysconf` call that would confirm it).
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// Online CPUs.
pub(crate) fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The CPU model from `/proc/cpuinfo`, or `unknown`.
pub(crate) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| matches!(k.trim(), "model name" | "Model" | "cpu model"))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Total memory from `/proc/meminfo`, in GiB.
pub(crate) fn mem_gib() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib / (1024.0 * 1024.0))
}

/// User + system CPU time a process has used so far (all its threads).
/// `pid` `None` means this process.
pub(crate) fn cpu_time(pid: Option<u32>) -> Option<Duration> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may hold spaces), starting at
    // field 3 (state); utime and stime are fields 14 and 15.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Duration::try_from_secs_f64((utime + stime) / CLOCK_TICKS_PER_SEC).ok()
}

/// CPU time all processes together have used so far (`/proc/stat`: every
/// state but idle and iowait, summed over CPUs).
pub(crate) fn machine_busy() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]:
    // guest time is already counted in user.
    let busy: f64 = ticks
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .sum();
    Duration::try_from_secs_f64(busy / CLOCK_TICKS_PER_SEC).ok()
}

/// Nearest-rank percentile of sorted data (`p` in 0..=100).
pub(crate) fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let data: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&data, 50.0), Some(50));
        assert_eq!(percentile(&data, 99.0), Some(99));
        assert_eq!(percentile(&data, 100.0), Some(100));
        assert_eq!(percentile(&data, 0.0), Some(1));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn own_cpu_time_is_readable() {
        assert!(cpu_time(None).is_some());
        assert!(machine_busy().is_some());
        assert!(cpus() >= 1);
    }
}
