//! `syslens lab`: which labs a name selects, and the child side of every lab (the
//! re-executed `syslens __lab-child CONCEPT ROLE PARAMS`).

use crate::catalogue::{ConceptId, UnknownConcept};
use crate::concepts::{def, REGISTRY};
use crate::lab::{self, LabDef};

/// The labs `name` selects: `all` for every lab in catalogue order, else one concept's
/// (case-insensitive, `_` for `-`).
pub fn select(name: &str) -> Result<Vec<&'static LabDef>, UnknownConcept> {
    if name.eq_ignore_ascii_case("all") {
        return Ok(REGISTRY.iter().map(|c| c.lab).collect());
    }
    ConceptId::lookup(name).map(|id| vec![def(id).lab])
}

/// Runs the child side of a lab in the re-executed child; its exit code.
pub fn child_main(concept: &str, role: &str, params: &str) -> i32 {
    let lab = ConceptId::from_slug(concept).map(|id| def(id).lab);
    lab::child_main(lab, role, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_selects_every_lab_in_order_and_a_name_one() {
        let all = select("all").unwrap_or_default();
        assert_eq!(all.len(), 17);
        assert!(all.windows(2).all(|w| w[0].id < w[1].id));
        let one = select("Demand_Paging").unwrap_or_default();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].id, ConceptId::DemandPaging);
        assert!(select("nope").is_err());
    }
}
