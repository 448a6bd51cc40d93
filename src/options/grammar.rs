//! The grammar of each option: which keys it owns, which types it takes, what is passed
//! through to backends and models.

use vm_nic_backends::MacAddr;

use super::lexer::{split_params, Param, Word};
use super::{clamp, model_help, NetdevSpec, NicPeer, NicSpec, OptionKind, OptionsError};

/// Types `-netdev` knows (QEMU's NetClientDriver names, less `nic` and `dump`).
pub(crate) const NETDEV_TYPES: &[&str] = &[
    "user",
    "tap",
    "bridge",
    "socket",
    "stream",
    "dgram",
    "vde",
    "l2tpv3",
    "netmap",
    "vhost-user",
    "vhost-vdpa",
    "af-xdp",
    "hubport",
];
/// Types `-net` knows.
const NET_TYPES: &[&str] = &[
    "nic", "none", "user", "tap", "bridge", "socket", "stream", "dgram", "vde", "dump", "l2tpv3",
    "netmap",
];
const NET_NIC_KEYS: &[&str] = &[
    "vlan", "netdev", "macaddr", "model", "name", "addr", "vectors", "id",
];
const HUBPORT_KEYS: &[&str] = &["id", "hubid", "netdev"];
/// `-device` properties the NIC plumbing owns; every other key is a model property.
const DEVICE_GENERIC: &[&str] = &[
    "netdev",
    "mac",
    "id",
    "addr",
    "bus",
    "romfile",
    "rombar",
    "bootindex",
    "multifunction",
];

/// Who a NIC is attached to, before ids are resolved.
#[derive(Clone, Debug)]
pub(crate) enum RawAttach {
    Hub(u32),
    Netdev(String, usize),
    None,
}

#[derive(Clone, Debug)]
pub(crate) struct RawNetdev {
    pub spec: NetdevSpec,
    /// The id or name given, with its column.
    pub id: Option<(String, usize)>,
    /// `hubport`'s `netdev=`.
    pub peer_ref: Option<(String, usize)>,
}

#[derive(Clone, Debug)]
pub(crate) struct RawNic {
    pub spec: NicSpec,
    pub attach: RawAttach,
    pub id: Option<(String, usize)>,
}

#[derive(Clone, Debug)]
pub(crate) struct RawFilter {
    pub column: usize,
    pub id: (String, usize),
    pub netdev: (String, usize),
    pub opts: Vec<Param>,
}

#[derive(Clone, Debug)]
pub(crate) enum NetEntry {
    Nic(RawNic),
    Backend(RawNetdev),
}

/// Every networking option, grouped the way QEMU processes them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Parsed {
    pub netdevs: Vec<RawNetdev>,
    pub nic_opts: Vec<(RawNetdev, RawNic)>,
    pub net: Vec<NetEntry>,
    pub devices: Vec<RawNic>,
    pub filters: Vec<RawFilter>,
    pub help: Option<String>,
    pub none: bool,
    /// `-redir` rules, already turned into `hostfwd` parameters (columns of the
    /// `-redir` argument), for the first user-mode network.
    pub redirs: Vec<Param>,
}

impl Parsed {
    /// No networking option at all: QEMU's default applies.
    pub fn is_empty_network(&self) -> bool {
        !self.none
            && self.netdevs.is_empty()
            && self.nic_opts.is_empty()
            && self.net.is_empty()
            && self.devices.is_empty()
            && self.filters.is_empty()
    }
}

/// Builds errors located in one option.
pub(crate) struct Ctx<'a> {
    pub line: &'a str,
    pub option: String,
}

impl Ctx<'_> {
    pub fn err(&self, col: usize, message: impl Into<String>) -> OptionsError {
        OptionsError {
            option: self.option.clone(),
            column: clamp(col, self.line),
            message: message.into(),
            line: self.line.to_string(),
        }
    }
}

const OPTIONS: &str = "-net, -netdev, -device, -nic, -object and -redir";

/// Parses every word of the command line.
pub(crate) fn parse(words: &[Word], line: &str) -> Result<Parsed, OptionsError> {
    let mut out = Parsed::default();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        let text = w.as_string();
        let name = text.strip_prefix('-').unwrap_or(&text);
        let name = name
            .strip_prefix('-')
            .filter(|_| text.starts_with("--"))
            .unwrap_or(name);
        let ctx = Ctx {
            line,
            option: format!("-{name}"),
        };
        if !text.starts_with('-') || text == "-" {
            return Err(stray(words, i, line));
        }
        if name == "redir" {
            let Some(arg) = words.get(i + 1) else {
                return Err(ctx.err(w.start, "-redir needs an argument"));
            };
            let value = redir_to_hostfwd(&arg.as_string()).map_err(|m| ctx.err(arg.start, m))?;
            out.redirs.push(Param {
                key: "hostfwd".into(),
                value,
                key_col: arg.start,
                value_col: arg.start,
            });
            i += 2;
            continue;
        }
        let kind = match name {
            "net" => OptionKind::Net,
            "netdev" => OptionKind::Netdev,
            "device" => OptionKind::Device,
            "nic" => OptionKind::Nic,
            "object" => OptionKind::Object,
            _ => {
                return Err(ctx.err(
                    w.start,
                    format!("'{text}' is not a networking option; vm-nic understands {OPTIONS}"),
                ))
            }
        };
        let Some(arg) = words.get(i + 1) else {
            return Err(ctx.err(w.start, format!("{} needs an argument", kind.as_str())));
        };
        let implied = match kind {
            OptionKind::Device => "driver",
            OptionKind::Object => "qom-type",
            _ => "type",
        };
        let params = split_params(arg, implied).map_err(|(c, m)| ctx.err(c, m))?;
        let Some(first) = params
            .first()
            .filter(|p| p.key == implied && !p.value.is_empty())
        else {
            return Err(ctx.err(
                arg.start,
                format!("{} needs a {implied} first", kind.as_str()),
            ));
        };
        if let Some(ws) = first.value.chars().position(char::is_whitespace) {
            return Err(ctx.err(
                first.value_col + ws,
                format!(
                    "whitespace is not allowed in the {implied} '{}'",
                    first.value.trim()
                ),
            ));
        }
        let column = arg.start;
        match kind {
            OptionKind::Net => parse_net(&ctx, column, params, &mut out)?,
            OptionKind::Netdev => {
                let nd = parse_netdev(&ctx, column, params)?;
                out.netdevs.push(nd);
            }
            OptionKind::Device => {
                if is_help(&first.value) {
                    out.help = Some(model_help());
                } else {
                    out.devices.push(parse_device(&ctx, column, params)?);
                }
            }
            OptionKind::Nic => parse_nic(&ctx, column, params, &mut out)?,
            OptionKind::Object => out.filters.push(parse_object(&ctx, column, params)?),
        }
        i += 2;
    }
    Ok(out)
}

/// QEMU's old `-redir [tcp|udp]:hostport:[guestaddr]:guestport` (removed in QEMU 3.1),
/// as the equivalent `hostfwd=` value `PROTO::hostport-guestaddr:guestport` (the host
/// side on every address, as `-redir` had it).
fn redir_to_hostfwd(v: &str) -> Result<String, String> {
    let bad = |why: &str| {
        format!("-redir '{v}': {why}; expected [tcp|udp]:hostport:[guestaddr]:guestport")
    };
    let f: Vec<&str> = v.split(':').collect();
    let (proto, rest) = match f.as_slice() {
        [p @ ("tcp" | "udp"), rest @ ..] => (*p, rest),
        rest => ("tcp", rest),
    };
    let [hport, gaddr, gport] = rest else {
        return Err(bad("wrong number of fields"));
    };
    hport
        .parse::<u16>()
        .map_err(|_| bad(&format!("bad host port '{hport}'")))?;
    if !gaddr.is_empty() && gaddr.parse::<std::net::Ipv4Addr>().is_err() {
        return Err(bad(&format!("bad guest address '{gaddr}'")));
    }
    gport
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| bad(&format!("bad guest port '{gport}'")))?;
    Ok(format!("{proto}::{hport}-{gaddr}:{gport}"))
}

/// A word that is not an option: usually a parameter cut off by a space.
fn stray(words: &[Word], i: usize, line: &str) -> OptionsError {
    let w = &words[i];
    let text = w.as_string();
    let prev = i
        .checked_sub(1)
        .map(|p| words[p].as_string())
        .unwrap_or_default();
    let prev_is_arg = i >= 2 && words[i - 2].as_string().starts_with('-');
    let split = prev_is_arg
        && (prev.ends_with(',')
            || prev.ends_with('=')
            || text.starts_with(',')
            || text.contains('='));
    let (option, column, message) = if split {
        (
            words[i - 2].as_string(),
            w.gap.unwrap_or(w.start),
            format!(
                "whitespace is not allowed between parameters: '{prev}' and '{text}' must be \
                 one word, e.g. '{}{}'",
                prev, text
            ),
        )
    } else {
        (
            text.clone(),
            w.start,
            format!("unexpected argument '{text}': vm-nic understands {OPTIONS}"),
        )
    };
    OptionsError {
        option,
        column: clamp(column, line),
        message,
        line: line.to_string(),
    }
}

fn is_help(v: &str) -> bool {
    v == "help" || v == "?"
}

fn check_valid(ctx: &Ctx, what: &str, p: &Param, valid: &[&str]) -> Result<(), OptionsError> {
    if valid.contains(&p.key.as_str()) {
        return Ok(());
    }
    Err(ctx.err(
        p.key_col,
        format!(
            "'{}' is not a valid parameter for '{what}'; valid: {}",
            p.key,
            valid.join(", ")
        ),
    ))
}

fn parse_u32(ctx: &Ctx, p: &Param) -> Result<u32, OptionsError> {
    p.value.parse::<u32>().map_err(|_| {
        ctx.err(
            p.value_col,
            format!(
                "{}={} is not a number: expected a non-negative integer",
                p.key, p.value
            ),
        )
    })
}

fn parse_mac(ctx: &Ctx, p: &Param) -> Result<MacAddr, OptionsError> {
    let mac: MacAddr = p
        .value
        .parse()
        .map_err(|e: vm_nic_backends::mac::ParseMacError| ctx.err(p.value_col, e.to_string()))?;
    if mac.is_multicast() {
        return Err(ctx.err(
            p.value_col,
            format!(
                "{} is a multicast address; a NIC needs a unicast one",
                p.value
            ),
        ));
    }
    Ok(mac)
}

fn type_error(ctx: &Ctx, p: &Param, valid: &[&str]) -> OptionsError {
    ctx.err(
        p.value_col,
        format!(
            "'{}' is not a valid {} type; valid: {}",
            p.value,
            ctx.option,
            valid.join(", ")
        ),
    )
}

fn new_nic(option: OptionKind, column: usize, model: &str, model_column: usize) -> NicSpec {
    NicSpec {
        option,
        column,
        model: model.to_string(),
        model_column,
        name: String::new(),
        mac: MacAddr::default(),
        mac_given: false,
        peer: NicPeer::None,
        addr: None,
        bus: None,
        vectors: None,
        props: Vec::new(),
    }
}

fn new_netdev(option: OptionKind, column: usize, kind: &str) -> NetdevSpec {
    NetdevSpec {
        option,
        column,
        kind: kind.to_string(),
        name: String::new(),
        hub: None,
        hubport_peer: None,
        opts: Vec::new(),
    }
}

fn parse_net(
    ctx: &Ctx,
    column: usize,
    params: Vec<Param>,
    out: &mut Parsed,
) -> Result<(), OptionsError> {
    let ty = &params[0];
    if !NET_TYPES.contains(&ty.value.as_str()) {
        return Err(type_error(ctx, ty, NET_TYPES));
    }
    let mut vlan = 0;
    match ty.value.as_str() {
        "none" => {
            if let Some(p) = params.get(1) {
                return Err(ctx.err(p.key_col, "-net none takes no parameters"));
            }
            out.none = true;
        }
        "nic" => {
            let mut nic = new_nic(OptionKind::Net, column, super::DEFAULT_MODEL, ty.value_col);
            let mut id = None;
            let mut netdev = None;
            for p in &params[1..] {
                check_valid(ctx, "nic", p, NET_NIC_KEYS)?;
                match p.key.as_str() {
                    "vlan" => vlan = parse_u32(ctx, p)?,
                    "netdev" => netdev = Some((p.value.clone(), p.value_col)),
                    "macaddr" => {
                        nic.mac = parse_mac(ctx, p)?;
                        nic.mac_given = true;
                    }
                    "model" if is_help(&p.value) => out.help = Some(model_help()),
                    "model" => {
                        nic.model = p.value.clone();
                        nic.model_column = p.value_col;
                    }
                    "name" | "id" => id = Some((p.value.clone(), p.value_col)),
                    "addr" => nic.addr = Some(p.value.clone()),
                    _ => nic.vectors = Some(p.value.clone()),
                }
            }
            if let Some(p) = netdev
                .as_ref()
                .and_then(|_| params.iter().find(|p| p.key == "vlan"))
            {
                return Err(ctx.err(p.key_col, "vlan= and netdev= are mutually exclusive"));
            }
            let attach = match netdev {
                Some((n, c)) => RawAttach::Netdev(n, c),
                None => RawAttach::Hub(vlan),
            };
            out.net.push(NetEntry::Nic(RawNic {
                spec: nic,
                attach,
                id,
            }));
        }
        kind => {
            let mut nd = new_netdev(OptionKind::Net, column, kind);
            let mut id = None;
            for p in &params[1..] {
                match p.key.as_str() {
                    "vlan" => vlan = parse_u32(ctx, p)?,
                    "name" | "id" => id = Some((p.value.clone(), p.value_col)),
                    _ => nd.opts.push(p.clone()),
                }
            }
            nd.hub = Some(vlan);
            out.net.push(NetEntry::Backend(RawNetdev {
                spec: nd,
                id,
                peer_ref: None,
            }));
        }
    }
    Ok(())
}

fn parse_netdev(ctx: &Ctx, column: usize, params: Vec<Param>) -> Result<RawNetdev, OptionsError> {
    let ty = &params[0];
    if ty.value == "dump" {
        return Err(ctx.err(
            ty.value_col,
            "dump is only valid with -net; to record a netdev use -object \
             filter-dump,id=ID,netdev=NETDEV,file=FILE",
        ));
    }
    if !NETDEV_TYPES.contains(&ty.value.as_str()) {
        return Err(type_error(ctx, ty, NETDEV_TYPES));
    }
    let mut nd = new_netdev(OptionKind::Netdev, column, &ty.value);
    let mut id = None;
    let mut peer_ref = None;
    let hubport = ty.value == "hubport";
    for p in &params[1..] {
        if hubport {
            check_valid(ctx, "hubport", p, HUBPORT_KEYS)?;
        }
        match p.key.as_str() {
            "id" => id = Some((p.value.clone(), p.value_col)),
            "vlan" | "name" => {
                return Err(ctx.err(
                    p.key_col,
                    format!(
                        "'{}' is not valid with -netdev (it belongs to the legacy -net); \
                         use id= and -netdev hubport,id=ID,hubid=N for hubs",
                        p.key
                    ),
                ))
            }
            "hubid" if hubport => nd.hub = Some(parse_u32(ctx, p)?),
            "netdev" if hubport => peer_ref = Some((p.value.clone(), p.value_col)),
            _ => nd.opts.push(p.clone()),
        }
    }
    if id.as_ref().is_none_or(|(v, _)| v.is_empty()) {
        return Err(ctx.err(
            column,
            format!("-netdev {}: parameter 'id' is missing", ty.value),
        ));
    }
    if hubport && nd.hub.is_none() {
        return Err(ctx.err(column, "-netdev hubport: parameter 'hubid' is missing"));
    }
    Ok(RawNetdev {
        spec: nd,
        id,
        peer_ref,
    })
}

fn parse_device(ctx: &Ctx, column: usize, params: Vec<Param>) -> Result<RawNic, OptionsError> {
    let drv = &params[0];
    let mut nic = new_nic(OptionKind::Device, column, &drv.value, drv.value_col);
    let mut id = None;
    let mut attach = RawAttach::None;
    for p in &params[1..] {
        match p.key.as_str() {
            "netdev" => attach = RawAttach::Netdev(p.value.clone(), p.value_col),
            "mac" => {
                nic.mac = parse_mac(ctx, p)?;
                nic.mac_given = true;
            }
            "id" => id = Some((p.value.clone(), p.value_col)),
            "addr" => nic.addr = Some(p.value.clone()),
            "bus" => nic.bus = Some(p.value.clone()),
            k if DEVICE_GENERIC.contains(&k) => {}
            _ => nic.props.push(p.clone()),
        }
    }
    Ok(RawNic {
        spec: nic,
        attach,
        id,
    })
}

fn parse_nic(
    ctx: &Ctx,
    column: usize,
    params: Vec<Param>,
    out: &mut Parsed,
) -> Result<(), OptionsError> {
    let ty = &params[0];
    if ty.value == "none" {
        out.none = true;
        return match params.get(1) {
            Some(p) => Err(ctx.err(p.key_col, "-nic none takes no parameters")),
            None => Ok(()),
        };
    }
    if ty.value == "hubport" || !NETDEV_TYPES.contains(&ty.value.as_str()) {
        let valid: Vec<&str> = NETDEV_TYPES
            .iter()
            .copied()
            .filter(|t| *t != "hubport")
            .chain(["none"])
            .collect();
        return Err(type_error(ctx, ty, &valid));
    }
    let mut nd = new_netdev(OptionKind::Nic, column, &ty.value);
    let mut nic = new_nic(OptionKind::Nic, column, super::DEFAULT_MODEL, ty.value_col);
    let mut id = None;
    for p in &params[1..] {
        match p.key.as_str() {
            "model" if is_help(&p.value) => out.help = Some(model_help()),
            "model" => {
                nic.model = p.value.clone();
                nic.model_column = p.value_col;
            }
            "mac" => {
                nic.mac = parse_mac(ctx, p)?;
                nic.mac_given = true;
            }
            "id" => id = Some((p.value.clone(), p.value_col)),
            "vlan" | "name" => {
                return Err(ctx.err(p.key_col, format!("'{}' is not valid with -nic", p.key)))
            }
            _ => nd.opts.push(p.clone()),
        }
    }
    let index = out.nic_opts.len();
    let id = id.unwrap_or_else(|| (format!("__org.qemu.nic{index}"), column));
    let raw_nic = RawNic {
        spec: nic,
        attach: RawAttach::Netdev(id.0.clone(), id.1),
        id: None,
    };
    let raw_nd = RawNetdev {
        spec: nd,
        id: Some(id),
        peer_ref: None,
    };
    out.nic_opts.push((raw_nd, raw_nic));
    Ok(())
}

fn parse_object(ctx: &Ctx, column: usize, params: Vec<Param>) -> Result<RawFilter, OptionsError> {
    let ty = &params[0];
    if ty.value != "filter-dump" {
        return Err(ctx.err(
            ty.value_col,
            format!(
                "object type '{}' is not supported; vm-nic supports -object filter-dump",
                ty.value
            ),
        ));
    }
    let mut id = None;
    let mut netdev = None;
    let mut opts = Vec::new();
    for p in &params[1..] {
        match p.key.as_str() {
            "id" => id = Some((p.value.clone(), p.value_col)),
            _ => {
                if p.key == "netdev" {
                    netdev = Some((p.value.clone(), p.value_col));
                }
                opts.push(p.clone());
            }
        }
    }
    let Some(id) = id.filter(|(v, _)| !v.is_empty()) else {
        return Err(ctx.err(column, "-object filter-dump: parameter 'id' is missing"));
    };
    let Some(netdev) = netdev else {
        return Err(ctx.err(column, "-object filter-dump: parameter 'netdev' is missing"));
    };
    Ok(RawFilter {
        column,
        id,
        netdev,
        opts,
    })
}
