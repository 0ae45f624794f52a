//! What the micro-benches share.

use std::time::Duration;

use criterion::Criterion;

/// Short runs of in-memory code: the standard set (`bench/run.sh`) stays under ten minutes on
/// the 2-core machine.
pub fn quick(samples: usize) -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(samples)
}
