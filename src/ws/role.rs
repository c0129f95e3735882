//! Which end of the connection: it decides who masks.

/// Which end of the connection this endpoint is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Server: receives masked frames, sends unmasked frames.
    Server,
    /// Client: receives unmasked frames, sends masked frames.
    Client,
}
