//! Builds live objects from a [`NetConfig`]: hubs, backends and NICs, wired the way QEMU
//! wires them, plus QEMU's `info network` text.
//!
//! - A NIC on a hub (`-net nic`, or `-device ...,netdev=HUBPORT`) gets its
//!   [`HubPort`] as its backend.
//! - A NIC with `netdev=ID` gets that backend directly.
//! - A backend on a hub (`-net user`, `-netdev hubport,netdev=ID`) is pumped to and from
//!   its hub port by the [`crate::runner::Runner`].
//! - A backend or hub port with no peer is still created (QEMU warns about it); the
//!   runner drops what reaches it, as QEMU drops frames sent to no peer.
//!
//! Backends are opened by [`open_backend`] (the one place that maps a QEMU type to a
//! backend module) unless the caller supplies its own opener; NICs are created by
//! `vm_nic_devices::models::create` unless the caller supplies its own factory.

mod info;

use std::sync::Arc;

use vm_memory::GuestMemory;
use vm_nic_backends::memory::NullBackend;
use vm_nic_backends::{Hub, HubPort, NetBackend, OptError};
use vm_nic_devices::models::{self, ModelError};
use vm_nic_devices::{Clock, IrqLine, NicConfig, NicDevice};

use crate::options::{
    NetConfig, NetdevSpec, NicPeer, NicSpec, OptionsError, Param, PortPeer, Warning,
};

/// Opens a backend of QEMU type `kind` from its `(key, value)` options; see
/// [`open_backend`].
pub type BackendOpener = dyn Fn(&str, &[(String, String)]) -> Result<Box<dyn NetBackend>, OptError>;

/// Wraps backend `inner` in a `-object filter-dump` with the filter's options; see
/// [`open_filter_dump`].
pub type FilterOpener =
    dyn Fn(&[(String, String)], Box<dyn NetBackend>) -> Result<Box<dyn NetBackend>, OptError>;

/// Creates a NIC model for a spec; the default is `vm_nic_devices::models::create`.
pub type NicFactory<M> =
    dyn FnMut(&NicSpec, NicConfig<M>) -> Result<Box<dyn NicDevice<M>>, ModelError>;

/// Makes the interrupt line of NIC number `index` (in [`NetConfig::nics`] order).
pub type IrqFactory = dyn FnMut(usize, &NicSpec) -> Box<dyn IrqLine>;

fn unavailable(what: &str) -> OptError {
    OptError::whole(format!("backend {what} is not available in this build"))
}

/// The backend modules of `vm-nic-backends`, by QEMU type. This is the one place a
/// backend type is mapped to its module's `open`; a type with no module in this build
/// (or whose cargo feature is off) is a clear error, never a stand-in.
pub fn open_backend(
    kind: &str,
    opts: &[(String, String)],
) -> Result<Box<dyn NetBackend>, OptError> {
    #[allow(unused_imports)]
    use vm_nic_backends as b;
    match kind {
        #[cfg(feature = "user")]
        "user" => b::user::open(opts),
        #[cfg(feature = "tap")]
        "tap" => b::tap::open(opts),
        #[cfg(feature = "tap")]
        "bridge" => b::tap::bridge::open(opts),
        #[cfg(feature = "socket")]
        "socket" => b::socket::open(opts),
        #[cfg(feature = "socket")]
        "stream" => b::socket::stream::open(opts),
        #[cfg(feature = "socket")]
        "dgram" => b::socket::dgram::open(opts),
        #[cfg(feature = "vde")]
        "vde" => b::vde::open(opts),
        #[cfg(feature = "dump")]
        "dump" => b::dump::open(opts),
        _ => {
            let _ = opts;
            Err(unavailable(kind))
        }
    }
}

/// Wraps `inner` in a `-object filter-dump` recorder built from the filter's options.
pub fn open_filter_dump(
    opts: &[(String, String)],
    inner: Box<dyn NetBackend>,
) -> Result<Box<dyn NetBackend>, OptError> {
    #[cfg(feature = "dump")]
    return vm_nic_backends::dump::open_filter(opts, inner)
        .map(|f| Box::new(f) as Box<dyn NetBackend>);
    #[cfg(not(feature = "dump"))]
    {
        let _ = (opts, inner);
        Err(unavailable("filter-dump"))
    }
}

/// What NICs need from the machine they are plugged into.
pub struct Guest<M> {
    /// Guest memory for DMA; each NIC gets a clone.
    pub memory: M,
    /// The clock every device timer runs on.
    pub clock: Arc<dyn Clock>,
    /// Interrupt lines, one per NIC.
    pub irq: Box<IrqFactory>,
}

/// A NIC and what `info network` says about it.
pub(crate) struct NicSlot<M> {
    pub spec: NicSpec,
    pub device: Box<dyn NicDevice<M>>,
}

/// A backend or hub port not owned by a NIC: pumped (backend + port) or drained (either
/// alone) by the runner.
pub(crate) struct Link {
    /// Index in [`NetConfig::netdevs`], for a backend.
    pub netdev: Option<usize>,
    pub backend: Option<Box<dyn NetBackend>>,
    pub port: Option<HubPort>,
    /// The hub the port is on.
    pub hub: Option<u32>,
}

/// The live network: hubs, backends and NICs built from a [`NetConfig`].
pub struct Network<M> {
    pub(crate) cfg: NetConfig,
    pub(crate) hubs: Vec<Hub>,
    pub(crate) nics: Vec<NicSlot<M>>,
    pub(crate) links: Vec<Link>,
}

/// Builds a [`Network`] from a [`NetConfig`].
///
/// ```
/// use std::sync::Arc;
/// use vm_memory::{GuestAddress, GuestMemoryMmap};
/// use vm_nic::devices::{ManualClock, NoIrq};
/// use vm_nic::network::{Guest, NetworkBuilder};
/// use vm_nic::options::NetConfig;
///
/// let cfg = NetConfig::parse_line("-nic user,model=rtl8139 -nic user,model=ne2k_pci").unwrap();
/// let ram: GuestMemoryMmap = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
/// let net = NetworkBuilder::new(&cfg)
///     .guest(Guest {
///         memory: ram,
///         clock: Arc::new(ManualClock::new()),
///         irq: Box::new(|_index, _spec| Box::new(NoIrq)),
///     })
///     .build()
///     .unwrap();
/// assert_eq!(net.nic_count(), 2);
/// assert_eq!(net.nic(1).unwrap().model(), "ne2k_pci");
/// ```
pub struct NetworkBuilder<'a, M> {
    cfg: &'a NetConfig,
    guest: Option<Guest<M>>,
    opener: Box<BackendOpener>,
    filter: Box<FilterOpener>,
    factory: Box<NicFactory<M>>,
    /// The factory is `models::create`: unknown models fail before anything is opened.
    registry_models: bool,
}

impl<'a, M: GuestMemory + Clone + Send + 'static> NetworkBuilder<'a, M> {
    /// A builder with the default backend opener ([`open_backend`]), filter
    /// ([`open_filter_dump`]) and NIC factory (`models::create`), and no guest.
    pub fn new(cfg: &'a NetConfig) -> Self {
        NetworkBuilder {
            cfg,
            guest: None,
            opener: Box::new(open_backend),
            filter: Box::new(open_filter_dump),
            factory: Box::new(|spec, nic_cfg| {
                models::create(&spec.model, &spec.model_props(), nic_cfg)
            }),
            registry_models: true,
        }
    }

    /// The machine the NICs are plugged into. Without one, a configuration with a NIC is
    /// an error (NICs need guest memory and interrupt lines).
    pub fn guest(mut self, guest: Guest<M>) -> Self {
        self.guest = Some(guest);
        self
    }

    /// Replaces [`open_backend`] (tests plug in-memory backends in this way).
    pub fn backend_opener(
        mut self,
        f: impl Fn(&str, &[(String, String)]) -> Result<Box<dyn NetBackend>, OptError> + 'static,
    ) -> Self {
        self.opener = Box::new(f);
        self
    }

    /// Replaces [`open_filter_dump`].
    pub fn filter_opener(
        mut self,
        f: impl Fn(&[(String, String)], Box<dyn NetBackend>) -> Result<Box<dyn NetBackend>, OptError>
            + 'static,
    ) -> Self {
        self.filter = Box::new(f);
        self
    }

    /// Replaces `models::create` (e.g. to wrap models for tracing).
    pub fn nic_factory(
        mut self,
        f: impl FnMut(&NicSpec, NicConfig<M>) -> Result<Box<dyn NicDevice<M>>, ModelError> + 'static,
    ) -> Self {
        self.factory = Box::new(f);
        self.registry_models = false;
        self
    }

    /// Opens every backend, creates hubs, ports and NICs and wires them. The first
    /// failure is returned, located at the column of the option (or key) at fault.
    pub fn build(mut self) -> Result<Network<M>, OptionsError> {
        let cfg = self.cfg;
        self.check_nics()?;
        let mut backends = self.open_backends()?;
        let (hubs, mut ports) = create_hubs(cfg);
        let mut nics = Vec::with_capacity(cfg.nics.len());
        for (i, spec) in cfg.nics.iter().enumerate() {
            let backend: Box<dyn NetBackend> = match spec.peer {
                NicPeer::Netdev(j) => backends[j].take().expect("a netdev has one user"),
                NicPeer::HubPort { hub, port } => {
                    let h = cfg
                        .hubs
                        .iter()
                        .position(|p| p.id == hub)
                        .expect("planned hub");
                    Box::new(ports[h][port].take().expect("a port has one peer"))
                }
                NicPeer::None => Box::new(NullBackend::new()),
            };
            let device = self.create_nic(i, spec, backend)?;
            nics.push(NicSlot {
                spec: spec.clone(),
                device,
            });
        }
        let mut links = collect_links(cfg, ports, backends);
        wire_gso(&mut links);
        Ok(Network {
            cfg: cfg.clone(),
            hubs,
            nics,
            links,
        })
    }

    /// NICs need a guest, and (with the registry's factory) a model vm-nic has: checked
    /// before any backend (a TAP, a socket) is opened.
    fn check_nics(&self) -> Result<(), OptionsError> {
        let cfg = self.cfg;
        if let (Some(nic), None) = (cfg.nics.first(), &self.guest) {
            return Err(cfg.error_at(
                nic.option.as_str(),
                nic.column,
                format!(
                    "NIC '{}' needs a guest: this configuration serves backends and hubs only \
                     (embed vm-nic in a VMM to run NICs)",
                    nic.name
                ),
            ));
        }
        if self.registry_models {
            if let Some(nic) = cfg.nics.iter().find(|n| !models::is_supported(&n.model)) {
                return Err(cfg.error_at(
                    nic.option.as_str(),
                    nic.model_column,
                    models::unsupported(&nic.model).to_string(),
                ));
            }
        }
        Ok(())
    }

    /// Opens every non-hubport netdev and applies the filters to it.
    fn open_backends(&self) -> Result<Vec<Option<Box<dyn NetBackend>>>, OptionsError> {
        let cfg = self.cfg;
        let mut out: Vec<Option<Box<dyn NetBackend>>> = Vec::with_capacity(cfg.netdevs.len());
        for nd in &cfg.netdevs {
            if nd.kind == "hubport" {
                out.push(None);
                continue;
            }
            let mut opts = nd.backend_opts();
            if nd.kind == "dump" && !opts.iter().any(|(k, _)| k == "file") {
                // QEMU's default capture file names the hub.
                let file = format!("qemu-vlan{}.pcap", nd.hub.unwrap_or(0));
                opts.push(("file".into(), file));
            }
            let b = (self.opener)(&nd.kind, &opts).map_err(|e| opt_error(cfg, nd, &nd.opts, e))?;
            out.push(Some(b));
        }
        for f in &cfg.filters {
            let nd = &cfg.netdevs[f.netdev];
            let Some(inner) = out[f.netdev].take() else {
                return Err(cfg.error_at(
                    "-object",
                    f.column,
                    format!(
                        "filter-dump: netdev '{}' is a hub port; filter its peer instead",
                        nd.name
                    ),
                ));
            };
            let wrapped = (self.filter)(&f.filter_opts(), inner).map_err(|e| {
                let col = e
                    .key
                    .as_deref()
                    .and_then(|k| key_col(&f.opts, k))
                    .unwrap_or(f.column);
                cfg.error_at("-object", col, format!("filter-dump: {}", e.message))
            })?;
            out[f.netdev] = Some(wrapped);
        }
        Ok(out)
    }

    fn create_nic(
        &mut self,
        i: usize,
        spec: &NicSpec,
        backend: Box<dyn NetBackend>,
    ) -> Result<Box<dyn NicDevice<M>>, OptionsError> {
        let guest = self.guest.as_mut().expect("checked above");
        let nic_cfg = NicConfig {
            mac: spec.mac,
            backend,
            irq: (guest.irq)(i, spec),
            clock: guest.clock.clone(),
            memory: guest.memory.clone(),
        };
        (self.factory)(spec, nic_cfg).map_err(|e| {
            let col = match &e {
                ModelError::UnknownProperty { key, .. } => key_col(&spec.props, key),
                ModelError::BadValue { key, .. } => spec
                    .props
                    .iter()
                    .rev()
                    .find(|p| &p.key == key)
                    .map(|p| p.value_col),
                _ => Some(spec.model_column),
            };
            self.cfg.error_at(
                spec.option.as_str(),
                col.unwrap_or(spec.column),
                e.to_string(),
            )
        })
    }
}

/// Hubs and their ports in the planned order, so port names match the plan.
fn create_hubs(cfg: &NetConfig) -> (Vec<Hub>, Vec<Vec<Option<HubPort>>>) {
    let mut hubs = Vec::new();
    let mut ports = Vec::new();
    for plan in &cfg.hubs {
        let hub = Hub::new(plan.id);
        let add = |p: &crate::options::PortPlan| {
            Some(if p.named {
                hub.add_named_port(&p.name)
            } else {
                hub.add_port()
            })
        };
        ports.push(plan.ports.iter().map(add).collect());
        hubs.push(hub);
    }
    (hubs, ports)
}

/// What no NIC took: hub ports with their backend (or none), and peerless backends.
fn collect_links(
    cfg: &NetConfig,
    mut ports: Vec<Vec<Option<HubPort>>>,
    mut backends: Vec<Option<Box<dyn NetBackend>>>,
) -> Vec<Link> {
    let mut links = Vec::new();
    for (h, plan) in cfg.hubs.iter().enumerate() {
        for (p, port) in plan.ports.iter().enumerate() {
            let Some(hp) = ports[h][p].take() else {
                continue;
            };
            let netdev = match port.peer {
                PortPeer::Netdev(j) => Some(j),
                _ => None,
            };
            links.push(Link {
                netdev,
                backend: netdev.and_then(|j| backends[j].take()),
                port: Some(hp),
                hub: Some(plan.id),
            });
        }
    }
    for (j, b) in backends.iter_mut().enumerate() {
        if let Some(b) = b.take() {
            links.push(Link {
                netdev: Some(j),
                backend: Some(b),
                port: None,
                hub: None,
            });
        }
    }
    links
}

/// Lets GSO frames cross the hubs where both ends can take them: a hub port whose
/// backend accepts GSO frames (a tap with `vnet_hdr`) is marked so, and a backend whose
/// port then accepts them (another port of its hub is marked) is told its peer does, so
/// the user network may hand out 64 KiB TCP frames. NICs' ports stay unmarked: the hub
/// cuts GSO frames for them.
fn wire_gso(links: &mut [Link]) {
    for l in links.iter() {
        if let (Some(port), Some(b)) = (&l.port, &l.backend) {
            port.set_accepts_gso(b.accepts_gso());
        }
    }
    for l in links.iter_mut() {
        if let (Some(port), Some(b)) = (&l.port, &mut l.backend) {
            b.set_peer_accepts_gso(port.accepts_gso());
        }
    }
}

/// Column of the last occurrence of `key` (the one that counts).
fn key_col(params: &[Param], key: &str) -> Option<usize> {
    params
        .iter()
        .rev()
        .find(|p| p.key == key)
        .map(|p| p.key_col)
}

fn opt_error(cfg: &NetConfig, nd: &NetdevSpec, params: &[Param], e: OptError) -> OptionsError {
    let col = e
        .key
        .as_deref()
        .and_then(|k| key_col(params, k))
        .unwrap_or(nd.column);
    cfg.error_at(
        nd.option.as_str(),
        col,
        format!("{} '{}': {}", nd.kind, nd.name, e.message),
    )
}

impl<M: GuestMemory> Network<M> {
    /// The configuration this network was built from.
    pub fn config(&self) -> &NetConfig {
        &self.cfg
    }

    /// QEMU's warnings for this topology.
    pub fn warnings(&self) -> &[Warning] {
        &self.cfg.warnings
    }

    /// Number of NICs.
    pub fn nic_count(&self) -> usize {
        self.nics.len()
    }

    /// NIC `i`, in [`NetConfig::nics`] order.
    pub fn nic(&self, i: usize) -> Option<&dyn NicDevice<M>> {
        self.nics.get(i).map(|n| &*n.device)
    }

    /// NIC `i`, for register access by the VMM.
    pub fn nic_mut(&mut self, i: usize) -> Option<&mut (dyn NicDevice<M> + 'static)> {
        self.nics.get_mut(i).map(|n| &mut *n.device)
    }

    /// The index of the NIC with client name `name` (`e1000.0`, or its id).
    pub fn nic_index(&self, name: &str) -> Option<usize> {
        self.nics.iter().position(|n| n.spec.name == name)
    }

    /// The hub with id `id`.
    pub fn hub(&self, id: u32) -> Option<&Hub> {
        self.hubs.iter().find(|h| h.id() == id)
    }

    /// Takes the network's one NIC out of it, for a caller that drives the NIC itself
    /// (the `vm-nic remote` server). Refused unless the network is exactly one NIC owning
    /// its backend: anything else (a hub, a second NIC, a backend with no NIC) needs the
    /// [`crate::runner::Runner`] to move frames and would silently stop working.
    pub fn into_only_nic(mut self) -> Result<Box<dyn NicDevice<M>>, String> {
        if self.nics.len() != 1 {
            return Err(format!(
                "exactly one NIC is needed here, the options describe {}",
                self.nics.len()
            ));
        }
        if !self.hubs.is_empty() || !self.links.is_empty() {
            return Err(format!(
                "{} must be connected straight to its -netdev (netdev=ID); hubs, vlan= and \
                 extra netdevs need `vm-nic run`",
                self.nics[0].spec.name
            ));
        }
        Ok(self.nics.pop().expect("one NIC").device)
    }

    /// The backend with client name `name` that no NIC owns (on a hub, or without
    /// peer); a NIC's own backend is reached through [`NicDevice::backend`].
    pub fn backend(&self, name: &str) -> Option<&dyn NetBackend> {
        self.links.iter().find_map(|l| {
            let j = l.netdev?;
            (self.cfg.netdevs[j].name == name).then_some(l.backend.as_deref()?)
        })
    }
}
