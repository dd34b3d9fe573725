//! `safeai proxy …`: the parts of the proxy container's work that Squid runs as helpers.
//! Not for the host: the proxy image calls them.

use std::io::{BufRead, Write};

use crate::Failed;

/// Squid's external ACL helper for the SNI check: one answer per line, flushed at once
/// (Squid waits for it), until Squid closes the pipe.
pub fn sni_check() -> Result<(), Failed> {
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lines() {
        let line = line.map_err(|e| {
            eprintln!("safeai proxy sni-check: cannot read from Squid: {e}");
            Failed
        })?;
        let answer = safeai_core::tls::sni_check(&line);
        writeln!(stdout, "{answer}")
            .and_then(|()| stdout.flush())
            .map_err(|e| {
                eprintln!("safeai proxy sni-check: cannot answer Squid: {e}");
                Failed
            })?;
    }
    Ok(())
}
