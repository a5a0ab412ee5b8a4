//! Session history (one row per session plus an events table for joins,
//! mode changes and the end) and the audit log of administrative changes.

use super::{Store, StoreError};
use serde::Serialize;

/// One session as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct HistoryRow {
    pub id: i64,
    pub session_id: String,
    pub site_key: String,
    pub start_url: String,
    pub interaction: Option<String>,
    pub agent: Option<String>,
    pub started_at: String,
    pub joined_at: Option<String>,
    pub ended_at: Option<String>,
    pub end_reason: Option<String>,
    pub masked_count: i64,
    pub blocked_count: i64,
    pub denied_count: i64,
}

/// One event in a session's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct HistoryEvent {
    pub at: String,
    pub kind: String,
    pub detail: String,
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub before_json: Option<String>,
    pub after_json: Option<String>,
}

/// Counters written when a session ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndCounts {
    pub masked: i64,
    pub blocked: i64,
    pub denied: i64,
}

impl Store {
    /// Record a new session; returns the history row id.
    pub async fn history_start(
        &self,
        session_id: &str,
        site_id: i64,
        site_key: &str,
        start_url: &str,
        interaction: Option<&str>,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query(
            "INSERT INTO session_history (session_id, site_id, site_key, start_url, interaction) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(session_id)
        .bind(site_id)
        .bind(site_key)
        .bind(start_url)
        .bind(interaction)
        .execute(self.pool())
        .await?
        .last_insert_rowid())
    }

    /// Record the agent joining.
    pub async fn history_join(&self, history_id: i64, agent: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE session_history SET agent = ?, joined_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?",
        )
        .bind(agent)
        .bind(history_id)
        .execute(self.pool())
        .await?;
        self.history_event(history_id, "join", agent).await
    }

    /// Record an event (mode change, presence, ...).
    pub async fn history_event(
        &self,
        history_id: i64,
        kind: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO session_events (history_id, kind, detail) VALUES (?, ?, ?)")
            .bind(history_id)
            .bind(kind)
            .bind(detail)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Record the end of a session with its reason and counters (one
    /// transaction: the end event and the row update appear together).
    pub async fn history_end(
        &self,
        history_id: i64,
        reason: &str,
        counts: EndCounts,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO session_events (history_id, kind, detail) VALUES (?, 'end', ?)")
            .bind(history_id)
            .bind(reason)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE session_history SET ended_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), end_reason = ?,
               masked_count = ?, blocked_count = ?, denied_count = ? WHERE id = ?",
        )
        .bind(reason)
        .bind(counts.masked)
        .bind(counts.blocked)
        .bind(counts.denied)
        .bind(history_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Close the history of sessions a previous run left live (it crashed or
    /// was killed): they end with reason `server_restart`. Called once at
    /// start-up, before any session exists; returns how many were closed.
    pub async fn close_stale_sessions(&self) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO session_events (history_id, kind, detail)
             SELECT id, 'end', 'server_restart' FROM session_history WHERE ended_at IS NULL",
        )
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query(
            "UPDATE session_history SET ended_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
               end_reason = 'server_restart' WHERE ended_at IS NULL",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Delete the history (and its events) of sessions that started more
    /// than `retention` ago; returns how many sessions were deleted.
    pub async fn prune_history(&self, retention: std::time::Duration) -> Result<u64, StoreError> {
        let cutoff = format!("-{} seconds", retention.as_secs());
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "DELETE FROM session_events WHERE history_id IN (SELECT id FROM session_history
               WHERE started_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?) AND ended_at IS NOT NULL)",
        )
        .bind(&cutoff)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query(
            "DELETE FROM session_history
             WHERE started_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?) AND ended_at IS NOT NULL",
        )
        .bind(&cutoff)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// The most recent sessions, newest first.
    pub async fn list_history(&self, limit: i64) -> Result<Vec<HistoryRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, session_id, site_key, start_url, interaction, agent, started_at, joined_at, ended_at,
                    end_reason, masked_count, blocked_count, denied_count
             FROM session_history ORDER BY id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// The history rows of one session id (ids are reused after a session ends).
    pub async fn history_of(&self, session_id: &str) -> Result<Vec<HistoryRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, session_id, site_key, start_url, interaction, agent, started_at, joined_at, ended_at,
                    end_reason, masked_count, blocked_count, denied_count
             FROM session_history WHERE session_id = ? ORDER BY id DESC",
        )
        .bind(session_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// The events of one history row, oldest first.
    pub async fn history_events(&self, history_id: i64) -> Result<Vec<HistoryEvent>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT at, kind, detail FROM session_events WHERE history_id = ? ORDER BY id",
        )
        .bind(history_id)
        .fetch_all(self.pool())
        .await?)
    }

    /// Append to the audit log.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        before: Option<&serde_json::Value>,
        after: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO audit_log (actor, action, target, before_json, after_json) VALUES (?, ?, ?, ?, ?)")
            .bind(actor)
            .bind(action)
            .bind(target)
            .bind(before.map(|v| v.to_string()))
            .bind(after.map(|v| v.to_string()))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The most recent audit entries, newest first.
    pub async fn list_audit(&self, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, at, actor, action, target, before_json, after_json FROM audit_log ORDER BY id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }
}
