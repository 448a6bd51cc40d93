//! The DHCPv4 server of the virtual gateway (RFC 2131/2132), libslirp's semantics: 16
//! addresses from `dhcpstart`, leases keyed by the client's MAC, one day lease time.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use smoltcp::wire::{
    DhcpMessageType, DhcpOption, DhcpPacket, DhcpRepr, EthernetAddress, DHCP_CLIENT_PORT,
    DHCP_SERVER_PORT,
};

use super::config::UserConfig;
use super::out::Output;
use super::Verdict;

/// Addresses in the pool (libslirp's NB_BOOTP_CLIENTS).
pub const POOL_SIZE: usize = 16;
/// Lease time handed out, in seconds (libslirp: one day).
pub const LEASE_SECS: u32 = 24 * 3600;
/// BOOTP's minimum message size; older clients insist on it.
const MIN_BOOTP_LEN: usize = 300;

const OPT_HOST_NAME: u8 = 12;
const OPT_REQUESTED_IP: u8 = 50;
const OPT_MESSAGE_TYPE: u8 = 53;
const OPT_SERVER_ID: u8 = 54;
const OPT_MESSAGE: u8 = 56;
const OPT_VENDOR_CLASS: u8 = 60;
const OPT_DOMAIN_NAME: u8 = 15;
const OPT_TFTP_SERVER_NAME: u8 = 66;
const OPT_BOOTFILE_NAME: u8 = 67;
const OPT_DOMAIN_SEARCH: u8 = 119;
/// libslirp's answer to a refused request (option 56 of the NAK).
const NAK_MESSAGE: &[u8] = b"requested address not available";
/// Option 60 for UEFI HTTP boot, sent when `bootfile` is an http:// URL (libslirp too).
const UEFI_HTTP_CLASS: &[u8] = b"HTTPClient";
/// RFC 1497's magic cookie opening the options.
const DHCP_COOKIE: [u8; 4] = [99, 130, 83, 99];
const SNAME: std::ops::Range<usize> = 44..108;
const FILE: std::ops::Range<usize> = 108..236;

#[derive(Clone, Copy, Debug)]
struct Lease {
    mac: EthernetAddress,
    expires: Instant,
}

/// Address pool and leases.
#[derive(Debug)]
pub(crate) struct DhcpServer {
    leases: [Option<Lease>; POOL_SIZE],
    /// Encoded option 119 (RFC 3397), precomputed from `dnssearch`.
    search: Vec<u8>,
}

enum Answer {
    Offer(Ipv4Addr),
    Ack(Ipv4Addr),
    Inform,
    Nak,
}

impl DhcpServer {
    pub fn new(cfg: &UserConfig) -> Self {
        DhcpServer {
            leases: [None; POOL_SIZE],
            search: encode_search_list(&cfg.dnssearch),
        }
    }

    fn addr(cfg: &UserConfig, i: usize) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(cfg.dhcp_start).wrapping_add(i as u32))
    }

    fn index(cfg: &UserConfig, a: Ipv4Addr) -> Option<usize> {
        let i = u32::from(a).wrapping_sub(u32::from(cfg.dhcp_start)) as usize;
        (i < POOL_SIZE && cfg.in_net(a) && a != cfg.broadcast()).then_some(i)
    }

    /// The address leased to `mac`, or a free (or expired) one.
    fn pick(&self, cfg: &UserConfig, mac: EthernetAddress, now: Instant) -> Option<usize> {
        let usable = |i: usize| {
            let a = Self::addr(cfg, i);
            cfg.in_net(a) && a != cfg.broadcast() && a != cfg.host && a != cfg.dns
        };
        if let Some(i) = (0..POOL_SIZE).find(|&i| self.leases[i].is_some_and(|l| l.mac == mac)) {
            return Some(i);
        }
        (0..POOL_SIZE)
            .filter(|&i| usable(i))
            .find(|&i| self.leases[i].is_none_or(|l| l.expires <= now))
    }

    /// Leases `slot` to `mac` and returns its address; `None` (logged) when there is no
    /// slot, the pool being exhausted.
    fn lease(
        &mut self,
        cfg: &UserConfig,
        slot: Option<usize>,
        mac: EthernetAddress,
        now: Instant,
    ) -> Option<Ipv4Addr> {
        let Some(i) = slot else {
            log::debug!("user: DHCP pool exhausted, nothing for {mac}");
            return None;
        };
        self.bind(i, mac, now);
        Some(Self::addr(cfg, i))
    }

    /// True when pool slot `i` is usable and free, expired or already `mac`'s.
    fn free_for(&self, cfg: &UserConfig, i: usize, mac: EthernetAddress, now: Instant) -> bool {
        let a = Self::addr(cfg, i);
        a != cfg.host
            && a != cfg.dns
            && self.leases[i].is_none_or(|l| l.mac == mac || l.expires <= now)
    }

    fn bind(&mut self, i: usize, mac: EthernetAddress, now: Instant) {
        self.leases[i] = Some(Lease {
            mac,
            expires: now + Duration::from_secs(u64::from(LEASE_SECS)),
        });
    }

    /// Handles a datagram to UDP port 67.
    pub fn input(
        &mut self,
        cfg: &UserConfig,
        out: &mut Output,
        payload: &[u8],
        now: Instant,
    ) -> Verdict {
        let Ok(pkt) = DhcpPacket::new_checked(payload) else {
            log::debug!("user: DHCP message truncated ({} bytes)", payload.len());
            return Verdict::Malformed;
        };
        let Some(req) = DhcpRepr::parse(&pkt)
            .ok()
            .or_else(|| lenient_request(payload, &pkt))
        else {
            log::debug!("user: DHCP message malformed (bad options or hardware type)");
            return Verdict::Malformed;
        };
        if pkt.opcode() != smoltcp::wire::DhcpOpCode::Request {
            return Verdict::Ignored;
        }
        let mac = req.client_hardware_address;
        if !mac.is_unicast() {
            log::debug!("user: DHCP from non-unicast chaddr {mac}");
            return Verdict::Malformed;
        }
        let answer = match req.message_type {
            DhcpMessageType::Discover => {
                // A client asking for an address it had gets it back when it is free.
                let asked = req
                    .requested_ip
                    .and_then(|a| Self::index(cfg, a))
                    .filter(|&i| self.free_for(cfg, i, mac, now));
                match self.lease(cfg, asked.or_else(|| self.pick(cfg, mac, now)), mac, now) {
                    Some(a) => Answer::Offer(a),
                    None => return Verdict::Refused,
                }
            }
            DhcpMessageType::Request => {
                // A server id naming another server means the client chose someone else.
                if req.server_identifier.is_some_and(|s| s != cfg.host) {
                    return Verdict::Ignored;
                }
                let wanted = req.requested_ip.unwrap_or(req.client_ip);
                if wanted.is_unspecified() {
                    // No address named (a BOOTP client, or one that skipped the
                    // DISCOVER): like libslirp, its lease or a new one.
                    match self.lease(cfg, self.pick(cfg, mac, now), mac, now) {
                        Some(a) => Answer::Ack(a),
                        None => return Verdict::Refused,
                    }
                } else {
                    match Self::index(cfg, wanted) {
                        Some(i) if self.free_for(cfg, i, mac, now) => {
                            self.bind(i, mac, now);
                            Answer::Ack(wanted)
                        }
                        _ => {
                            log::debug!("user: DHCP request for {wanted} from {mac} refused (NAK)");
                            Answer::Nak
                        }
                    }
                }
            }
            DhcpMessageType::Release => {
                if let Some(i) = Self::index(cfg, req.client_ip) {
                    if self.leases[i].is_some_and(|l| l.mac == mac) {
                        self.leases[i] = None;
                    }
                }
                return Verdict::Handled;
            }
            DhcpMessageType::Inform => Answer::Inform,
            _ => return Verdict::Ignored,
        };
        self.reply(cfg, out, &req, mac, answer);
        Verdict::Handled
    }

    /// The options beyond smoltcp's own: host and domain name, search list, TFTP server
    /// and boot file.
    fn extra_options<'a>(&'a self, cfg: &'a UserConfig) -> Vec<DhcpOption<'a>> {
        let mut extra = Vec::new();
        if let Some(h) = &cfg.hostname {
            extra.push(opt(OPT_HOST_NAME, h.as_bytes()));
        }
        if let Some(d) = &cfg.domainname {
            extra.push(opt(OPT_DOMAIN_NAME, d.as_bytes()));
        }
        // RFC 3396: a long option is split into consecutive instances.
        for chunk in self.search.chunks(255) {
            extra.push(opt(OPT_DOMAIN_SEARCH, chunk));
        }
        if let Some(n) = &cfg.tftp_server_name {
            extra.push(opt(OPT_TFTP_SERVER_NAME, n.as_bytes()));
        }
        if let Some(b) = &cfg.bootfile {
            extra.push(opt(OPT_BOOTFILE_NAME, b.as_bytes()));
            if b.starts_with("http://") {
                extra.push(opt(OPT_VENDOR_CLASS, UEFI_HTTP_CLASS));
            }
        }
        extra
    }

    fn reply(
        &self,
        cfg: &UserConfig,
        out: &mut Output,
        req: &DhcpRepr,
        mac: EthernetAddress,
        answer: Answer,
    ) {
        let (message_type, yiaddr) = match answer {
            Answer::Offer(a) => (DhcpMessageType::Offer, a),
            Answer::Ack(a) => (DhcpMessageType::Ack, a),
            Answer::Inform => (DhcpMessageType::Ack, Ipv4Addr::UNSPECIFIED),
            Answer::Nak => (DhcpMessageType::Nak, Ipv4Addr::UNSPECIFIED),
        };
        let nak = message_type == DhcpMessageType::Nak;
        let extra = if nak {
            vec![opt(OPT_MESSAGE, NAK_MESSAGE)]
        } else {
            self.extra_options(cfg)
        };
        let full = !nak;
        // libslirp: with restrict=on the guest is told of no router and no DNS server.
        let routed = full && !cfg.restrict;
        let repr = DhcpRepr {
            message_type,
            transaction_id: req.transaction_id,
            secs: 0,
            client_hardware_address: mac,
            client_ip: if matches!(answer, Answer::Inform) {
                req.client_ip
            } else {
                Ipv4Addr::UNSPECIFIED
            },
            your_ip: yiaddr,
            server_ip: if cfg.tftp.is_some() && full {
                cfg.host
            } else {
                Ipv4Addr::UNSPECIFIED
            },
            router: routed.then_some(cfg.host),
            subnet_mask: full.then_some(cfg.netmask()),
            relay_agent_ip: req.relay_agent_ip,
            broadcast: req.broadcast,
            requested_ip: None,
            client_identifier: None,
            server_identifier: Some(cfg.host),
            parameter_request_list: None,
            dns_servers: routed.then(|| std::iter::once(cfg.dns).collect()),
            max_size: None,
            lease_duration: (full && !yiaddr.is_unspecified()).then_some(LEASE_SECS),
            renew_duration: None,
            rebind_duration: None,
            additional_options: &extra,
        };
        let len = repr.buffer_len().max(MIN_BOOTP_LEN);
        let (dst, dst_mac) = reply_destination(req, mac, yiaddr, nak);
        let bootfile = if full { cfg.bootfile.as_deref() } else { None };
        let sname = if full {
            cfg.tftp_server_name.as_deref()
        } else {
            None
        };
        out.udp4_with(
            (cfg.host, DHCP_SERVER_PORT),
            (dst, DHCP_CLIENT_PORT),
            len,
            dst_mac,
            |buf| {
                let mut pkt = DhcpPacket::new_unchecked(&mut *buf);
                if repr.emit(&mut pkt).is_err() {
                    log::debug!("user: DHCP reply did not fit (options too long)");
                }
                copy_cstr(&mut buf[FILE], bootfile);
                copy_cstr(&mut buf[SNAME], sname);
            },
        );
    }
}

/// RFC 2131 4.1: to ciaddr when the client has one; broadcast when it asked or for a
/// NAK; otherwise unicast to the offered address at the client's MAC.
fn reply_destination(
    req: &DhcpRepr,
    mac: EthernetAddress,
    yiaddr: Ipv4Addr,
    nak: bool,
) -> (Ipv4Addr, Option<EthernetAddress>) {
    if !req.client_ip.is_unspecified() && !nak {
        (req.client_ip, Some(mac))
    } else if req.broadcast || nak || yiaddr.is_unspecified() {
        (Ipv4Addr::BROADCAST, None)
    } else {
        (yiaddr, Some(mac))
    }
}

fn opt(kind: u8, data: &[u8]) -> DhcpOption<'_> {
    let data = &data[..data.len().min(255)];
    DhcpOption { kind, data }
}

/// Writes `s` NUL-terminated into a fixed BOOTP field, truncating to fit.
fn copy_cstr(field: &mut [u8], s: Option<&str>) {
    if let Some(s) = s {
        let n = s.len().min(field.len().saturating_sub(1));
        field[..n].copy_from_slice(&s.as_bytes()[..n]);
    }
}

/// The request as libslirp reads it, for what smoltcp's parser refuses: a BOOTP request
/// (RFC 951: no DHCP message type, or no options at all), answered as a DHCP request
/// naming no address; or a DHCP message with an option smoltcp rejects (a 7-byte client
/// identifier of a type other than Ethernet), of which only the message type, requested
/// address and server identifier are used. `None` when it is not an Ethernet BOOTREQUEST.
fn lenient_request<'a>(raw: &[u8], pkt: &'a DhcpPacket<&'a [u8]>) -> Option<DhcpRepr<'a>> {
    // htype 1 (Ethernet), hlen 6.
    if pkt.opcode() != smoltcp::wire::DhcpOpCode::Request || raw.get(1..3) != Some(&[1, 6][..]) {
        return None;
    }
    let mut message_type = DhcpMessageType::Request;
    let (mut requested_ip, mut server_identifier) = (None, None);
    if raw.get(236..240) == Some(&DHCP_COOKIE[..]) {
        for o in pkt.options() {
            let addr = <[u8; 4]>::try_from(o.data).ok().map(Ipv4Addr::from);
            match (o.kind, o.data) {
                (OPT_MESSAGE_TYPE, &[t]) => message_type = DhcpMessageType::from(t),
                (OPT_REQUESTED_IP, _) => requested_ip = addr,
                (OPT_SERVER_ID, _) => server_identifier = addr,
                _ => {}
            }
        }
    }
    Some(DhcpRepr {
        message_type,
        transaction_id: pkt.transaction_id(),
        secs: pkt.secs(),
        client_hardware_address: pkt.client_hardware_address(),
        client_ip: pkt.client_ip(),
        your_ip: Ipv4Addr::UNSPECIFIED,
        server_ip: Ipv4Addr::UNSPECIFIED,
        router: None,
        subnet_mask: None,
        relay_agent_ip: pkt.relay_agent_ip(),
        broadcast: pkt.flags().contains(smoltcp::wire::DhcpFlags::BROADCAST),
        requested_ip,
        client_identifier: None,
        server_identifier,
        parameter_request_list: None,
        dns_servers: None,
        max_size: None,
        lease_duration: None,
        renew_duration: None,
        rebind_duration: None,
        additional_options: &[],
    })
}

/// The largest BOOTP message that goes out in one 1500-byte Ethernet frame (IPv4 and UDP
/// headers taken off); a longer reply would reach the guest as an oversized frame.
const MAX_REPLY_LEN: usize = 1500 - 20 - 8;

/// An upper bound of the length of an OFFER/ACK under `cfg`: the 240 bytes of BOOTP
/// header and cookie, the fixed options (message type, server id, netmask, router, DNS,
/// lease: 33 bytes and the end mark), and each configured string and the encoded
/// search list with their option headers.
pub(crate) fn reply_len_bound(cfg: &UserConfig) -> usize {
    let search = encode_search_list(&cfg.dnssearch).len();
    let strings: usize = [
        &cfg.hostname,
        &cfg.domainname,
        &cfg.tftp_server_name,
        &cfg.bootfile,
    ]
    .iter()
    .filter_map(|v| v.as_ref().map(|s| s.len() + 2))
    .sum();
    let vendor = UEFI_HTTP_CLASS.len() + 2;
    240 + 34 + strings + vendor + search + 2 * search.div_ceil(255)
}

/// Checks the DHCP reply `cfg` calls for fits one Ethernet frame (the search list is the
/// only part without a bound of its own).
pub(crate) fn check_reply_fits(cfg: &UserConfig) -> Result<(), String> {
    let len = reply_len_bound(cfg);
    if len > MAX_REPLY_LEN {
        return Err(format!(
            "the DHCP reply would take {len} bytes, more than one 1500-byte frame carries \
             ({MAX_REPLY_LEN}); shorten the search list"
        ));
    }
    Ok(())
}

/// Checks one `dnssearch=` domain: labels of 1..=63 bytes, a trailing dot allowed, at
/// most 253 bytes (RFC 1035 2.3.4).
pub(crate) fn check_domain(d: &str) -> Result<(), String> {
    let name = d.strip_suffix('.').unwrap_or(d);
    if name.is_empty() {
        return Err("empty domain name".into());
    }
    if name.len() > 253 {
        return Err(format!(
            "{} bytes; a domain name has at most 253",
            name.len()
        ));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("empty label (two dots in a row or a leading dot)".into());
        }
        if label.len() > 63 {
            return Err(format!("label '{label}' is longer than 63 bytes"));
        }
    }
    Ok(())
}

/// Encodes a domain search list as DNS names (RFC 3397) with RFC 1035 4.1.4 compression,
/// as libslirp does: a name whose tail (whole labels) was already written ends in a
/// pointer to it, the offset counted from the start of the option data (which a long
/// list continues over several option 119 instances, RFC 3396). Invalid names (which
/// [`check_domain`] refuses at option time) are skipped.
pub(crate) fn encode_search_list(domains: &[String]) -> Vec<u8> {
    encode_domains(domains, true)
}

/// The search list as DNS names without compression, as DHCPv6's domain list (RFC 8415
/// 10: names in DHCPv6 are never compressed).
pub(crate) fn encode_domains_plain(domains: &[String]) -> Vec<u8> {
    encode_domains(domains, false)
}

fn encode_domains(domains: &[String], compress: bool) -> Vec<u8> {
    let mut v: Vec<u8> = Vec::new();
    // Each suffix written so far, as lowercase labels, and where it starts.
    let mut written: Vec<(Vec<String>, usize)> = Vec::new();
    for d in domains {
        if let Err(e) = check_domain(d) {
            log::debug!("user: dnssearch '{d}' skipped: {e}");
            continue;
        }
        let labels: Vec<&str> = d.trim_end_matches('.').split('.').collect();
        let lower: Vec<String> = labels.iter().map(|l| l.to_ascii_lowercase()).collect();
        let mut ended = false;
        for i in 0..labels.len() {
            if let Some(&(_, at)) = written.iter().find(|(s, _)| s[..] == lower[i..]) {
                v.extend_from_slice(&(0xc000 | at as u16).to_be_bytes());
                ended = true;
                break;
            }
            // A pointer holds 14 bits of offset; later names can point only below.
            if compress && v.len() < 0x3fff {
                written.push((lower[i..].to_vec(), v.len()));
            }
            v.push(labels[i].len() as u8);
            v.extend_from_slice(labels[i].as_bytes());
        }
        if !ended {
            v.push(0);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_list_is_dns_encoded_with_suffix_pointers() {
        // The second name is wholly a suffix of the first: one pointer to offset 4.
        let v = encode_search_list(&["eng.apple.com".into(), "apple.com.".into()]);
        let mut want = b"\x03eng\x05apple\x03com\x00".to_vec();
        want.extend_from_slice(&[0xc0, 0x04]);
        assert_eq!(v, want);
        // No shared suffix: plain names; a shared "com" (case-insensitive) is pointed to,
        // a repeated name is a lone pointer.
        let v = encode_search_list(&[
            "a.org".into(),
            "b.COM".into(),
            "c.com".into(),
            "a.org".into(),
        ]);
        let mut want = b"\x01a\x03org\x00\x01b\x03COM\x00\x01c".to_vec();
        want.extend_from_slice(&[0xc0, 9, 0xc0, 0]);
        assert_eq!(v, want);
        // Invalid names (refused at option time) are skipped whole, never half-encoded.
        assert_eq!(
            encode_search_list(&["a..b".into(), "x".into()]),
            b"\x01x\x00".to_vec()
        );
    }

    #[test]
    fn domains_are_checked() {
        assert!(check_domain("example.com.").is_ok());
        for bad in [
            "",
            ".",
            "a..b",
            ".a",
            &"x".repeat(64),
            &["y"; 130].join("."),
        ] {
            assert!(check_domain(bad).is_err(), "{bad}");
        }
    }
}
