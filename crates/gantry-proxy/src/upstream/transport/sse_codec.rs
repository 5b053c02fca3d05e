//! Server-sent events decoding (placeholder until the real one lands).
