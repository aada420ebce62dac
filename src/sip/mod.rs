//! SIP messages in and out (RFC 3261): parsing the requests a redirect
//! server reads, framing them on streams, building stateless responses.
//! Knows nothing of routing.

pub mod diversion;
pub mod framing;
pub mod header;
pub mod header_lines;
pub mod hop;
pub mod host;
pub mod method;
pub mod oversize;
pub mod request;
pub mod response;
pub mod response_head;
pub mod text;
pub mod uri;
pub mod via;
pub mod via_lines;

pub use framing::{Frame, FrameError};
pub use method::{Method, MethodKind};
pub use request::{Framing, ParseLimits, Problem, Request};
pub use response::{Status, write_response};
pub use uri::{NameAddr, Scheme, Uri};
pub use via::TopVia;
