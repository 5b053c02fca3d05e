//! stdio front of `bench-upstream`: newline-delimited JSON-RPC, legacy era, plain blocking
//! I/O on one thread (a stdio server has one client, so there is nothing to multiplex).

use std::io::{BufRead, BufReader, BufWriter, Write};

use crate::mcp::Server;

/// Serves stdin/stdout until stdin closes.
pub(crate) fn serve(server: &Server) -> anyhow::Result<()> {
    // Our own reader (not `StdinLock`) so that `buffer()` tells what is already read.
    let mut input = BufReader::with_capacity(64 * 1024, std::io::stdin().lock());
    let mut output = BufWriter::new(std::io::stdout().lock());
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            output.flush()?;
            return Ok(());
        }
        let msg = line.trim_ascii();
        if !msg.is_empty()
            && let Some(reply) = server.handle_stdio(msg)
        {
            output.write_all(&reply)?;
            output.write_all(b"\n")?;
        }
        // Flush unless a further request is already buffered (never block on reading
        // with an answer unflushed): pipelined requests then share one write.
        if !input.buffer().contains(&b'\n') {
            output.flush()?;
        }
    }
}
