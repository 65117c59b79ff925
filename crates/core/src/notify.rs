//! Things that happened, told to whoever listens — the hooks of the extensions crate.
//! The core, the API and the bots fire events where they happen
//! (`session.created`, `message.received`, `bot.message.sent`, …); without a listener
//! they are dropped. Firing never fails and never delays the caller, except
//! [`EventBus::fire_blocking`], which waits for blocking listeners within their timeouts.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

/// Receives events.
pub trait EventListener: Send + Sync {
    /// Starts what listens to `event` in the background; returns at once.
    fn notify(&self, event: &'static str, data: Value);
    /// Runs what listens to `event`, waiting for the blocking listeners.
    fn notify_blocking(
        &self,
        event: &'static str,
        data: Value,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// Where events are fired; the listener is set once the server has one.
#[derive(Default)]
pub struct EventBus {
    listener: OnceLock<Arc<dyn EventListener>>,
}

impl EventBus {
    /// Sets the listener (once; later calls are ignored).
    pub fn set_listener(&self, listener: Arc<dyn EventListener>) {
        let _ = self.listener.set(listener);
    }

    /// Fires `event` with `data` (a JSON object); returns at once.
    pub fn fire(&self, event: &'static str, data: Value) {
        if let Some(l) = self.listener.get() {
            l.notify(event, data);
        }
    }

    /// Fires `event` and waits for its blocking listeners.
    pub async fn fire_blocking(&self, event: &'static str, data: Value) {
        if let Some(l) = self.listener.get() {
            l.notify_blocking(event, data).await;
        }
    }
}
