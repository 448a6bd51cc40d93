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
const OPT_DOMAIN_NAME: u8 = 15;
const OPT_TFTP_SERVER_NAME: u8 = 66;
const OPT_BOOTFILE_NAME: u8 = 67;
const OPT_DOMAIN_SEARCH: u8 = 119;
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
        let Ok(req) = DhcpRepr::parse(&pkt) else {
            log::debug!("user: DHCP message malformed (bad options or no message type)");
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
            DhcpMessageType::Discover => match self.pick(cfg, mac, now) {
                Some(i) => {
                    self.bind(i, mac, now);
                    Answer::Offer(Self::addr(cfg, i))
                }
                None => {
                    log::debug!("user: DHCP pool exhausted, no offer for {mac}");
                    return Verdict::Refused;
                }
            },
            DhcpMessageType::Request => {
                // A server id naming another server means the client chose someone else.
                if req.server_identifier.is_some_and(|s| s != cfg.host) {
                    return Verdict::Ignored;
                }
                let wanted = req.requested_ip.unwrap_or(req.client_ip);
                match Self::index(cfg, wanted) {
                    Some(i) if self.leases[i].is_none_or(|l| l.mac == mac || l.expires <= now) => {
                        self.bind(i, mac, now);
                        Answer::Ack(wanted)
                    }
                    _ => {
                        log::debug!("user: DHCP request for {wanted} from {mac} refused (NAK)");
                        Answer::Nak
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
            Vec::new()
        } else {
            self.extra_options(cfg)
        };
        let full = !nak;
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
            router: full.then_some(cfg.host),
            subnet_mask: full.then_some(cfg.netmask()),
            relay_agent_ip: req.relay_agent_ip,
            broadcast: req.broadcast,
            requested_ip: None,
            client_identifier: None,
            server_identifier: Some(cfg.host),
            parameter_request_list: None,
            dns_servers: full.then(|| std::iter::once(cfg.dns).collect()),
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

/// Encodes a domain search list as DNS names (RFC 3397, without compression). Labels
/// longer than 63 bytes and empty labels are skipped with a log line.
pub(crate) fn encode_search_list(domains: &[String]) -> Vec<u8> {
    let mut v = Vec::new();
    for d in domains {
        for label in d.trim_end_matches('.').split('.') {
            if label.is_empty() || label.len() > 63 {
                log::debug!("user: dnssearch label '{label}' in '{d}' skipped");
                continue;
            }
            v.push(label.len() as u8);
            v.extend_from_slice(label.as_bytes());
        }
        v.push(0);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_list_is_dns_encoded() {
        let v = encode_search_list(&["eng.apple.com".into(), "apple.com.".into()]);
        let mut want = vec![3];
        want.extend_from_slice(b"eng");
        want.push(5);
        want.extend_from_slice(b"apple");
        want.push(3);
        want.extend_from_slice(b"com");
        want.push(0);
        want.push(5);
        want.extend_from_slice(b"apple");
        want.push(3);
        want.extend_from_slice(b"com");
        want.push(0);
        assert_eq!(v, want);
    }
}
