"""Redis key layout.

Every key of a session is ``{prefix}:{BUCKET}:s:{escaped id}:{kind}``. On Redis Cluster the
hash tag ``{BUCKET}`` is derived from the session id (CRC-32 of its UTF-8 bytes, modulo
`CLUSTER_BUCKETS`), so all of a session's keys, and the bucket's listing index, share one
Cluster slot: every write, index entries included, is one atomic script. A single server
(standalone, Sentinel) has one bucket, `{0000}`: its listing index is one sorted set, which
a page reads as one, where 256 would cost a read each.

The escaped id sits outside the hash tag and cannot be confused with another session's: `%`,
`{`, `}` and `:` are percent-escaped, so the escaped id holds no `:` and no braces, and the
mapping is injective. A prefix may not contain braces, so the first `{` of a key always ends
the prefix and no prefix can reach another prefix's keys.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from ..errors import ConfigurationError

__all__ = [
    "CLUSTER_BUCKETS",
    "SessionKeys",
    "bucket_count",
    "bucket_keys",
    "bucket_of",
    "bucket_tag",
    "encode_bucket",
    "encoded_script_keys",
    "escape_id",
    "session_keys",
    "unescape_id",
    "validate_key_prefix",
    "value_part",
]

#: Number of hash-tag buckets on Cluster. Part of the storage format: changing it moves
#: every session. Enough slots to spread over a few dozen primaries, few enough that a page,
#: which reads the top of every bucket a node holds, stays cheap.
CLUSTER_BUCKETS = 256


def bucket_count(cluster: bool) -> int:
    """Buckets of the layout: `CLUSTER_BUCKETS` on Cluster, else one."""
    return CLUSTER_BUCKETS if cluster else 1


_ESCAPES = {"%": "%25", "{": "%7B", "}": "%7D", ":": "%3A"}


def escape_id(session_id: str) -> str:
    """The session id with `%`, `{`, `}` and `:` percent-escaped (an injective mapping)."""
    if not any(ch in session_id for ch in _ESCAPES):
        return session_id
    return "".join(_ESCAPES.get(ch, ch) for ch in session_id)


def unescape_id(escaped: str) -> str:
    """Inverse of `escape_id`."""
    if "%" not in escaped:
        return escaped
    out: list[str] = []
    i = 0
    while i < len(escaped):
        if escaped[i] == "%":
            out.append(chr(int(escaped[i + 1 : i + 3], 16)))
            i += 3
        else:
            out.append(escaped[i])
            i += 1
    return "".join(out)


def bucket_of(session_id: str, buckets: int) -> int:
    return zlib.crc32(session_id.encode("utf-8")) % buckets


def validate_key_prefix(prefix: object) -> str:
    if not isinstance(prefix, str) or not prefix:
        raise ConfigurationError(f"key_prefix must be a non-empty str, not {prefix!r}")
    if "{" in prefix or "}" in prefix:
        raise ConfigurationError(
            f"key_prefix must not contain '{{' or '}}' (they would change the hash tag): {prefix!r}"
        )
    return prefix


@dataclass(frozen=True)
class BucketKeys:
    """The listing index of one bucket: updated-at and expiry deadlines by escaped id, and
    the indexed metadata of its sessions."""

    tag: str  # the bucket's hash-tagged key base: "prefix:{0042}:"
    index: str  # ZSET: member -> update time (ms)
    expiry: str  # ZSET: member -> deadline (ms), sessions with a TTL only
    indexed: str  # HASH: member -> its indexed pairs, as `value_index` parts joined by "{"
    session_base: str  # a member's keys are session_base + member + ":items" (":meta", ...)

    def value_index(self, key: str, value: str) -> str:
        """The ZSET of the bucket's sessions whose metadata `key` is `value`, by update
        time. Both sides are escaped, so the part after "v:" splits at its only ':'."""
        return f"{self.tag}v:{value_part(key, value)}"


@dataclass(frozen=True)
class SessionKeys:
    items: str  # LIST of JSON items, oldest first
    meta: str  # HASH: id, created (ms), "m:<key>" metadata (updated: the index score)
    tokens: str  # ZSET: batch tokens and idempotency keys, scored by their deadline
    lock: str  # STRING: the session lock's holder token, with a lease
    bucket: BucketKeys
    member: str  # the escaped id: the session's member in the bucket index

    def receipt(self, token: str) -> str:
        """A pop's receipt: what it removed, kept briefly so that a retry returns the same."""
        return f"{self.items[: -len('items')]}pop:{token}"

    @property
    def script_keys(self) -> tuple[str, str, str, str, str, str]:
        """The keys every session script receives, in its KEYS order."""
        bucket = self.bucket
        return (self.items, self.meta, self.tokens, bucket.index, bucket.expiry, bucket.indexed)


def value_part(key: str, value: str) -> str:
    """A metadata pair as it names its value index: escaped key, ':', escaped value."""
    return f"{escape_id(key)}:{escape_id(value)}"


def bucket_tag(prefix: str, bucket: int) -> str:
    return f"{prefix}:{{{bucket:04d}}}:"


def bucket_keys(prefix: str, bucket: int) -> BucketKeys:
    tag = bucket_tag(prefix, bucket)
    return BucketKeys(
        tag=tag,
        index=f"{tag}index",
        expiry=f"{tag}expiry",
        indexed=f"{tag}indexed",
        session_base=f"{tag}s:",
    )


#: What follows a session's key base (bucket base + escaped id) in its three script keys.
SCRIPT_KEY_KINDS = (":items", ":meta", ":tokens")


_KINDS_ENCODED = tuple(kind.encode() for kind in SCRIPT_KEY_KINDS)

#: A bucket's keys as bytes: its sessions' key base, and its three shared script keys.
EncodedBucket = tuple[bytes, tuple[bytes, bytes, bytes]]


def encode_bucket(bucket: BucketKeys) -> EncodedBucket:
    return bucket.session_base.encode(), (
        bucket.index.encode(),
        bucket.expiry.encode(),
        bucket.indexed.encode(),
    )


def encoded_script_keys(bucket: EncodedBucket, session_id: str) -> tuple[tuple[bytes, ...], bytes]:
    """`session_keys(...).script_keys` and the member, as bytes, for a session of the
    (encoded) bucket: the batch paths build thousands of these (redis/transfer.py)."""
    base, shared = bucket
    member = escape_id(session_id).encode()
    stem = base + member
    return (*(stem + kind for kind in _KINDS_ENCODED), *shared), member


def session_keys(prefix: str, session_id: str, buckets: int) -> SessionKeys:
    """The keys of a session in a layout of `buckets` buckets (see `bucket_count`)."""
    bucket = bucket_keys(prefix, bucket_of(session_id, buckets))
    member = escape_id(session_id)
    base = f"{bucket.session_base}{member}"
    items, meta, tokens = (base + kind for kind in SCRIPT_KEY_KINDS)
    return SessionKeys(
        items=items,
        meta=meta,
        tokens=tokens,
        lock=f"{base}:lock",
        bucket=bucket,
        member=member,
    )
