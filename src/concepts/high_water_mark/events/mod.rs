//! The kernel's events for the high-water-mark effect: the peaks polling misses.

mod exit;
mod rss_peak;

use crate::model::event::EventSource;

/// `exit` and `rss-peak`.
pub static EVENTS: &[EventSource] = &[exit::SOURCE, rss_peak::SOURCE];
