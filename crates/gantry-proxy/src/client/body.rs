//! Response bodies: a whole buffer, or a stream of server-sent events fed by a channel.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use gantry_core::Message;
use http_body_util::Full;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

/// The body of every response the gateway sends.
pub(crate) enum ResponseBody {
    /// A complete body.
    Full(Full<Bytes>),
    /// An SSE stream: each message becomes one `event: message`. Boxed: a response is moved
    /// up through every layer that returns it, and most are `Full`, a fraction of the size.
    Events(Box<EventStream>),
}

/// SSE events from a channel of messages, until the channel closes (or `until` is seen).
pub(crate) struct EventStream {
    /// A first chunk to send before any message (the legacy `endpoint` event).
    preamble: Option<Bytes>,
    /// The messages.
    rx: mpsc::Receiver<Message>,
    /// End the stream after a response with this id has been sent.
    until: Option<gantry_core::Id>,
    /// A message already taken from `rx` to send first.
    first: Option<Message>,
    done: bool,
    /// Dropped with the stream: runs clean-up when the client goes away.
    _guard: Option<Box<dyn Send + Sync>>,
}

// === impl EventStream ===

impl EventStream {
    /// Every message of `rx`, until it closes.
    pub(crate) fn new(rx: mpsc::Receiver<Message>) -> Self {
        EventStream {
            preamble: None,
            rx,
            until: None,
            first: None,
            done: false,
            _guard: None,
        }
    }

    /// Sends `chunk` before any message.
    pub(crate) fn preamble(mut self, chunk: Bytes) -> Self {
        self.preamble = Some(chunk);
        self
    }

    /// The stream of one request: `first` (already received), then the rest until the
    /// response to `id`.
    pub(crate) fn for_request(mut self, id: gantry_core::Id, first: Message) -> Self {
        self.until = Some(id);
        self.first = Some(first);
        self
    }

    /// Ends the stream after the response to `id`.
    pub(crate) fn until(mut self, id: gantry_core::Id) -> Self {
        self.until = Some(id);
        self
    }

    /// Keeps `guard` alive as long as the stream; dropping it runs its clean-up.
    pub(crate) fn guard(mut self, guard: impl Send + Sync + 'static) -> Self {
        self._guard = Some(Box::new(guard));
        self
    }
}

/// Formats one message as an SSE event.
pub(crate) fn sse_event(msg: &Message) -> Bytes {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"event: message\ndata: ");
    msg.write_to(&mut out);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

impl EventStream {
    fn frame_for(&mut self, msg: Message) -> Frame<Bytes> {
        if let (Some(until), Message::Response(r)) = (&self.until, &msg)
            && &r.id == until
        {
            self.done = true;
        }
        Frame::data(sse_event(&msg))
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            ResponseBody::Full(b) => Pin::new(b).poll_frame(cx),
            ResponseBody::Events(s) => {
                if let Some(p) = s.preamble.take() {
                    return Poll::Ready(Some(Ok(Frame::data(p))));
                }
                if let Some(m) = s.first.take() {
                    return Poll::Ready(Some(Ok(s.frame_for(m))));
                }
                if s.done {
                    return Poll::Ready(None);
                }
                match s.rx.poll_recv(cx) {
                    Poll::Ready(Some(m)) => Poll::Ready(Some(Ok(s.frame_for(m)))),
                    Poll::Ready(None) => Poll::Ready(None),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Full(b) => b.is_end_stream(),
            ResponseBody::Events(s) => s.done && s.first.is_none() && s.preamble.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Full(b) => b.size_hint(),
            ResponseBody::Events(_) => SizeHint::default(),
        }
    }
}
