//! A device's reported inventory as components.

use bulwark_proto::Inventory;
use bulwark_sbom::{Component, ComponentEcosystem};

/// The components of a device inventory: each installed package under the
/// ecosystem of the database it came from (dpkg → Debian, apk → Alpine,
/// opkg → OpenWrt), with its architecture as a purl qualifier.
pub fn inventory_components(inv: &Inventory) -> Vec<Component> {
    inv.packages
        .iter()
        .map(|p| {
            let eco = match p.source.as_str() {
                "dpkg" => ComponentEcosystem::Debian,
                "apk" => ComponentEcosystem::Alpine,
                "opkg" => ComponentEcosystem::Openwrt,
                _ => ComponentEcosystem::Generic,
            };
            let arch = p.arch.as_deref().unwrap_or("");
            Component::new(eco, p.name.clone(), p.version.clone(), &[("arch", arch)])
        })
        .collect()
}
