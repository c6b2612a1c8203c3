//! Lazy initialization: memory is reserved at once, backed by pages only when touched.

use crate::figure::Unit;
use crate::lens::{ratio, ProcessView, Section};

use super::ConceptId;

/// Virtual size against resident size: what was reserved but never touched.
pub fn lens(v: &ProcessView) -> Section {
    let mut s = Section::new(ConceptId::LazyInit);
    let src = v.src("status");
    let size = v.status_field(|s| &s.vm_size);
    let rss = v.status_field(|s| &s.vm_rss);
    s.figure("virtual size (VmSize)", size.clone(), Unit::Bytes, &src);
    s.figure("resident (VmRSS)", rss.clone(), Unit::Bytes, &src);
    s.figure(
        "reserved, never resident",
        size.clone()
            .and_then(|z| Ok(z.saturating_sub(rss.clone()?))),
        Unit::Bytes,
        "VmSize - VmRSS",
    );
    s.figure(
        "resident share of reserved",
        ratio(&rss, &size),
        Unit::Ratio,
        "VmRSS / VmSize",
    );
    s
}
