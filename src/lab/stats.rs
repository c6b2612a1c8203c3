//! Statistics of repeated measurements: every sample kept, spread reported, noise
//! flagged instead of printing one confident number.

use serde::{Deserialize, Serialize};

/// Summary of one metric's samples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Number of finite samples.
    pub n: usize,
    /// Smallest sample.
    pub min: f64,
    /// 10th percentile.
    pub p10: f64,
    /// Median (50th percentile).
    pub median: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Coefficient of variation: sample standard deviation over the mean.
    pub cv: f64,
    /// Samples whose modified Z-score exceeds 3.5 (Iglewicz and Hoaglin, 1993): the
    /// median absolute deviation is robust where the standard deviation is not.
    pub outliers: usize,
    /// Two clearly separated groups of samples (each at least 15% of them).
    pub bimodal: bool,
    /// Lower end of the 95% confidence interval of the median, by order statistics
    /// ([`median_ci`]); None with fewer than 6 samples, where no such interval exists.
    pub ci_low: Option<f64>,
    /// Upper end of that interval.
    pub ci_high: Option<f64>,
}

/// CV above which a metric is called noisy.
pub const NOISY_CV: f64 = 0.05;
/// Modified Z-score above which a sample is an outlier (Iglewicz and Hoaglin).
const OUTLIER_Z: f64 = 3.5;
/// Smallest share of samples that counts as a mode.
const MODE_SHARE: f64 = 0.15;
/// The upper mode starts at least this factor above the lower one's maximum.
const MODE_GAP: f64 = 1.5;

/// Linear interpolation between closest ranks (Hyndman and Fan type 7, as R and numpy).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let h = (n - 1) as f64 * p;
            let lo = h.floor() as usize;
            let hi = h.ceil() as usize;
            sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
        }
    }
}

impl Summary {
    /// Summarises samples; None when there are none.
    pub fn of(samples: &[f64]) -> Option<Summary> {
        let mut s: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
        if s.is_empty() {
            return None;
        }
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let mean = s.iter().sum::<f64>() / n as f64;
        let var = if n > 1 {
            s.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        let cv = if mean != 0.0 {
            var.sqrt() / mean.abs()
        } else {
            0.0
        };
        let median = percentile(&s, 0.5);
        let ci = median_ci(&s);
        let mut dev: Vec<f64> = s.iter().map(|x| (x - median).abs()).collect();
        dev.sort_by(f64::total_cmp);
        let mad = percentile(&dev, 0.5);
        let outliers = if mad > 0.0 {
            s.iter()
                .filter(|x| 0.6745 * (*x - median).abs() / mad > OUTLIER_Z)
                .count()
        } else {
            0
        };
        Some(Summary {
            n,
            min: s[0],
            p10: percentile(&s, 0.10),
            median,
            p90: percentile(&s, 0.90),
            p99: percentile(&s, 0.99),
            max: s[n - 1],
            mean,
            cv,
            outliers,
            bimodal: bimodal(&s),
            ci_low: ci.map(|c| c.0),
            ci_high: ci.map(|c| c.1),
        })
    }

    /// Half the width of the median's 95% interval over the median (0.05: within 5%);
    /// None where there is no interval or the median is 0.
    pub fn ci_half_rel(&self) -> Option<f64> {
        let (lo, hi) = (self.ci_low?, self.ci_high?);
        (self.median != 0.0).then(|| (hi - lo) / 2.0 / self.median.abs())
    }

    /// Why this metric should not be read as one number, if it should not.
    pub fn noise(&self) -> Option<String> {
        if self.bimodal {
            Some("two modes: runs landed on different CPUs or the VM's vCPU was descheduled; pin, or read min and median apart".into())
        } else if let Some(h) = self.ci_half_rel().filter(|h| *h > CI_TARGET) {
            Some(format!(
                "the median's 95% interval is +/-{:.1}%, over {NOISY_CV_PCT}%, after {} trials: other load, frequency changes or the lab's time budget; close other programs or raise the budget",
                h * 100.0,
                self.n
            ))
        } else if self.cv > NOISY_CV {
            Some(format!(
                "CV {:.1}% over {NOISY_CV_PCT}%: other load, frequency changes or too few samples; close other programs or add trials",
                self.cv * 100.0
            ))
        } else {
            None
        }
    }
}

const NOISY_CV_PCT: u32 = 5;

/// Half-width of the median's interval, over the median, at which adaptive trials stop.
pub const CI_TARGET: f64 = 0.05;
/// The most trials an adaptive series takes, whatever its budget.
pub const ADAPTIVE_MAX: usize = 2000;
/// Confidence of [`median_ci`].
pub const CI_LEVEL: f64 = 0.95;

/// A distribution-free 95% confidence interval of the median of `sorted` samples: the
/// order statistics x(k) and x(n+1-k), k the largest rank with P(B < k) <= 2.5% for
/// B ~ Binomial(n, 1/2) (Conover, Practical Nonparametric Statistics, 3.2; the
/// approach of Maricq et al., OSDI 2018). Its coverage is at least 95% whatever the
/// distribution. None with fewer than 6 samples: no pair of ranks covers 95% there.
pub fn median_ci(sorted: &[f64]) -> Option<(f64, f64)> {
    let n = sorted.len();
    let tail = (1.0 - CI_LEVEL) / 2.0;
    // P(B = i) in log space (2^-n underflows past n = 1074), summed while it stays
    // within the tail: k is then the number of ranks cut from each end.
    let mut ln_term = -(n as f64) * std::f64::consts::LN_2;
    let mut cdf = 0.0;
    let mut k = 0;
    for i in 0..n / 2 {
        cdf += ln_term.exp();
        if cdf > tail {
            break;
        }
        k = i + 1;
        ln_term += ((n - i) as f64 / (i + 1) as f64).ln();
    }
    (k > 0).then(|| (sorted[k - 1], sorted[n - k]))
}

/// How an adaptive series of trials ended.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// The median's interval came within [`CI_TARGET`] of it.
    Converged,
    /// The time budget was spent first; the interval's half-width then, over the median.
    Budget {
        /// Half-width over the median when the budget ran out (None: no interval yet).
        half_rel: Option<f64>,
    },
    /// The trial cap was reached first.
    Cap,
    /// A fixed number of trials was asked for (no budget).
    Fixed,
}

/// Adaptive trials (the CONFIRM approach of Maricq et al.): `warmup` untimed runs, then
/// at least `min` timed ones, then more until the median's 95% interval is within
/// [`CI_TARGET`] of the median, the `budget_ns` is spent (from the first warm-up), or
/// `max` trials were taken. A budget of 0 takes exactly `min` trials.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adaptive {
    /// Untimed runs first (caches, page tables, the allocator).
    pub warmup: usize,
    /// Timed trials at least.
    pub min: usize,
    /// Timed trials at most.
    pub max: usize,
    /// Wall time the series may take (ns); 0: exactly `min` trials.
    pub budget_ns: u64,
}

impl Adaptive {
    /// `trials` at least, up to [`ADAPTIVE_MAX`], within `budget` (zero: exactly `trials`).
    pub fn new(warmup: usize, trials: usize, budget: std::time::Duration) -> Adaptive {
        Adaptive {
            warmup,
            min: trials,
            max: ADAPTIVE_MAX.max(trials),
            budget_ns: budget.as_nanos() as u64,
        }
    }

    /// A clock for [`Adaptive::run`]'s budget: ns since this call (monotonic).
    pub fn clock() -> impl FnMut() -> u64 {
        let t0 = std::time::Instant::now();
        move || t0.elapsed().as_nanos() as u64
    }

    /// A clock for tests of [`Adaptive::run`]: 1 ms further at every reading.
    #[cfg(test)]
    pub fn ms_per_reading() -> impl FnMut() -> u64 {
        let mut clock = 0u64;
        move || {
            clock += 1_000_000;
            clock
        }
    }

    /// Runs `trial` (one sample each, or an error that ends the series) until the stop
    /// rule holds; `trial(false)` is a warm-up, whose sample (and side figures) the
    /// caller drops. `now_ns` is the clock the budget is read from.
    pub fn run<E>(
        &self,
        mut now_ns: impl FnMut() -> u64,
        mut trial: impl FnMut(bool) -> Result<f64, E>,
    ) -> Result<(Vec<f64>, Stop), E> {
        let start = now_ns();
        for _ in 0..self.warmup {
            trial(false)?;
        }
        let mut samples = Vec::with_capacity(self.min);
        let mut sorted: Vec<f64> = Vec::with_capacity(self.min);
        loop {
            let x = trial(true)?;
            samples.push(x);
            let at = sorted.partition_point(|y| y.total_cmp(&x).is_lt());
            sorted.insert(at, x);
            if samples.len() < self.min.max(1) {
                continue;
            }
            if self.budget_ns == 0 {
                return Ok((samples, Stop::Fixed));
            }
            let half = median_ci(&sorted).and_then(|(lo, hi)| {
                let m = percentile(&sorted, 0.5);
                (m != 0.0).then(|| (hi - lo) / 2.0 / m.abs())
            });
            if half.is_some_and(|h| h <= CI_TARGET) {
                return Ok((samples, Stop::Converged));
            }
            if now_ns().saturating_sub(start) >= self.budget_ns {
                return Ok((samples, Stop::Budget { half_rel: half }));
            }
            if samples.len() >= self.max {
                return Ok((samples, Stop::Cap));
            }
        }
    }
}

impl Stop {
    /// Why a series should not be read as converged, when it should not: the budget ran
    /// out (by how much the interval missed) or the cap came first.
    pub fn note(&self, what: &str, n: usize) -> Option<String> {
        let target = CI_TARGET * 100.0;
        match self {
            Stop::Budget {
                half_rel: Some(h),
            } => Some(format!(
                "{what}: the time budget ran out after {n} trials with the median's 95% interval at +/-{:.1}%, {:.1} points over the {target:.0}% target: the host is noisy for this figure",
                h * 100.0,
                h * 100.0 - target
            )),
            Stop::Budget { half_rel: None } => Some(format!(
                "{what}: the time budget ran out after {n} trials, too few for a 95% interval of the median"
            )),
            Stop::Cap => Some(format!(
                "{what}: {n} trials (the cap) without the median's 95% interval coming within {target:.0}%"
            )),
            Stop::Converged | Stop::Fixed => None,
        }
    }
}

/// Two modes: a split of the sorted samples where each side holds at least
/// MODE_SHARE of them and the upper side starts MODE_GAP above the lower side's top.
fn bimodal(sorted: &[f64]) -> bool {
    let n = sorted.len();
    let min_side = ((n as f64) * MODE_SHARE).ceil().max(2.0) as usize;
    if n < 2 * min_side {
        return false;
    }
    (min_side..=n - min_side).any(|i| sorted[i - 1] > 0.0 && sorted[i] > sorted[i - 1] * MODE_GAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ranks of the interval match the binomial tables (Conover, table A3): n=6 gives
    /// x(1)..x(6) (96.9%), n=10 x(2)..x(9) (97.9%), n=20 x(6)..x(15) (95.9%), n=100
    /// x(40)..x(61) (96.5%); no interval below 6.
    #[test]
    fn issue_20_median_ci_uses_the_binomial_ranks() {
        let xs = |n: usize| (1..=n).map(|i| i as f64).collect::<Vec<_>>();
        assert_eq!(median_ci(&xs(5)), None);
        assert_eq!(median_ci(&xs(6)), Some((1.0, 6.0)));
        assert_eq!(median_ci(&xs(10)), Some((2.0, 9.0)));
        assert_eq!(median_ci(&xs(20)), Some((6.0, 15.0)));
        assert_eq!(median_ci(&xs(100)), Some((40.0, 61.0)));
        // 2000 samples: 2^-2000 underflows a direct product; ranks 956..1045.
        assert_eq!(median_ci(&xs(2000)), Some((956.0, 1045.0)));
        let s = Summary::of(&xs(20)).unwrap();
        assert_eq!((s.ci_low, s.ci_high), (Some(6.0), Some(15.0)));
        assert!((s.ci_half_rel().unwrap() - 4.5 / 10.5).abs() < 1e-12);
        assert!(s.noise().unwrap().contains("95% interval is +/-42.9%"));
    }

    /// A mock clock that advances 1 ms a reading, and a series of samples.
    fn adaptive_on(series: Vec<f64>, a: Adaptive) -> (Vec<f64>, Stop, usize) {
        let mut it = series.into_iter().cycle();
        let mut calls = 0;
        let (s, stop) = a
            .run(Adaptive::ms_per_reading(), |_| -> Result<f64, ()> {
                calls += 1;
                Ok(it.next().unwrap())
            })
            .unwrap();
        (s, stop, calls)
    }

    #[test]
    fn issue_20_adaptive_trials_stop_early_when_tight_and_flag_noise_at_the_budget() {
        let a = Adaptive {
            warmup: 2,
            min: 6,
            max: 1000,
            budget_ns: 50_000_000,
        };
        // Within 1%: the interval is inside 5% at the first check.
        let (s, stop, calls) = adaptive_on(vec![100.0, 101.0, 99.0, 100.5, 99.5], a);
        assert_eq!((s.len(), stop, calls), (6, Stop::Converged, 8));
        // Alternating 50 / 150: the interval never narrows; the 50 ms budget (one
        // clock reading per check after the start) ends it after 50 checks.
        let (s, stop, _) = adaptive_on(vec![50.0, 150.0], a);
        assert_eq!(s.len(), 6 + 49);
        let Stop::Budget { half_rel: Some(h) } = stop else {
            panic!("{stop:?}")
        };
        // Median 50 (28 of 55 samples), interval x(20)..x(36) = 50..150: +/-100%.
        assert!((h - 1.0).abs() < 1e-12, "{h}");
        let note = stop.note("first touch", s.len()).unwrap();
        assert!(
            note.contains("after 55 trials") && note.contains("+/-100.0%"),
            "{note}"
        );
        assert!(note.contains("95.0 points over the 5% target"), "{note}");
        // The cap comes first when it is lower; a budget of 0 takes exactly `min`.
        let (s, stop, _) = adaptive_on(vec![50.0, 150.0], Adaptive { max: 10, ..a });
        assert_eq!((s.len(), stop), (10, Stop::Cap));
        let (s, stop, calls) = adaptive_on(
            vec![50.0, 150.0],
            Adaptive {
                budget_ns: 0,
                min: 1,
                ..a
            },
        );
        assert_eq!((s.len(), stop, calls), (1, Stop::Fixed, 3));
        assert!(Stop::Converged.note("x", 6).is_none());
    }

    #[test]
    fn percentiles_interpolate() {
        let s = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&s, 0.5), 2.5);
        assert_eq!(percentile(&s, 0.0), 1.0);
        assert_eq!(percentile(&s, 1.0), 4.0);
        assert!((percentile(&s, 0.9) - 3.7).abs() < 1e-12);
    }

    #[test]
    fn exact_summary() {
        let s = Summary::of(&[10.0, 10.0, 10.0, 10.0, 10.0]).unwrap();
        assert_eq!(
            (s.n, s.median, s.cv, s.outliers, s.bimodal),
            (5, 10.0, 0.0, 0, false)
        );
        assert!(s.noise().is_none());
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn outlier_by_modified_z() {
        let s = Summary::of(&[10.0, 10.1, 9.9, 10.0, 10.2, 9.8, 10.0, 50.0]).unwrap();
        assert_eq!(s.outliers, 1);
        assert!(s.noise().is_some(), "the outlier drives CV over 5%");
    }

    #[test]
    fn two_modes_are_flagged() {
        let mut v = vec![2.0; 10];
        v.extend(vec![28.0; 10]);
        let s = Summary::of(&v).unwrap();
        assert!(s.bimodal);
        assert!(s.noise().unwrap().contains("two modes"));
        let one = Summary::of(&[2.0, 2.1, 2.2, 2.3, 2.4, 2.5, 2.6, 2.7, 2.8, 2.9]).unwrap();
        assert!(!one.bimodal);
    }
}
