-- The store-wide statements: counting, purging, listing, reindexing. Each runs inside the
-- calling operation's transaction. Table placeholders as in session.sql, and {index},
-- {indexed} and {counters}, the metadata index, its registry and the session counter.

-- name: ping
SELECT 1;

-- name: count_live
-- :now in ms. The counter minus the sessions past their deadline: a walk of the deadline
-- index over the expired sessions only, which writes keep few.
SELECT (SELECT COALESCE(SUM(n), 0) FROM {counters} WHERE name = 'sessions')
     - (SELECT COUNT(*) FROM {state} WHERE expires_ms IS NOT NULL AND expires_ms <= :now);

-- name: select_expired
-- ?1 now in ms, ?2 how many: sessions past their deadline, the longest expired first.
SELECT session_id FROM {state} WHERE expires_ms IS NOT NULL AND expires_ms <= ?1
ORDER BY expires_ms LIMIT ?2;

-- name: count_expired
-- ? now in ms.
SELECT COUNT(*) FROM {state} WHERE expires_ms IS NOT NULL AND expires_ms <= ?;

-- name: prune_all_tokens
-- ? now in ms: every lapsed batch token.
DELETE FROM {tokens} WHERE expires_ms <= ?;

-- name: prune_all_locks
-- ? now in ms: every lapsed lock lease.
DELETE FROM {locks} WHERE expires_ms <= ?;

-- name: registered
-- The file's indexed keys: resume_after is NULL once a key's index is complete, else the
-- session id after which reindex continues.
SELECT key, resume_after FROM {indexed};

-- name: set_resume
-- ? resume_after (NULL: complete), ? key.
UPDATE {indexed} SET resume_after = ? WHERE key = ?;

-- name: state_batch
-- ? after this session id, ? how many: the next sessions by id, for reindex.
SELECT session_id, expires_ms FROM {state} WHERE session_id > ? ORDER BY session_id LIMIT ?;

-- name: drop_index_range
-- ?1 key, sessions after ?2 up to ?3 (by id): their index rows for the key.
DELETE FROM {index} WHERE key = ?1 AND session_id > ?2 AND session_id <= ?3;

-- name: fill_index_range
-- ?1 key, sessions after ?2 up to ?3 (by id): their index rows for the key, from their
-- metadata.
INSERT INTO {index} (key, value, updated_ms, session_id)
SELECT {metadata}.key, {metadata}.value, {state}.updated_ms, {metadata}.session_id
FROM {metadata} JOIN {state} ON {state}.session_id = {metadata}.session_id
WHERE {metadata}.session_id > ?2 AND {metadata}.session_id <= ?3 AND {metadata}.key = ?1;

-- Listing, counting and deleting by filter are composed of the fragments below, as the
-- filter has them: a walk (FROM ... WHERE), then its conditions, then its order. {walk} is
-- the table whose (updated_ms, session_id) order the walk follows: {state} or {index}.

-- fragment: walk_by_update
-- Live sessions in update order (the state table's updated index).
FROM {state} WHERE (expires_ms IS NULL OR expires_ms > :now)

-- fragment: walk_by_index
-- Live sessions having the indexed pair :ikey = :ivalue, through that pair's index rows,
-- newest first. CROSS JOIN: the index is the outer loop, whatever the planner would guess.
FROM {index} CROSS JOIN {state} ON {state}.session_id = {index}.session_id
WHERE (expires_ms IS NULL OR expires_ms > :now)
  AND {index}.key = :ikey AND {index}.value = :ivalue

-- fragment: after
-- Older than the position (:after_ms, :after_id) in the listing order.
AND ({walk}.updated_ms, {walk}.session_id) < (:after_ms, :after_id)

-- fragment: updated_before
AND {walk}.updated_ms < :before_ms

-- fragment: has_pair
-- One more pair of the filter (the {n}th): a probe of the session's metadata.
AND EXISTS (SELECT 1 FROM {metadata} WHERE {metadata}.session_id = {state}.session_id
            AND {metadata}.key = :key{n} AND {metadata}.value = :value{n})

-- fragment: newest_first
-- The listing order, and at most :limit rows of it.
ORDER BY {walk}.updated_ms DESC, {walk}.session_id DESC LIMIT :limit

-- fragment: select_page
-- The page's state rows (asked for one more than the page, to know whether more follow).
SELECT {state}.session_id, {state}.created_ms, {state}.updated_ms, {state}.expires_ms,
       {state}.item_count

-- fragment: select_positions
SELECT {state}.updated_ms, {state}.session_id

-- fragment: select_count
SELECT COUNT(*)

-- fragment: page_metadata
-- The metadata of a page's sessions, {marks} one ? per session id.
SELECT session_id, key, value FROM {metadata} WHERE session_id IN ({marks})
