//! Fuzzing the [`Hub`] against a reference model of QEMU's hub semantics: a frame entering
//! one port is queued on every other live port and never on its source; each inbox is a
//! FIFO bounded in frames and bytes; a full inbox drops for that port only.

use std::collections::VecDeque;

use arbitrary::{Arbitrary, Unstructured};
use vm_nic_backends::{FrameQueue, Hub, HubPort, NetBackend};

/// Most ports a hub run creates.
pub const MAX_PORTS: usize = 8;
/// Most ops one hub run executes.
pub const MAX_HUB_OPS: usize = 1024;
/// Size of the buffer a port receives into: longer frames are dropped on receive.
pub const RECV_BUF: usize = 2048;

/// One action on a hub.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum HubOp {
    /// Attach a port (up to [`MAX_PORTS`]).
    AddPort,
    /// Detach port `n` (modulo the number of ports).
    DropPort(u8),
    /// Port `port` sends `len` bytes of `fill` (its first bytes tag the source and a
    /// sequence number).
    Send {
        /// Source port selector.
        port: u8,
        /// Frame length.
        len: u16,
        /// Fill byte.
        fill: u8,
    },
    /// Port `port` takes one frame into a [`RECV_BUF`]-byte buffer.
    Recv(u8),
}

struct ModelPort {
    live: bool,
    inbox: VecDeque<Vec<u8>>,
    bytes: usize,
}

/// Runs `ops` on a real hub and the reference model side by side; returns a description
/// of the first difference.
pub fn check_hub(ops: &[HubOp]) -> Result<(), String> {
    let hub = Hub::new(0);
    let mut ports: Vec<Option<HubPort>> = Vec::new();
    let mut model: Vec<ModelPort> = Vec::new();
    let mut seq = 0u32;
    let mut buf = vec![0u8; RECV_BUF];
    for (i, op) in ops.iter().take(MAX_HUB_OPS).enumerate() {
        match *op {
            HubOp::AddPort if ports.len() < MAX_PORTS => {
                ports.push(Some(hub.add_port()));
                model.push(ModelPort {
                    live: true,
                    inbox: VecDeque::new(),
                    bytes: 0,
                });
            }
            HubOp::AddPort => {}
            HubOp::DropPort(n) if !ports.is_empty() => {
                let n = n as usize % ports.len();
                ports[n] = None;
                model[n].live = false;
                model[n].inbox.clear();
            }
            HubOp::Send { port, len, fill } if !ports.is_empty() => {
                let src = port as usize % ports.len();
                let Some(p) = ports[src].as_mut() else {
                    continue;
                };
                seq += 1;
                let mut frame = vec![fill; (len as usize).max(8)];
                frame[..4].copy_from_slice(&(src as u32).to_be_bytes());
                frame[4..8].copy_from_slice(&seq.to_be_bytes());
                p.send(&frame)
                    .map_err(|e| format!("op {i}: send failed: {e}"))?;
                for (n, m) in model.iter_mut().enumerate() {
                    let fits = m.inbox.len() < FrameQueue::DEFAULT_MAX_FRAMES
                        && m.bytes + frame.len() <= FrameQueue::DEFAULT_MAX_BYTES;
                    if n != src && m.live && fits {
                        m.bytes += frame.len();
                        m.inbox.push_back(frame.clone());
                    }
                }
            }
            HubOp::Recv(port) if !ports.is_empty() => {
                let n = port as usize % ports.len();
                let Some(p) = ports[n].as_mut() else {
                    continue;
                };
                let got = p
                    .recv(&mut buf)
                    .map_err(|e| format!("op {i}: recv failed: {e}"))?;
                let want = loop {
                    match model[n].inbox.pop_front() {
                        Some(f) => {
                            model[n].bytes -= f.len();
                            if f.len() <= RECV_BUF {
                                break Some(f);
                            }
                        }
                        None => break None,
                    }
                };
                if got.is_some() {
                    let src = u32::from_be_bytes(buf[..4].try_into().unwrap_or_default());
                    if src as usize == n {
                        return Err(format!("op {i}: port {n} received its own frame"));
                    }
                }
                if got.map(|len| &buf[..len]) != want.as_deref() {
                    return Err(format!(
                        "op {i}: port {n} received {:?} bytes, expected {:?}",
                        got,
                        want.map(|f| f.len())
                    ));
                }
            }
            _ => {}
        }
    }
    for (n, p) in ports.iter().enumerate() {
        if let Some(p) = p {
            if p.pending() != model[n].inbox.len() {
                return Err(format!(
                    "port {n}: {} frames pending, expected {}",
                    p.pending(),
                    model[n].inbox.len()
                ));
            }
        }
    }
    Ok(())
}

/// The hub fuzz target: decode ops from `data` and panic on any difference from the
/// reference model.
pub fn fuzz_hub(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut ops = Vec::new();
    while !u.is_empty() && ops.len() < MAX_HUB_OPS {
        match u.arbitrary::<HubOp>() {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
    }
    if let Err(e) = check_hub(&ops) {
        panic!("hub differs from its reference model: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_model_agrees_on_a_simple_run() {
        let ops = [
            HubOp::AddPort,
            HubOp::AddPort,
            HubOp::AddPort,
            HubOp::Send {
                port: 0,
                len: 60,
                fill: 1,
            },
            HubOp::Recv(0),
            HubOp::Recv(1),
            HubOp::DropPort(2),
            HubOp::Send {
                port: 1,
                len: 3000,
                fill: 2,
            },
            HubOp::Recv(0),
            HubOp::Recv(2),
        ];
        check_hub(&ops).unwrap();
    }
}
