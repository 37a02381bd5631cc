//! What the host is, for figures that must say the conditions they were taken in
//! (benchmarks, the load generator, the latency tool): cores, CPU model, load average.
//! Reads /proc; answers "unknown" where there is none. Must not decide anything.

/// `N x CPU model, load average a b c`.
pub fn describe() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split_once(':')).map(|(_, m)| m.trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    format!("{cores} x {cpu}, load average {}", load_average())
}

/// The 1, 5 and 15 minute load averages, or `?`.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}
