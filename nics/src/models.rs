//! The registry of model names, as QEMU spells them, and their construction from
//! `-device MODEL,key=value` properties.

use vm_memory::GuestMemory;

use crate::device::{NicConfig, NicDevice};

/// A model QEMU users know, with the one-line description `model=help` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelInfo {
    /// QEMU's name for it.
    pub name: &'static str,
    /// What it is.
    pub description: &'static str,
}

/// Every model vm-nic has, in the order `model=help` lists them.
pub const MODELS: &[ModelInfo] = &[
    ModelInfo {
        name: "e1000",
        description: "Intel 82540EM Gigabit Ethernet (8086:100e)",
    },
    ModelInfo {
        name: "e1000-82544gc",
        description: "Intel 82544GC Gigabit Ethernet (8086:100c)",
    },
    ModelInfo {
        name: "e1000-82545em",
        description: "Intel 82545EM Gigabit Ethernet (8086:100f)",
    },
    ModelInfo {
        name: "rtl8139",
        description: "Realtek RTL8139 / RTL8139C+ 10/100 (10ec:8139; revision=0x10 or 0x20)",
    },
    ModelInfo {
        name: "ne2k_pci",
        description: "Realtek RTL8029 NE2000 PCI (10ec:8029)",
    },
    ModelInfo {
        name: "ne2k_isa",
        description: "NE2000 ISA (iobase=0x300, irq=9)",
    },
];

/// QEMU NIC models vm-nic does not have yet; asking for one is a clear error.
pub const QEMU_ONLY_MODELS: &[&str] = &[
    "virtio",
    "virtio-net-pci",
    "virtio-net-pci-non-transitional",
    "virtio-net-pci-transitional",
    "virtio-net-device",
    "pcnet",
    "i82550",
    "i82551",
    "i82557a",
    "i82557b",
    "i82557c",
    "i82558a",
    "i82558b",
    "i82559a",
    "i82559b",
    "i82559c",
    "i82559er",
    "i82562",
    "i82801",
    "e1000e",
    "igb",
    "vmxnet3",
    "rocker",
    "tulip",
    "usb-net",
    "sungem",
    "lance",
    "smc91c111",
    "lan9118",
    "mcf_fec",
    "xgmac",
];

/// Why a model could not be created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelError {
    /// A QEMU model vm-nic does not have.
    NotSupported(String),
    /// A name no one knows.
    Unknown(String),
    /// A property the model does not have, with the ones it has.
    UnknownProperty {
        /// The model.
        model: String,
        /// The property given.
        key: String,
        /// The properties it accepts.
        valid: Vec<&'static str>,
    },
    /// A property value out of range or of the wrong form.
    BadValue {
        /// The model.
        model: String,
        /// The property.
        key: String,
        /// The value given.
        value: String,
        /// What was expected.
        expected: String,
    },
}

fn supported_list() -> String {
    MODELS.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
}

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModelError::NotSupported(m) => write!(
                f,
                "NIC model '{m}' is a QEMU model vm-nic does not support yet; supported: {}",
                supported_list()
            ),
            ModelError::Unknown(m) => {
                write!(
                    f,
                    "unknown NIC model '{m}'; supported: {}",
                    supported_list()
                )
            }
            ModelError::UnknownProperty { model, key, valid } => write!(
                f,
                "model '{model}' has no property '{key}'; valid: {}",
                valid.join(", ")
            ),
            ModelError::BadValue {
                model,
                key,
                value,
                expected,
            } => write!(
                f,
                "model '{model}': {key}={value} is invalid: expected {expected}"
            ),
        }
    }
}

impl std::error::Error for ModelError {}

/// Parses an integer property the way QEMU does: decimal, or hex with `0x`.
pub fn parse_int_prop(model: &str, key: &str, value: &str, max: u64) -> Result<u64, ModelError> {
    let v = if let Some(h) = value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))
    {
        u64::from_str_radix(h, 16).ok()
    } else {
        value.parse::<u64>().ok()
    };
    match v {
        Some(v) if v <= max => Ok(v),
        _ => Err(ModelError::BadValue {
            model: model.to_string(),
            key: key.to_string(),
            value: value.to_string(),
            expected: format!("an integer from 0 to {max:#x}"),
        }),
    }
}

/// True if `name` is one of [`MODELS`].
pub fn is_supported(name: &str) -> bool {
    MODELS.iter().any(|m| m.name == name)
}

/// Classifies a model name that is not supported: QEMU-only or unknown.
pub fn unsupported(name: &str) -> ModelError {
    if QEMU_ONLY_MODELS.contains(&name) {
        ModelError::NotSupported(name.to_string())
    } else {
        ModelError::Unknown(name.to_string())
    }
}

/// Creates model `name` with device properties `props` (e.g. `[("revision", "0x10")]`;
/// generic properties such as `netdev`, `mac`, `id`, `addr` and `bus` are the caller's and
/// must not be passed here).
pub fn create<M>(
    name: &str,
    props: &[(String, String)],
    cfg: NicConfig<M>,
) -> Result<Box<dyn NicDevice<M>>, ModelError>
where
    M: GuestMemory + Send + 'static,
{
    match name {
        "e1000" | "e1000-82544gc" | "e1000-82545em" => crate::e1000::create(name, props, cfg),
        "rtl8139" => crate::rtl8139::create(name, props, cfg),
        "ne2k_pci" | "ne2k_isa" => crate::ne2000::create(name, props, cfg),
        other => Err(unsupported(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_supported_models() {
        let e = unsupported("pcnet").to_string();
        assert!(
            e.contains("not support yet") && e.contains("e1000") && e.contains("ne2k_pci"),
            "{e}"
        );
        assert!(unsupported("bogus")
            .to_string()
            .starts_with("unknown NIC model 'bogus'"));
    }

    #[test]
    fn int_props() {
        assert_eq!(parse_int_prop("m", "revision", "0x10", 0xff), Ok(16));
        assert_eq!(parse_int_prop("m", "irq", "9", 15), Ok(9));
        assert!(parse_int_prop("m", "irq", "16", 15).is_err());
        assert!(parse_int_prop("m", "irq", "x", 15).is_err());
    }
}
