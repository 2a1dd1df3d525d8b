"""Readers of the layouts `migrate` copies from: this package's own, and two foreign ones.

```
own.py                   any store URL of this package (SQLite opened read-only)
sdk_sqlite.py            the tables of the SDK's SQLiteSession (read-only, SDK tables only)
sdk_redis.py             keys of the SDK's RedisSession: {prefix}:{id} + {prefix}:{id}:messages
openai_agents_redis.py   keys of openai-agents-redis: agent_session:{id} + agent_messages:{id}
redis_keys.py            shared by the Redis readers: SCAN on every primary, pipelines
```

A reader makes a *plan* (every session, its item count and update time: the totals of a
progress bar and the copying order), then reads whole sessions, a batch at a time
(`SourceLayout.read_many`), as `SessionRecord`s, with undecodable items listed in
`corrupt` and anything it could not carry named in `not_carried`, never dropped unseen.
Readers only read: SQLite files are opened read-only (on the SQLite backend's worker
thread), Redis keys are found with SCAN, never KEYS, through a public redis-py client.
"""

from __future__ import annotations

from .base import LAYOUTS, PlannedSession, SourceLayout, SourceSession, open_source

__all__ = ["LAYOUTS", "PlannedSession", "SourceLayout", "SourceSession", "open_source"]
