"""`index_metadata`, the store option every backend shares: what it accepts and refuses."""

from __future__ import annotations

from typing import Any

import pytest

from turnstore import ConfigurationError
from turnstore.backend import validate_index_metadata


@pytest.mark.parametrize(
    ("given", "keys"),
    [
        ((), ()),
        (["user_id"], ("user_id",)),
        (("user_id", "tenant"), ("user_id", "tenant")),
        ("user_id,tenant", ("user_id", "tenant")),
        ("user_id, tenant", ("user_id", "tenant")),
        ("user_id", ("user_id",)),
        ("", ()),
    ],
)
def test_accepted_forms_give_the_keys_in_order(given: Any, keys: tuple[str, ...]) -> None:
    assert validate_index_metadata(given) == keys


@pytest.mark.parametrize("given", [["user_id", "user_id"], "user_id,user_id", ("a", "b", "a")])
def test_a_repeated_key_is_a_configuration_error(given: Any) -> None:
    with pytest.raises(ConfigurationError, match="twice"):
        validate_index_metadata(given)


@pytest.mark.parametrize("given", [[""], ["a", ""], "a,,b", "a,", [1], ["a", None]])
def test_an_empty_or_non_str_key_is_a_configuration_error(given: Any) -> None:
    with pytest.raises(ConfigurationError, match="non-empty str"):
        validate_index_metadata(given)


@pytest.mark.parametrize("given", [None, 3, b"user_id", {"user_id": 1}.keys()])
def test_something_not_a_sequence_is_a_configuration_error(given: Any) -> None:
    with pytest.raises(ConfigurationError, match="sequence"):
        validate_index_metadata(given)
