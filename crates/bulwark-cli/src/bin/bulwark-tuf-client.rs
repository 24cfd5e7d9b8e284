//! `bulwark-tuf-client`: the tuf-conformance CLIENT-CLI (see the
//! `bulwark_tuf_client` crate and CONFORMANCE.md).

fn main() -> std::process::ExitCode {
    bulwark_tuf_client::main()
}
