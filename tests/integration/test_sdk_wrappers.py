"""The SDK's session wrappers work over ours."""

from __future__ import annotations

from agents.extensions.memory import EncryptedSession
from cryptography.fernet import Fernet

from tests.backends import Backend
from turnstore.conformance.items import turn


async def test_encrypted_session_round_trips_over_ours(backend: Backend) -> None:
    inner = backend.session()
    key = Fernet.generate_key().decode("ascii")
    encrypted = EncryptedSession(inner.session_id, inner, encryption_key=key)  # type: ignore[arg-type]
    await encrypted.add_items(turn(0))
    await encrypted.add_items(turn(1))
    assert await encrypted.get_items() == turn(0) + turn(1)
    assert await encrypted.get_items(limit=2) == turn(1)[-2:]
    assert await encrypted.pop_item() == turn(1)[-1]
    stored = await inner.get_items()
    assert len(stored) == 9
    assert all("question" not in str(item) for item in stored)  # ciphertext only


async def test_encrypted_session_clear_reaches_our_storage(backend: Backend) -> None:
    inner = backend.session()
    encrypted = EncryptedSession(
        inner.session_id,
        inner,
        encryption_key=Fernet.generate_key().decode("ascii"),  # type: ignore[arg-type]
    )
    await encrypted.add_items(turn(0))
    await encrypted.clear_session()
    assert await inner.get_info() is None
