//! [`Registration`]: the application's handle on a connection it
//! registered with the hub.

use std::fmt;

use tokio::sync::watch;

use super::conn::ConnId;
use super::Hub;

/// The application's handle on a registered connection: its id, and a
/// signal when the hub closed it (slow consumer, rate limit, write error)
/// so the application's read loop can stop. Dropping it unregisters the
/// connection (in a spawned task); [`unregister`](Self::unregister) does it
/// in place.
///
/// ```no_run
/// # async fn demo(hub: rtwire::hub::Hub, conn: rtwire::ws::Conn<tokio::net::TcpStream>) {
/// let (mut read, write) = conn.split();
/// let mut reg = hub.register(write, "alice", Default::default());
/// loop {
///     tokio::select! {
///         m = read.read_message() => match m {
///             Ok(Some(m)) => { let _ = hub.broadcast("lobby", &m, Some(reg.id())).await; }
///             _ => break,
///         },
///         _ = reg.closed() => break,
///     }
/// }
/// reg.unregister().await;
/// # }
/// ```
pub struct Registration {
    pub(crate) hub: Hub,
    pub(crate) id: ConnId,
    pub(crate) closed: watch::Receiver<bool>,
    pub(crate) done: bool,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Registration {
    /// The connection's id.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// The hub.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Resolves once the hub has closed or dropped the connection.
    /// Cancel-safe.
    pub async fn closed(&mut self) {
        let _ = self.closed.wait_for(|c| *c).await;
    }

    /// Whether the hub has closed or dropped the connection.
    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Removes the connection from the hub now: it leaves its rooms
    /// (presence leave events fire), and its writer stops.
    pub async fn unregister(mut self) {
        self.done = true;
        self.hub.unregister(self.id).await;
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (hub, id) = (self.hub.clone(), self.id);
            rt.spawn(async move { hub.unregister(id).await });
        }
    }
}
