-- The statements of one session's operations, each run inside the operation's transaction.
-- {sessions} and {messages} are the SDK's tables; {state}, {metadata}, {tokens} and
-- {locks} the side tables named after {sessions} (see ddl.py).

-- name: state
-- The session's state row: created_ms, updated_ms, expires_ms (NULL: never), item_count.
SELECT created_ms, updated_ms, expires_ms, item_count FROM {state} WHERE session_id = ?;

-- name: upsert_session
-- ?1 session id, ?2 now in seconds: the SDK's row, created or its updated_at moved, as
-- the SDK writes it (its triggers create the state row and move updated_ms).
INSERT INTO {sessions} (session_id, created_at, updated_at)
VALUES (?1, datetime(?2, 'unixepoch'), datetime(?2, 'unixepoch'))
ON CONFLICT (session_id) DO UPDATE SET updated_at = excluded.updated_at;

-- name: stamp
-- ?1 session id, ?2 now in ms, ?3 the new deadline (NULL: none). After upsert_session,
-- whose triggers stamp SQLite's clock a moment later than now: our writes carry exactly
-- now (taken under the write lock).
UPDATE {state} SET created_ms = MIN(created_ms, ?2), updated_ms = ?2, expires_ms = ?3
WHERE session_id = ?1;

-- name: set_expiry
-- ?1 session id, ?2 the new deadline in ms (NULL: none).
UPDATE {state} SET expires_ms = ?2 WHERE session_id = ?1;

-- name: set_sdk_times
-- ?1 session id, ?2 created and ?3 updated, in seconds: a copied session's own times in
-- the SDK's columns.
UPDATE {sessions}
SET created_at = datetime(?2, 'unixepoch'), updated_at = datetime(?3, 'unixepoch')
WHERE session_id = ?1;

-- name: set_times
-- ?1 session id, ?2 created and ?3 updated, in ms. After set_sdk_times: its update
-- trigger would stamp the current time.
UPDATE {state} SET created_ms = ?2, updated_ms = ?3 WHERE session_id = ?1;

-- The four deletes of a session's rows, side tables first (the triggers then find none).
-- Batch tokens stay: they outlive a clear or an expiry, until their own deadline, so a
-- batch resent afterwards is still recognized (an idempotency key for 24 h).

-- name: delete_state
DELETE FROM {state} WHERE session_id = ?;

-- name: delete_metadata
DELETE FROM {metadata} WHERE session_id = ?;

-- name: delete_messages
DELETE FROM {messages} WHERE session_id = ?;

-- name: delete_session
DELETE FROM {sessions} WHERE session_id = ?;

-- name: select_some_expired
-- ? now in ms, ? how many: expired sessions, oldest deadline first (the deadline index).
SELECT session_id FROM {state} WHERE expires_ms IS NOT NULL AND expires_ms <= ?
ORDER BY expires_ms LIMIT ?;

-- name: token_seen
-- ? session id, ? token, ? now in ms: a row when the token is still remembered.
SELECT 1 FROM {tokens} WHERE session_id = ? AND token = ? AND expires_ms > ?;

-- name: prune_tokens
-- ? session id, ? now in ms: the session's lapsed tokens.
DELETE FROM {tokens} WHERE session_id = ? AND expires_ms <= ?;

-- name: add_token
-- ? session id, ? token, ? its deadline in ms.
INSERT INTO {tokens} (session_id, token, expires_ms) VALUES (?, ?, ?)
ON CONFLICT (session_id, token) DO UPDATE SET expires_ms = excluded.expires_ms;

-- name: insert_message
-- ? session id, ? the item's JSON text.
INSERT INTO {messages} (session_id, message_data) VALUES (?, ?);

-- name: trim
-- ?1 session id, ?2 max_items: every item but the newest ?2.
DELETE FROM {messages} WHERE session_id = ?1 AND id <=
    (SELECT id FROM {messages} WHERE session_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2);

-- name: select_all
SELECT message_data FROM {messages} WHERE session_id = ? ORDER BY id;

-- name: select_tail
-- ? session id, ? count: the newest items, newest first.
SELECT message_data FROM {messages} WHERE session_id = ? ORDER BY id DESC LIMIT ?;

-- name: select_newest_first
SELECT id, message_data FROM {messages} WHERE session_id = ? ORDER BY id DESC;

-- name: delete_message
-- ? the message's row id.
DELETE FROM {messages} WHERE id = ?;

-- name: select_metadata
SELECT key, value FROM {metadata} WHERE session_id = ?;

-- name: set_metadata
-- ? session id, ? key, ? value.
INSERT INTO {metadata} (session_id, key, value) VALUES (?, ?, ?)
ON CONFLICT (session_id, key) DO UPDATE SET value = excluded.value;

-- name: delete_metadata_key
-- ? session id, ? key.
DELETE FROM {metadata} WHERE session_id = ? AND key = ?;

-- The session lock: one row per held lock; a lapsed lease is free for the taking.
-- ?1 session id, ?2 token, ?3 now in ms, ?4 lease in ms.

-- name: lock_take
INSERT INTO {locks} (session_id, token, expires_ms) VALUES (?1, ?2, ?3 + ?4)
ON CONFLICT (session_id) DO UPDATE
SET token = excluded.token, expires_ms = excluded.expires_ms
WHERE {locks}.expires_ms <= ?3 OR {locks}.token = ?2;

-- name: lock_renew
UPDATE {locks} SET expires_ms = ?3 + ?4
WHERE session_id = ?1 AND token = ?2 AND expires_ms > ?3;

-- name: lock_held
SELECT 1 FROM {locks} WHERE session_id = ?1 AND token = ?2 AND expires_ms > ?3;

-- name: lock_drop
-- ? session id, ? token.
DELETE FROM {locks} WHERE session_id = ? AND token = ?;
