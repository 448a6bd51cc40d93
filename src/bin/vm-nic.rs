//! The `vm-nic` command line: `vm-nic run` serves NICs and backends described with QEMU's
//! options, `vm-nic remote` serves one NIC to stock QEMU over its multi-process protocol,
//! `vm-nic switch` joins netdevs on a hub.

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::sync::Arc;

use vm_memory::GuestMemoryMmap;
use vm_nic::network::NetworkBuilder;
use vm_nic::options::NetConfig;
use vm_nic::runner::{MonotonicClock, Runner};

const RUN_USAGE: &str = "usage: vm-nic run OPTIONS...
Builds the hubs and backends QEMU would build from OPTIONS (-net, -netdev, -object
filter-dump, -redir; NICs need a VMM, so -net nic, -device and -nic are refused), prints
`info network`, and moves frames between them until SIGINT or SIGTERM.
  e.g. vm-nic run -net user -net socket,listen=127.0.0.1:5555
       vm-nic run -net nic,model=help";

/// `vm-nic run`: serves a netdev-only configuration until SIGINT/SIGTERM.
fn run(args: &[String]) -> Result<(), String> {
    if args.is_empty() || args[0] == "--help" || args[0] == "-h" {
        println!("{RUN_USAGE}");
        return Ok(());
    }
    serve(NetConfig::parse_args(args).map_err(|e| e.render())?)
}

/// `vm-nic switch`: `run` with every -netdev on hub 0.
fn switch(args: &[String]) -> Result<(), String> {
    if args.is_empty() || args[0] == "--help" || args[0] == "-h" {
        println!("{}", vm_nic::switch::USAGE);
        return Ok(());
    }
    serve(vm_nic::switch::config(args).map_err(|e| e.render())?)
}

/// Builds the network of `cfg`, prints `info network` and moves frames until SIGINT or
/// SIGTERM; dropping the network afterwards closes every backend (tap downscripts run).
fn serve(cfg: NetConfig) -> Result<(), String> {
    if let Some(help) = &cfg.help {
        print!("{help}");
        return Ok(());
    }
    for w in &cfg.warnings {
        eprintln!("vm-nic: warning: {w}");
    }
    let net = NetworkBuilder::<GuestMemoryMmap>::new(&cfg)
        .build()
        .map_err(|e| e.render())?;
    // A signal writes to this pipe; the runner returns when it becomes readable.
    // Installed before `info network` is printed, so whoever reads it may signal.
    let (stop, wake) = UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
    wake.set_nonblocking(true).map_err(|e| e.to_string())?;
    let wake2 = wake.try_clone().map_err(|e| e.to_string())?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGINT, wake)
        .and_then(|_| signal_hook::low_level::pipe::register(signal_hook::consts::SIGTERM, wake2))
        .map_err(|e| format!("installing signal handlers: {e}"))?;
    print!("{}", net.info_network());
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let mut runner = Runner::new(net, Arc::new(MonotonicClock::new()));
    runner
        .run(stop.as_fd())
        .map_err(|e| format!("event loop: {e}"))?;
    eprintln!("vm-nic: stopped by signal");
    drop(runner);
    Ok(())
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: vm-nic <command> [options]\n\
         commands:\n  \
           run     run NICs and backends given as QEMU options (-net/-netdev/-device/-nic)\n  \
           remote  serve one NIC to QEMU's x-pci-proxy-dev (--fd N | --socket PATH)\n  \
           switch  join netdevs on one hub (e.g. a tap and -netdev user)\n\
         `vm-nic <command> --help` for details"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        return usage();
    };
    let rest = &args[1..];
    let result: Result<(), String> = match cmd.as_str() {
        "run" => run(rest),
        "remote" => vm_nic::remote::main(rest),
        "switch" => switch(rest),
        "-V" | "--version" => {
            println!("vm-nic {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        _ => return usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vm-nic: {e}");
            ExitCode::FAILURE
        }
    }
}
