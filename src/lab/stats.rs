//! Statistics of repeated measurements: every sample kept, spread reported, noise
//! flagged instead of printing one confident number.

use serde::Serialize;

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
        })
    }

    /// Why this metric should not be read as one number, if it should not.
    pub fn noise(&self) -> Option<String> {
        if self.bimodal {
            Some("two modes: runs landed on different CPUs or the VM's vCPU was descheduled; pin, or read min and median apart".into())
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
