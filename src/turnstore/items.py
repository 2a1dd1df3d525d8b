"""Validate, encode and decode conversation items: one path for every backend.

An item is a JSON object: a `dict` with `str` keys at every depth whose values are strings,
finite numbers, booleans, `None`, lists (or tuples) and such dicts. Anything else (NaN,
Infinity, bytes, datetimes, sets, non-`str` keys, unpaired surrogates) is refused with
`InvalidItemError` before anything of the batch is written. Encoding is compact JSON in UTF-8,
through `orjson` when it is installed (the `fast` extra) and the standard library otherwise.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .errors import InvalidItemError

_orjson: Any
try:  # the `fast` extra; TURNSTORE_NO_FAST=1 turns it off (benchmarks, tests)
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised by the no-extra CI job
    _orjson = None
if os.environ.get("TURNSTORE_NO_FAST"):
    _orjson = None

__all__ = [
    "DEFAULT_MAX_ITEM_BYTES",
    "HAS_ORJSON",
    "decode_item",
    "decode_items_fast",
    "encode_item",
    "encode_items",
    "orjson_module",
    "validate_item",
]

DEFAULT_MAX_ITEM_BYTES = 8 * 1024 * 1024
HAS_ORJSON = _orjson is not None


def orjson_module() -> Any:
    """The `orjson` module when the `fast` extra is in use (not turned off), else None."""
    return _orjson


_SCALARS = (str, int, float, type(None))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _path(parts: Sequence[str | int]) -> str:
    return "item" + "".join(f"[{p!r}]" for p in parts)


def _plainly_json(item: dict[str, Any]) -> bool:
    """The common case, fast: exact built-in types only, finite floats, `str` keys.

    False means "look closer" (a subclass, something wrong, or nesting deeper than this
    recursive check goes), not necessarily invalid.
    """
    try:
        return _plain_dict(item)
    except RecursionError:
        return False


def _plain_dict(value: dict[Any, Any]) -> bool:
    for key, child in value.items():
        if type(key) is not str:
            return False
        kind = type(child)
        if kind is str or kind is int or kind is bool or child is None:
            continue
        if not _plain_value(child, kind):
            return False
    return True


def _plain_value(value: Any, kind: type) -> bool:
    if kind is dict:
        return _plain_dict(value)
    if kind is list:
        for child in value:
            child_kind = type(child)
            if child_kind is str or child_kind is int or child_kind is bool or child is None:
                continue
            if not _plain_value(child, child_kind):
                return False
        return True
    if kind is float:
        return math.isfinite(value)
    return False


def validate_item(item: Any) -> None:
    """Raise `InvalidItemError` unless `item` is a strict-JSON object with `str` keys."""
    if not isinstance(item, dict):
        raise InvalidItemError(f"an item must be a dict, not {type(item).__name__}")
    if _plainly_json(item):
        return
    # The careful walk, which names what is wrong. Iterative: deeply nested input must not
    # hit the recursion limit of this check.
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(item, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            for key, child in value.items():
                if not isinstance(key, str):
                    raise InvalidItemError(
                        f"{_path(path)} has a key of type {type(key).__name__} ({key!r}); "
                        "keys must be str"
                    )
                if not isinstance(child, _SCALARS) or isinstance(child, float):
                    stack.append((child, (*path, key)))
        elif isinstance(value, (list, tuple)):
            for index, child in enumerate(value):
                if not isinstance(child, _SCALARS) or isinstance(child, float):
                    stack.append((child, (*path, index)))
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise InvalidItemError(f"{_path(path)} is {value!r}, which is not JSON")
        elif not isinstance(value, _SCALARS):
            raise InvalidItemError(
                f"{_path(path)} is of type {type(value).__name__}, which is not JSON"
            )


def _dumps(item: Mapping[str, Any]) -> bytes:
    if _orjson is not None:
        try:
            return bytes(_orjson.dumps(item))
        except (TypeError, _orjson.JSONEncodeError):
            pass  # e.g. an int beyond 64 bits: the standard library handles it
    return json.dumps(item, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def encode_item(item: Any, *, max_item_bytes: int = DEFAULT_MAX_ITEM_BYTES) -> bytes:
    """Validate and encode one item as compact UTF-8 JSON."""
    validate_item(item)
    try:
        data = _dumps(item)
    except (TypeError, ValueError) as exc:  # unpaired surrogates, mostly
        raise InvalidItemError(f"item cannot be encoded as UTF-8 JSON: {exc}") from None
    except RecursionError:
        raise InvalidItemError(
            "item is nested too deeply to encode as JSON (beyond Python's recursion limit)"
        ) from None
    if len(data) > max_item_bytes:
        raise InvalidItemError(
            f"item is {len(data)} bytes encoded, more than max_item_bytes={max_item_bytes}"
        )
    return data


def encode_items(
    items: Iterable[Any], *, max_item_bytes: int = DEFAULT_MAX_ITEM_BYTES
) -> list[bytes]:
    """Encode a whole batch, or raise for the first bad item (naming its index)."""
    if isinstance(items, (str, bytes, Mapping)):
        raise InvalidItemError(f"items must be a list of dicts, not {type(items).__name__}")
    encoded: list[bytes] = []
    if _orjson is not None:
        # The common case inline (an append encodes every turn): exact dicts of plain JSON
        # values, dumped by orjson. Anything else takes `encode_item`, which decides, names
        # what is wrong, and falls back where orjson cannot go.
        dumps = _orjson.dumps
        for item in items:
            try:
                if type(item) is dict and _plain_dict(item):
                    data = dumps(item)
                    if len(data) <= max_item_bytes:
                        encoded.append(data)
                        continue
            except (TypeError, _orjson.JSONEncodeError, RecursionError):
                pass  # e.g. an int beyond 64 bits, or deep nesting
            encoded.append(_encode_at(len(encoded), item, max_item_bytes))
        return encoded
    for item in items:
        encoded.append(_encode_at(len(encoded), item, max_item_bytes))
    return encoded


def _encode_at(index: int, item: Any, max_item_bytes: int) -> bytes:
    try:
        return encode_item(item, max_item_bytes=max_item_bytes)
    except InvalidItemError as exc:
        raise InvalidItemError(f"items[{index}]: {exc}") from None


# orjson reads integers beyond 64 bits as floats, so an item that may hold a number of 19 or
# more digits goes through the standard library instead. A JSON number starts after one of
# `[ , : -` or white space: mapping those to ":" and every digit to "0" turns the question
# into one substring search, many times faster than a regular expression. Digits inside
# strings can only cause a false alarm (a slower, still exact decode), never a miss.
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789[,- \t\n\r", b"000000000:::::::")
_LONG_RUN = b":" + b"0" * 19
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def decode_item(raw: bytes | str) -> dict[str, Any]:
    """Decode one stored item; raise `ValueError` when it is not a JSON object."""
    value: Any
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    try:
        if _orjson is not None and _LONG_RUN not in data.translate(_DIGITS_TO_ZERO):
            value = _orjson.loads(data)  # JSONDecodeError is a ValueError
        else:
            value = _DECODER.decode(data.decode("utf-8"))
    except RecursionError:
        # Deeper than this process can parse (only a write behind the library's back, or by a
        # process with a higher recursion limit, stores one): a corrupt item, not a crash.
        raise ValueError("stored value is nested too deeply to decode") from None
    if not isinstance(value, dict):
        raise ValueError(f"stored value is a JSON {type(value).__name__}, not an object")
    return value


def decode_items_fast(raws: Sequence[bytes | str]) -> list[dict[str, Any]] | None:
    """Decode a whole read in one parse, or None when that cannot be done safely.

    Joining the stored items into one JSON array lets orjson parse a long history in one call.
    Every item must look like one object (`{` ... `}`) and the array must hold exactly as many
    objects as there were items; otherwise (a corrupt item, say) the caller decodes item by
    item, which pinpoints and reports what is wrong.
    """
    if _orjson is None or not raws:
        return None
    for raw in raws:
        if not isinstance(raw, bytes) or raw[:1] != b"{" or raw[-1:] != b"}":
            return None
    joined = b"[" + b",".join(raws) + b"]"  # type: ignore[arg-type]
    if _LONG_RUN in joined.translate(_DIGITS_TO_ZERO):
        return None
    try:
        values = _orjson.loads(joined)
    except ValueError:
        return None
    if len(values) != len(raws):
        return None
    for value in values:
        if type(value) is not dict:
            return None
    return values  # type: ignore[no-any-return]
