//! Events on one machine: delivered in-process to every subscriber (tests follow a post's events this way), and
//! appended as JSON lines to a file when one is configured, so a person can follow them.

use std::{
    path::PathBuf,
    sync::{Mutex, PoisonError},
};

use async_trait::async_trait;
use tokio::{
    io::AsyncWriteExt,
    sync::{mpsc, Mutex as AsyncMutex},
};

use crate::{
    events::Event,
    ports::{EventError, EventSink},
};

pub struct LocalEventSink {
    /// Unbounded on purpose: a slow subscriber must not lose events (a bounded broadcast would drop the oldest), and
    /// on one machine the backlog is small.
    subscribers: Mutex<Vec<mpsc::UnboundedSender<Event>>>,
    journal: Option<Journal>,
}

struct Journal {
    path: PathBuf,
    /// Opened at the first publish (or `check_writable`); one writer at a time keeps each publish's lines together.
    file: AsyncMutex<Option<tokio::fs::File>>,
    failure: Mutex<Option<String>>,
}

impl LocalEventSink {
    pub fn new(jsonl_path: Option<PathBuf>) -> Self {
        Self {
            subscribers: Mutex::new(Vec::new()),
            journal: jsonl_path.map(|path| Journal {
                path,
                file: AsyncMutex::new(None),
                failure: Mutex::new(None),
            }),
        }
    }

    /// Every event published from now on, in order.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<Event> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(sender);
        receiver
    }

    /// Opens the journal now: a runner whose events cannot be written must not start (it would accept posts and
    /// never publish them).
    pub async fn check_writable(&self) -> Result<(), EventError> {
        match &self.journal {
            Some(journal) => Self::open(journal, &mut *journal.file.lock().await).await,
            None => Ok(()),
        }
    }

    /// The last journal write's failure, until a write succeeds again (the runner's `GET /health`).
    pub fn failure(&self) -> Option<String> {
        self.journal
            .as_ref()
            .and_then(|journal| journal.failure.lock().unwrap_or_else(PoisonError::into_inner).clone())
    }

    async fn open(journal: &Journal, file: &mut Option<tokio::fs::File>) -> Result<(), EventError> {
        if file.is_some() {
            return Ok(());
        }
        if let Some(parent) = journal.path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| EventError::Unavailable(Box::new(e)))?;
        }
        let opened = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&journal.path)
            .await
            .map_err(|e| EventError::Unavailable(Box::new(e)))?;
        *file = Some(opened);
        Ok(())
    }

    async fn append(journal: &Journal, events: &[Event]) -> Result<(), EventError> {
        let written = Self::write_lines(journal, events).await;
        *journal.failure.lock().unwrap_or_else(PoisonError::into_inner) = written.as_ref().err().map(|e| {
            let cause = std::error::Error::source(e)
                .map(ToString::to_string)
                .unwrap_or_default();
            format!("{}: {e}: {cause}", journal.path.display())
        });
        written
    }

    async fn write_lines(journal: &Journal, events: &[Event]) -> Result<(), EventError> {
        let mut lines = Vec::new();
        for event in events {
            serde_json::to_writer(&mut lines, event).map_err(|e| EventError::Unavailable(Box::new(e)))?;
            lines.push(b'\n');
        }
        let mut file = journal.file.lock().await;
        Self::open(journal, &mut file).await?;
        if let Some(file) = file.as_mut() {
            file.write_all(&lines)
                .await
                .map_err(|e| EventError::Unavailable(Box::new(e)))?;
            file.flush().await.map_err(|e| EventError::Unavailable(Box::new(e)))?;
        }
        Ok(())
    }
}

#[async_trait]
impl EventSink for LocalEventSink {
    async fn publish(&self, events: &[Event]) -> Result<(), EventError> {
        // The journal first: if it cannot be written the publish fails before anyone acts on the events, and the
        // caller's retry delivers them once.
        if let Some(journal) = &self.journal {
            Self::append(journal, events).await?;
        }
        let mut subscribers = self.subscribers.lock().unwrap_or_else(PoisonError::into_inner);
        // A subscriber that hung up is forgotten; everyone still listening gets every event.
        subscribers.retain(|subscriber| events.iter().all(|event| subscriber.send(event.clone()).is_ok()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::{events::EventType, ids::WorkspaceId};

    #[tokio::test]
    async fn subscribers_that_hung_up_are_forgotten_and_the_rest_still_receive() {
        let sink = LocalEventSink::new(None);
        let gone = sink.subscribe();
        let mut listening = sink.subscribe();
        drop(gone);
        let event = Event::new(EventType::PostScheduled, WorkspaceId::new(), Utc::now());

        sink.publish(std::slice::from_ref(&event)).await.unwrap();

        assert_eq!(listening.recv().await, Some(event));
        assert_eq!(sink.subscribers.lock().unwrap().len(), 1);
    }
}
