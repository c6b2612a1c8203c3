//! What a rendered report's plots must show, for the tests: the HTML renderer's unit
//! tests check it on a recorded tour's series, `tests/tour.rs` on a live tour's page.

use crate::lab::report::{Axis, Series};
use crate::render::html::esc;

/// The x labels the issue names as categories: the lazy-init and high-water-mark steps,
/// 1 vs 2 threads, nice levels, fsync on tmpfs vs disk.
pub const CATEGORY_AXES: [&str; 4] = ["step", "threads", "nice level", "file system"];

/// The plots (`<svg class="plot" ...>` to its end) of one concept's section of `page`.
pub fn section_plots<'a>(page: &'a str, slug: &str) -> Vec<&'a str> {
    let at = page
        .find(&format!("<section id=\"{slug}\">"))
        .unwrap_or_else(|| panic!("no section {slug}"));
    let section = &page[at..];
    let section = &section[..section.find("</section>").unwrap_or(section.len())];
    section
        .split("<svg class=\"plot\"")
        .skip(1)
        .map(|p| &p[..p.find("</svg>").unwrap_or(p.len())])
        .collect()
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// The names a plot's legend gives, each entry's lines joined by a space.
pub fn legend_names(svg: &str) -> Vec<String> {
    svg.split("class=\"legend\"")
        .skip(1)
        .map(|t| {
            let t = &t[..t.find("</text>").unwrap_or(t.len())];
            t.split("<tspan")
                .skip(1)
                .filter_map(|ts| ts.split_once('>'))
                .map(|(_, rest)| unescape(rest.split("</tspan>").next().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// Panics unless every concept (`slug` with its lab's series) has a plot in its section
/// of `page`; every series is named in a plot's legend, drawn as bars when its axis is
/// categories (a bar per value, with its label) and as a line otherwise; no plot has
/// more lines than its legend names.
pub fn assert_plotted(page: &str, sections: &[(&str, &[Series])]) {
    for (slug, series) in sections {
        assert!(!series.is_empty(), "{slug}: the lab recorded no series");
        let plots = section_plots(page, slug);
        assert!(!plots.is_empty(), "{slug}: no plot in its section");
        for p in &plots {
            let (lines, named) = (p.matches("<polyline").count(), legend_names(p).len());
            assert!(
                lines <= named,
                "{slug}: {lines} lines under {named} legend entries"
            );
        }
        for s in *series {
            let name = s.name.split_whitespace().collect::<Vec<_>>().join(" ");
            let svg = plots
                .iter()
                .find(|p| legend_names(p).contains(&name))
                .unwrap_or_else(|| panic!("{slug}: {name:?} is named in no legend"));
            match &s.axis {
                Axis::Categories(labels) => {
                    assert!(
                        !svg.contains("<polyline"),
                        "{slug}: {name}: categories joined by a line"
                    );
                    for p in s.points.iter().filter(|p| p[1].is_finite()) {
                        let label = esc(&labels[p[0] as usize]);
                        assert!(
                            svg.contains(&format!("<title>{label}: ")),
                            "{slug}: {name}: no bar for {label}"
                        );
                    }
                }
                _ => {
                    assert!(
                        !CATEGORY_AXES.contains(&s.x.as_str()),
                        "{slug}: {name}: {} are categories, drawn as a line",
                        s.x
                    );
                    assert!(
                        !svg.contains("<title>"),
                        "{slug}: {name}: a line drawn as bars"
                    );
                    let finite = s
                        .points
                        .iter()
                        .filter(|p| p[0].is_finite() && p[1].is_finite())
                        .count();
                    assert!(
                        finite < 2 || svg.contains("<polyline"),
                        "{slug}: {name}: {finite} points and no line"
                    );
                }
            }
        }
    }
}
