"""The neo4j backend's connection handling: credentials, unreachable servers, the lazy extra."""

from __future__ import annotations

import logging
import os
import sys

import pytest

from graphkit.errors import ConfigError, ExtraMissingError, StoreError
from graphkit.store import open_store
from tests.store_data import bolt_endpoint, free_bolt_port

SECRET = "s3cret-Pa55word"


def test_unreachable_server_is_one_line_without_the_password(caplog):
    caplog.set_level(logging.DEBUG)
    uri = f"bolt://127.0.0.1:{free_bolt_port()}"  # nothing listens there
    with pytest.raises(StoreError) as error:
        open_store(backend="neo4j", uri=uri, user="alice", password=SECRET, connection_timeout=2)
    message = str(error.value)
    assert "\n" not in message and uri in message and "alice" in message
    assert SECRET not in message
    assert SECRET not in caplog.text
    assert error.value.__cause__ is None and error.value.__suppress_context__


def test_password_from_the_environment_is_never_shown(monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("NEO4J_PASSWORD", SECRET)
    monkeypatch.setenv("NEO4J_URI", f"bolt://127.0.0.1:{free_bolt_port()}")
    with pytest.raises(StoreError) as error:
        open_store(backend="neo4j", connection_timeout=2)
    assert SECRET not in str(error.value) and SECRET not in caplog.text
    assert "user neo4j" in str(error.value)


@pytest.mark.parametrize("uri", ["http://localhost:7474", "localhost:7687", "bolt//x"])
def test_a_uri_that_is_not_bolt_is_a_config_error(uri):
    with pytest.raises(ConfigError, match="not a Bolt URI"):
        open_store(backend="neo4j", uri=uri)


def test_no_uri_names_the_variable(monkeypatch):
    monkeypatch.delenv("NEO4J_URI", raising=False)
    with pytest.raises(ConfigError, match="NEO4J_URI"):
        open_store(backend="neo4j")


def test_unknown_backend():
    with pytest.raises(ConfigError, match="unknown graph backend"):
        open_store(backend="sqlite")


def test_missing_extra_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "neo4j", None)  # import neo4j -> ImportError
    with pytest.raises(ExtraMissingError, match=r"pip install 'ehr-r1\[neo4j\]'"):
        open_store(backend="neo4j", uri="bolt://127.0.0.1:1")


def test_the_bolt_bridge_is_detected_and_its_repr_has_no_password(tmp_path):
    with bolt_endpoint(tmp_path / "graph") as uri:
        store = open_store(backend="neo4j", uri=uri, password=None)
        assert store.dialect == "falkordb"
        assert SECRET not in repr(store) and "password" not in repr(store)
        assert store.query("RETURN 1 AS one") == [{"one": 1}]
    store.close()


@pytest.mark.neo4j
def test_wrong_password_on_a_real_neo4j(caplog):
    if not os.environ.get("NEO4J_URI"):
        pytest.skip("NEO4J_URI is not set")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(StoreError, match="refused the user name or password") as error:
        open_store(backend="neo4j", password=SECRET + "-wrong")
    assert SECRET not in str(error.value) and SECRET not in caplog.text
