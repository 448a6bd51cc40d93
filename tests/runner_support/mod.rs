//! A scripted NIC for runner and hub tests: it transmits the frames the test queued when
//! the "guest" rings its doorbell (`bar_write(0, 0, ..)`), takes frames while it has
//! room, refuses with `NoBuffer` otherwise, and runs one timer.

#![allow(dead_code)]

use std::sync::{Arc, Mutex, MutexGuard};

use vm_memory::GuestMemoryMmap;
use vm_nic::backends::{MacAddr, NetBackend};
use vm_nic::devices::models::ModelError;
use vm_nic::devices::{Clock, NicConfig, NicDevice, PciConfig, RxOutcome};
use vm_nic::options::NicSpec;

pub type Mem = GuestMemoryMmap;

#[derive(Debug, Default)]
pub struct State {
    pub received: Vec<Vec<u8>>,
    pub to_send: Vec<Vec<u8>>,
    /// Frames it can still take; 0 means `NoBuffer`.
    pub room: usize,
    /// What `can_receive` answers.
    pub enabled: bool,
    pub links: Vec<bool>,
    pub deadline: Option<u64>,
    pub timers_fired: usize,
    pub model: String,
}

/// The test's side of a [`ScriptedNic`].
#[derive(Clone, Debug, Default)]
pub struct Handle(pub Arc<Mutex<State>>);

impl Handle {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap()
    }
    pub fn received(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.lock().received)
    }
    pub fn open(&self, room: usize) {
        let mut s = self.lock();
        s.enabled = true;
        s.room = room;
    }
}

pub struct ScriptedNic {
    mac: MacAddr,
    backend: Box<dyn NetBackend>,
    clock: Arc<dyn Clock>,
    state: Handle,
}

impl NicDevice<Mem> for ScriptedNic {
    fn model(&self) -> &'static str {
        "scripted"
    }
    fn mac(&self) -> MacAddr {
        self.mac
    }
    fn pci(&self) -> Option<&PciConfig> {
        None
    }
    fn config_read(&mut self, _offset: u16, _size: u8) -> u32 {
        u32::MAX
    }
    fn config_write(&mut self, _offset: u16, _size: u8, _value: u32) {}
    fn bar_read(&mut self, _bar: u8, _offset: u64, _size: u8) -> u32 {
        self.state.lock().received.len() as u32
    }
    fn bar_write(&mut self, _bar: u8, _offset: u64, _size: u8, _value: u32) {
        let frames = std::mem::take(&mut self.state.lock().to_send);
        for f in frames {
            self.backend.send(&f).unwrap();
        }
    }
    fn set_memory(&mut self, _mem: Mem) {}
    fn can_receive(&self) -> bool {
        self.state.lock().enabled
    }
    fn receive(&mut self, frame: &[u8]) -> RxOutcome {
        let mut s = self.state.lock();
        if s.room == 0 {
            return RxOutcome::NoBuffer;
        }
        s.room -= 1;
        s.received.push(frame.to_vec());
        RxOutcome::Accepted
    }
    fn set_link(&mut self, up: bool) {
        self.state.lock().links.push(up);
    }
    fn next_deadline(&self) -> Option<u64> {
        self.state.lock().deadline
    }
    fn run_timers(&mut self) {
        let now = self.clock.now_ns();
        let mut s = self.state.lock();
        if s.deadline.is_some_and(|d| d <= now) {
            s.deadline = None;
            s.timers_fired += 1;
        }
    }
    fn reset(&mut self) {}
    fn backend(&self) -> &dyn NetBackend {
        &*self.backend
    }
    fn backend_mut(&mut self) -> &mut dyn NetBackend {
        &mut *self.backend
    }
}

/// A factory for `NetworkBuilder::nic_factory` that makes a [`ScriptedNic`] for every
/// spec and hands its [`Handle`] to `handles`, in NIC order.
pub fn factory(
    handles: Arc<Mutex<Vec<Handle>>>,
) -> impl FnMut(&NicSpec, NicConfig<Mem>) -> Result<Box<dyn NicDevice<Mem>>, ModelError> {
    move |spec, cfg| {
        let h = Handle::default();
        h.lock().model = spec.model.clone();
        handles.lock().unwrap().push(h.clone());
        Ok(Box::new(ScriptedNic {
            mac: cfg.mac,
            backend: cfg.backend,
            clock: cfg.clock,
            state: h,
        }))
    }
}

/// A frame from `src` to `dst` with a payload tag.
pub fn frame(dst: MacAddr, src: MacAddr, tag: u8) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.resize(60, tag);
    f
}

pub fn guest_memory() -> Mem {
    GuestMemoryMmap::from_ranges(&[(vm_memory::GuestAddress(0), 0x10000)]).unwrap()
}
