//! VINTF manifest and compatibility-matrix fragments, read with `roxmltree` (a conforming XML
//! parser: a fragment that is not well-formed fails here as it fails `assemble_vintf`).

/// One `<hal format="aidl">` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AidlHal {
    pub name: String,
    pub versions: Vec<String>,
    /// `Interface/instance` pairs, from `<fqname>` (manifest) or `<interface>` (matrix).
    pub instances: Vec<String>,
    pub optional: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// `manifest` or `compatibility-matrix`.
    pub root: String,
    /// The `type` attribute: `device` or `framework`.
    pub kind: String,
    pub version: String,
    pub hals: Vec<AidlHal>,
}

fn child_texts(node: roxmltree::Node<'_, '_>, tag: &str) -> Vec<String> {
    node.children()
        .filter(|c| c.has_tag_name(tag))
        .map(|c| c.text().unwrap_or("").trim().to_owned())
        .collect()
}

/// Parses a fragment; HIDL and other non-AIDL HAL entries are errors (this project has none).
pub fn parse(text: &str) -> Result<Fragment, String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| e.to_string())?;
    let root = doc.root_element();
    let root_name = root.tag_name().name().to_owned();
    if root_name != "manifest" && root_name != "compatibility-matrix" {
        return Err(format!("unexpected root element <{root_name}>"));
    }
    let attr = |name: &str| root.attribute(name).map(str::to_owned);
    let mut hals = Vec::new();
    for hal in root.children().filter(|c| c.has_tag_name("hal")) {
        if hal.attribute("format") != Some("aidl") {
            return Err("every <hal> here must be format=\"aidl\"".into());
        }
        let names = child_texts(hal, "name");
        if names.len() != 1 {
            return Err("a <hal> needs exactly one <name>".into());
        }
        let mut instances = Vec::new();
        for fq in child_texts(hal, "fqname") {
            instances.push(fq);
        }
        for iface in hal.children().filter(|c| c.has_tag_name("interface")) {
            let iname = child_texts(iface, "name");
            if iname.len() != 1 {
                return Err("an <interface> needs exactly one <name>".into());
            }
            let inst = child_texts(iface, "instance");
            if inst.is_empty() {
                return Err(format!("interface {} has no <instance>", iname[0]));
            }
            for i in inst {
                instances.push(format!("{}/{i}", iname[0]));
            }
        }
        hals.push(AidlHal {
            name: names[0].clone(),
            versions: child_texts(hal, "version"),
            instances,
            optional: hal.attribute("optional").map(str::to_owned),
        });
    }
    Ok(Fragment {
        root: root_name,
        kind: attr("type").unwrap_or_default(),
        version: attr("version").unwrap_or_default(),
        hals,
    })
}
