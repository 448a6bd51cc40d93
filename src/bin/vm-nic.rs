//! The `vm-nic` command line: `vm-nic run` serves NICs and backends described with QEMU's
//! options, `vm-nic remote` serves one NIC to stock QEMU over its multi-process protocol,
//! `vm-nic switch` joins netdevs on a hub.

use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage: vm-nic <command> [options]\n\
         commands:\n  \
           run     run NICs and backends given as QEMU options (-net/-netdev/-device/-nic)\n  \
           remote  serve one NIC to QEMU's x-pci-proxy-dev (--fd N | --socket PATH)\n  \
           switch  connect netdevs on a hub\n\
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
        "run" => Err("`run` is not implemented yet".into()),
        "remote" => vm_nic::remote::main(rest),
        "switch" => Err("`switch` is not implemented yet".into()),
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
