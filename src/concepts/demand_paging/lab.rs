//! Lab: demand paging. Mapping a file reads nothing; touching a page faults it in, and
//! readahead and fault-around bring its neighbours along, so residency runs far ahead
//! of the pages touched.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::catalogue::ConceptId;
use crate::lab::mem::{evict, page_size, write_file, Region};
use crate::lab::report::{mib, pct, Check, Cmp, LabReport};
use crate::lab::sandbox::{LabError, Link, Params};
use crate::lab::scratch::{Backing, ScratchDir};
use crate::lab::{LabContext, LabDef, WATCHDOG};

pub static LAB: LabDef = LabDef {
    id: ConceptId::DemandPaging,
    summary:
        "map an evicted file: RSS flat; touch every 64th page: residency jumps past it; touch all",
    headline: &[("#2", "")],
    run,
    child,
};

/// Every STRIDE-th page is touched in the sparse pass.
const STRIDE: usize = 64;
/// The sparse pass is reported in this many steps (the residency series).
const STEPS: usize = 8;

/// The parameters of the child role "paging": the file's size and directory.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PagingParams {
    size: u64,
    dir: PathBuf,
}

/// "evicted": the file's pages and the share still cached (mincore) after eviction.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Evicted {
    resident: f64,
    pages: u64,
}

/// "sparse": (pages touched so far, pages resident) after each step.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sparse {
    series: Vec<[f64; 2]>,
}

/// "all": pages resident after touching every page.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct All {
    resident: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Measured {
    pub size: u64,
    pub pages: u64,
    /// Share of the file cached after eviction, before mapping (mincore).
    pub resident_before: f64,
    pub rss_before_map: u64,
    pub rss_after_map: u64,
    /// (pages touched so far, pages resident) during the sparse pass.
    pub sparse: Vec<[f64; 2]>,
    pub rss_after_sparse: u64,
    pub resident_after_all: u64,
    pub rss_after_all: u64,
}

fn run(ctx: &mut LabContext, report: &mut LabReport) -> Result<(), LabError> {
    let size = ctx.size(256, 64);
    let dir = ScratchDir::new(Backing::Persistent).map_err(LabError::io("scratch directory"))?;
    report.param("size_bytes", size);
    report.param("stride_pages", STRIDE);
    report.param("scratch", dir.path().display().to_string());
    let jail = ctx.memory_jail(size, report);
    let mut c = ctx.spawn_in(
        &jail,
        ConceptId::DemandPaging,
        "paging",
        &PagingParams {
            size,
            dir: dir.path().to_owned(),
        },
    )?;
    let evicted: Evicted = c.expect("evicted", WATCHDOG)?;
    let mut m = Measured {
        size,
        pages: evicted.pages,
        resident_before: evicted.resident,
        rss_before_map: ctx.rss(c.pid)?,
        ..Measured::default()
    };
    c.go()?;
    c.expect::<()>("mapped", WATCHDOG)?;
    m.rss_after_map = ctx.rss(c.pid)?;
    c.go()?;
    m.sparse = c.expect::<Sparse>("sparse", WATCHDOG)?.series;
    m.rss_after_sparse = ctx.rss(c.pid)?;
    c.go()?;
    m.resident_after_all = c.expect::<All>("all", WATCHDOG)?.resident;
    m.rss_after_all = ctx.rss(c.pid)?;
    c.go()?;
    let pid = c.pid;
    c.wait(WATCHDOG)?;
    let src = format!("/proc/{pid}/smaps_rollup");
    report.evidence(
        &src,
        "Rss (before -> after mmap)",
        m.rss_before_map as f64,
        m.rss_after_map as f64,
        "bytes",
    );
    report.evidence(
        &src,
        "Rss (mapped -> sparse touches)",
        m.rss_after_map as f64,
        m.rss_after_sparse as f64,
        "bytes",
    );
    report.evidence(
        &src,
        "Rss (sparse -> touched all)",
        m.rss_after_sparse as f64,
        m.rss_after_all as f64,
        "bytes",
    );
    analyze(&m, report);
    Ok(())
}

pub fn analyze(m: &Measured, report: &mut LabReport) {
    let pages = m.pages.max(1) as f64;
    let valid = m.resident_before < 0.01;
    report.check(Check::compare(
        "the evicted file is < 1% resident before it is mapped (else the trial is void)",
        m.resident_before,
        Cmp::Less,
        0.01,
        pct,
    ));
    let void = |claim: &str| {
        Check::failed(
            claim,
            format!(
                "void: the file was {} resident before mapping",
                pct(m.resident_before)
            ),
        )
    };
    let c1 = "mapping the file grows RSS by < 1 MiB: nothing is read yet";
    let c2 = "after touching every 64th page, more pages are resident than were touched (readahead, fault-around)";
    let c3 = "after touching every page, >= 90% of the file is resident";
    if !valid {
        for c in [c1, c2, c3] {
            report.check(void(c));
        }
    } else {
        report.check(Check::compare(
            c1,
            m.rss_after_map.saturating_sub(m.rss_before_map) as f64,
            Cmp::Less,
            1048576.0,
            mib,
        ));
        let (touched, resident) = m.sparse.last().map_or((0.0, 0.0), |p| (p[0], p[1]));
        report.check(Check::holds(
            c2,
            touched > 0.0 && resident > touched,
            format!(
                "{resident:.0} pages resident ({}) after touching {touched:.0}",
                pct(resident / pages)
            ),
            format!("> {touched:.0} pages"),
        ));
        report.check(Check::compare(
            c3,
            m.resident_after_all as f64 / pages,
            Cmp::AtLeast,
            0.90,
            pct,
        ));
    }
    report.series(
        "residency as every 64th page is touched",
        "pages touched",
        "pages resident (mincore)",
        m.sparse.clone(),
    );
    if let Some(p) = m.sparse.last() {
        report.note(format!(
            "touching {:.0} of {} pages made {:.0} resident: {:.0} pages per touch",
            p[0],
            m.pages,
            p[1],
            p[1] / p[0].max(1.0)
        ));
    }
    report.note(format!(
        "file of {} on a disk file system, evicted with fdatasync + POSIX_FADV_DONTNEED",
        mib(m.size as f64)
    ));
}

fn child(role: &str, params: &Params, link: &mut Link) -> Result<(), String> {
    if role != "paging" {
        return Err(format!("unknown role {role}"));
    }
    let PagingParams { size, dir } = params.decode()?;
    let size = size as usize;
    let io = |e: std::io::Error| e.to_string();
    let file = write_file(&dir.join("paging.dat"), size).map_err(io)?;
    // explain-begin: the lines that provoke the concept
    let resident = evict(&file, size).map_err(io)?;
    let pages = size / page_size();
    link.sync(
        "evicted",
        Evicted {
            resident,
            pages: pages as u64,
        },
    )
    .map_err(io)?;
    let r = Region::file(&file, size, false, false).map_err(io)?;
    link.sync("mapped", ()).map_err(io)?;
    let sparse: Vec<usize> = (0..pages).step_by(STRIDE).collect();
    let per_step = sparse.len().div_ceil(STEPS).max(1);
    let mut series = Vec::new();
    let mut touched = 0usize;
    for chunk in sparse.chunks(per_step) {
        // explain-end
        for &p in chunk {
            std::hint::black_box(r.byte(p * page_size()));
        }
        touched += chunk.len();
        series.push([touched as f64, r.resident_pages().map_err(io)? as f64]);
    }
    link.sync("sparse", Sparse { series }).map_err(io)?;
    r.read_pages(1);
    let resident = r.resident_pages().map_err(io)? as u64;
    link.sync("all", All { resident }).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::report::Status;

    fn good() -> Measured {
        Measured {
            size: 64 << 20,
            pages: 16384,
            resident_before: 0.0,
            rss_before_map: 4 << 20,
            rss_after_map: 4 << 20,
            sparse: vec![[128.0, 8000.0], [256.0, 15200.0]],
            rss_after_sparse: 60 << 20,
            resident_after_all: 16384,
            rss_after_all: 68 << 20,
        }
    }

    fn statuses(m: &Measured) -> Vec<Status> {
        crate::lab::report::claim_statuses(ConceptId::DemandPaging, m, analyze)
    }

    #[test]
    fn passes_on_demand_paging() {
        assert_eq!(statuses(&good()), vec![Status::Passed; 4]);
    }

    #[test]
    fn each_claim_fails_on_contradicting_evidence() {
        let mut m = good();
        m.resident_before = 0.3;
        assert!(
            statuses(&m).iter().all(|s| *s == Status::Failed),
            "a cached file voids every claim"
        );
        let mut m = good();
        m.rss_after_map = 60 << 20;
        assert_eq!(statuses(&m)[1], Status::Failed);
        let mut m = good();
        m.sparse = vec![[256.0, 256.0]];
        assert_eq!(statuses(&m)[2], Status::Failed);
        let mut m = good();
        m.resident_after_all = 1000;
        assert_eq!(statuses(&m)[3], Status::Failed);
    }
}
