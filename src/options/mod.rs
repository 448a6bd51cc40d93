//! QEMU's networking options, parsed into typed specifications.
//!
//! Accepted, with QEMU's semantics:
//! - `-net nic[,vlan=n][,macaddr=mac][,model=type][,name=str][,addr=str][,vectors=v][,netdev=id]`
//! - `-net user|tap|bridge|socket|vde|dump|...[,vlan=n][,name=str][,...]` — legacy: every
//!   `-net` client joins hub `vlan` (default 0) through a port `hub<N>port<M>`
//! - `-net none` — no network (also turns off the default)
//! - `-netdev TYPE,id=ID,...` and `-netdev hubport,id=ID,hubid=N[,netdev=ID]`
//! - `-device MODEL,netdev=ID[,mac=][,addr=][,id=][,bus=][,model properties]`
//! - `-nic TYPE[,model=][,mac=][,id=][,...]` and `-nic none`
//! - `-object filter-dump,id=ID,netdev=ID,file=PATH[,maxlen=N]`
//! - `-redir [tcp|udp]:hostport:[guestaddr]:guestport` — QEMU's old form of a `hostfwd=`
//!   rule, added to the first user-mode network
//!
//! With no networking option at all the configuration is QEMU's default,
//! `-net nic -net user`. `model=help` (or `model=?`, or `-device help`) sets
//! [`NetConfig::help`] to the list of models, which the caller prints.
//!
//! Parsing checks everything that needs no live object — syntax, keys the parser owns,
//! types, ids, references — and locates every error at a column (see [`OptionsError`]).
//! Backend options are kept as ordered `(key, value)` pairs for the backend's `open`;
//! their keys and values are checked when the network is built
//! ([`crate::network::NetworkBuilder`]), and those errors point at the key's column too.

mod error;
mod grammar;
mod lexer;
mod resolve;

pub use error::{OptionsError, Warning};
pub use lexer::Param;

use vm_nic_backends::MacAddr;

/// The QEMU option a specification came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionKind {
    /// `-net` (legacy, hub-based).
    Net,
    /// `-netdev`.
    Netdev,
    /// `-device`.
    Device,
    /// `-nic`.
    Nic,
    /// `-object`.
    Object,
}

impl OptionKind {
    /// The option as written on the command line, e.g. `-netdev`.
    pub fn as_str(self) -> &'static str {
        match self {
            OptionKind::Net => "-net",
            OptionKind::Netdev => "-netdev",
            OptionKind::Device => "-device",
            OptionKind::Nic => "-nic",
            OptionKind::Object => "-object",
        }
    }
}

/// A network backend to create (QEMU's netdev, or a legacy `-net` host client).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetdevSpec {
    /// The option it came from.
    pub option: OptionKind,
    /// Column of the option's argument.
    pub column: usize,
    /// QEMU's type: `user`, `tap`, `socket`, `hubport`, `dump`, ...
    pub kind: String,
    /// The client name: the `id` (`-netdev`, `-nic`), `name=`/`id=` (`-net`), or QEMU's
    /// generated `TYPE.N` (`user.0`).
    pub name: String,
    /// The hub it sits on: `vlan=` (default 0) for `-net`, `hubid=` for `hubport`.
    pub hub: Option<u32>,
    /// For `hubport`: the netdev given by `netdev=`, as an index into
    /// [`NetConfig::netdevs`] once resolved.
    pub hubport_peer: Option<usize>,
    /// Backend options in command-line order, without the generic keys
    /// (`type`, `id`, `name`, `vlan`, `hubid`, `netdev`).
    pub opts: Vec<Param>,
}

impl NetdevSpec {
    /// The backend options as the `(key, value)` pairs backend `open` functions take.
    pub fn backend_opts(&self) -> Vec<(String, String)> {
        pairs(&self.opts)
    }
}

/// Where a NIC's traffic goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NicPeer {
    /// Directly to netdev `i` of [`NetConfig::netdevs`] (not a hub port).
    Netdev(usize),
    /// To port `port` (index in creation order) of the hub with id `hub`.
    HubPort {
        /// Hub id.
        hub: u32,
        /// Port index within [`HubPlan::ports`].
        port: usize,
    },
    /// Nowhere: QEMU warns "nic NAME has no peer" and the NIC's frames are dropped.
    None,
}

/// A NIC to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NicSpec {
    /// The option it came from (`-net`, `-device` or `-nic`).
    pub option: OptionKind,
    /// Column of the option's argument.
    pub column: usize,
    /// QEMU's model name as given (`e1000`, `rtl8139`, `virtio-net-pci`, ...). Whether
    /// vm-nic has it is decided when the network is built.
    pub model: String,
    /// Column of the model name.
    pub model_column: usize,
    /// The client name: `id=`/`name=`, or QEMU's generated `MODEL.N` (`e1000.0`).
    pub name: String,
    /// The station address: given, or QEMU's default `52:54:00:12:34:56 + n`.
    pub mac: MacAddr,
    /// True when the address was given on the command line.
    pub mac_given: bool,
    /// Where its traffic goes.
    pub peer: NicPeer,
    /// `addr=` (PCI slot[.function]) as given.
    pub addr: Option<String>,
    /// `bus=` as given.
    pub bus: Option<String>,
    /// `-net nic`'s `vectors=` as given (MSI-X vectors; only virtio models use it). On
    /// `-device` it is a model property like any other.
    pub vectors: Option<String>,
    /// Model properties (`revision=`, `iobase=`, `irq=` ...) for
    /// `vm_nic_devices::models::create`, in command-line order.
    pub props: Vec<Param>,
}

impl NicSpec {
    /// The model properties as `(key, value)` pairs.
    pub fn model_props(&self) -> Vec<(String, String)> {
        pairs(&self.props)
    }
}

/// `-object filter-dump`: record a netdev's traffic to a pcap file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterSpec {
    /// Column of the option's argument.
    pub column: usize,
    /// The object id.
    pub id: String,
    /// Index of the filtered netdev in [`NetConfig::netdevs`].
    pub netdev: usize,
    /// The filter's options (`netdev`, `file`, `maxlen`, `queue`, ...) in order, without
    /// `qom-type` and `id`.
    pub opts: Vec<Param>,
}

impl FilterSpec {
    /// The options as `(key, value)` pairs.
    pub fn filter_opts(&self) -> Vec<(String, String)> {
        pairs(&self.opts)
    }
}

/// What is plugged into a hub port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortPeer {
    /// NIC `i` of [`NetConfig::nics`].
    Nic(usize),
    /// Netdev `i` of [`NetConfig::netdevs`].
    Netdev(usize),
    /// Nothing (QEMU warns "hub port NAME has no peer").
    None,
}

/// One port of a hub, in creation order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortPlan {
    /// `hub<N>port<M>`, or the `id` of a `-netdev hubport`.
    pub name: String,
    /// True for a `-netdev hubport` (named by its id).
    pub named: bool,
    /// What is plugged in.
    pub peer: PortPeer,
}

/// A hub and its ports, in creation order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubPlan {
    /// The hub id (the old `vlan=` number).
    pub id: u32,
    /// Its ports in the order QEMU creates them.
    pub ports: Vec<PortPlan>,
}

/// A parsed and resolved networking configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// The command line every column refers to (arguments joined by single spaces).
    /// When [`NetConfig::defaulted`], the default line `-net nic -net user`.
    pub line: String,
    /// True when no networking option was given and QEMU's default was used.
    pub defaulted: bool,
    /// Backends (including `hubport`s) in QEMU's creation order: `-netdev`s, then
    /// `-nic`s, then `-net` host clients.
    pub netdevs: Vec<NetdevSpec>,
    /// NICs in QEMU's creation order: `-nic`, then `-net nic`, then `-device`.
    pub nics: Vec<NicSpec>,
    /// `-object filter-dump`s.
    pub filters: Vec<FilterSpec>,
    /// Hubs in creation order.
    pub hubs: Vec<HubPlan>,
    /// QEMU's warnings for this topology (hub with no nics, client with no peer ...).
    pub warnings: Vec<Warning>,
    /// Set when `model=help`/`model=?`/`-device help` was given: the text to print
    /// (nothing else should be done, as QEMU exits after printing it).
    pub help: Option<String>,
}

/// The default configuration when no networking option is given.
pub const DEFAULT_LINE: &str = "-net nic -net user";

/// QEMU's default NIC model for `-net nic` on a PC.
pub const DEFAULT_MODEL: &str = "e1000";

impl NetConfig {
    /// Parses the networking options of one command-line string (words split on
    /// whitespace; `'...'` and `"..."` group words).
    pub fn parse_line(line: &str) -> Result<NetConfig, OptionsError> {
        let words = lexer::words_from_line(line).map_err(|(col, message)| OptionsError {
            option: "command line".into(),
            column: clamp(col, line),
            message,
            line: line.to_string(),
        })?;
        Self::parse_words(words, line.to_string())
    }

    /// Parses an argument vector (e.g. `std::env::args().skip(2)`); columns refer to the
    /// arguments joined by single spaces.
    pub fn parse_args<S: AsRef<str>>(args: &[S]) -> Result<NetConfig, OptionsError> {
        let (words, line) = lexer::words_from_args(args);
        Self::parse_words(words, line)
    }

    fn parse_words(words: Vec<lexer::Word>, line: String) -> Result<NetConfig, OptionsError> {
        let mut parsed = grammar::parse(&words, &line)?;
        let redirs = std::mem::take(&mut parsed.redirs);
        let mut cfg = if parsed.is_empty_network() {
            let (dw, dl) = lexer::words_from_args(&["-net", "nic", "-net", "user"]);
            let mut cfg = resolve::resolve(grammar::parse(&dw, &dl)?, dl)?;
            cfg.defaulted = true;
            cfg.help = parsed.help;
            cfg
        } else {
            resolve::resolve(parsed, line.clone())?
        };
        // QEMU applied `-redir` to the first user-mode network it created.
        if let Some(first) = redirs.first() {
            let Some(user) = cfg.netdevs.iter_mut().find(|n| n.kind == "user") else {
                return Err(OptionsError {
                    option: "-redir".into(),
                    column: clamp(first.key_col, &line),
                    message: "-redir needs a user-mode network: add -netdev user,id=ID or \
                              -net user"
                        .into(),
                    line,
                });
            };
            user.opts.extend(redirs);
        }
        Ok(cfg)
    }

    /// An error located at `column` of this configuration's line; used by the network
    /// builder for problems found while opening backends and creating models.
    pub fn error_at(
        &self,
        option: &str,
        column: usize,
        message: impl Into<String>,
    ) -> OptionsError {
        OptionsError {
            option: option.to_string(),
            column: clamp(column, &self.line),
            message: message.into(),
            line: self.line.clone(),
        }
    }

    /// The netdev with client name `name`.
    pub fn netdev_by_name(&self, name: &str) -> Option<usize> {
        self.netdevs.iter().position(|n| n.name == name)
    }

    /// The NIC directly peered with netdev `i`, if any.
    pub fn nic_of_netdev(&self, i: usize) -> Option<usize> {
        self.nics.iter().position(|n| n.peer == NicPeer::Netdev(i))
    }

    /// The hub port netdev `i` is plugged into, as `(hub id, port index)`.
    pub fn port_of_netdev(&self, i: usize) -> Option<(u32, usize)> {
        self.hubs.iter().find_map(|h| {
            let p = h.ports.iter().position(|p| p.peer == PortPeer::Netdev(i))?;
            Some((h.id, p))
        })
    }
}

/// The text `model=help` prints: QEMU's heading and one model name per line.
pub fn model_help() -> String {
    let mut s = String::from("Supported NIC models:\n");
    for m in vm_nic_devices::models::MODELS {
        s.push_str(m.name);
        s.push('\n');
    }
    s
}

fn pairs(p: &[Param]) -> Vec<(String, String)> {
    p.iter().map(|p| (p.key.clone(), p.value.clone())).collect()
}

/// Keeps a column inside `line` (1 ..= number of characters, at least 1).
pub(crate) fn clamp(col: usize, line: &str) -> usize {
    col.clamp(1, line.chars().count().max(1))
}
