"""The remote-endpoint guard: records stay on this machine unless the user opts in."""

from __future__ import annotations

import asyncio
import logging

import pytest

from generators.cache import ResponseCache
from generators.mockserver import MockOpenAIServer
from generators.verbalizers.openai_compat import ChatEndpoint, EndpointConfig
from graphkit.endpoint import check_endpoint, is_loopback
from graphkit.errors import ConfigError, RemoteEndpointRefused


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8000/v1", "http://127.8.9.10/v1", "http://localhost:8000/v1", "http://LOCALHOST/v1",
    "http://[::1]:8000/v1", "https://127.0.0.1/v1",
])
def test_loopback_endpoints_are_local(url):
    assert is_loopback(url)
    assert check_endpoint(url, allow_remote=False) is True


@pytest.mark.parametrize("url", [
    "https://api.openai.com/v1", "http://10.0.0.5:8000/v1", "http://192.168.1.2/v1", "http://0.0.0.0:8000/v1",
    "http://localhost.example.com/v1", "http://127.0.0.1.nip.io/v1", "http://myserver/v1", "http://[2001:db8::1]/v1",
])
def test_everything_else_is_remote_and_refused(url):
    assert not is_loopback(url)
    with pytest.raises(RemoteEndpointRefused) as error:
        check_endpoint(url, allow_remote=False)
    message = str(error.value)
    assert "--allow-remote" in message and "records" in message


def test_the_opt_in_is_logged_with_the_host_and_nothing_else(caplog):
    with caplog.at_level(logging.WARNING, logger="graphkit.endpoint"):
        assert check_endpoint("https://api.example.com/v1/secret-path?key=k", allow_remote=True) is False
    assert "api.example.com" in caplog.text
    assert "secret-path" not in caplog.text and "key=k" not in caplog.text


@pytest.mark.parametrize("url", ["127.0.0.1:8000", "ftp://127.0.0.1/v1", "http:///v1", ""])
def test_a_bad_url_is_a_config_error(url):
    with pytest.raises(ConfigError):
        is_loopback(url)


def test_the_verbalizer_and_the_judge_refuse_before_any_connection(tmp_path):
    from generators.config import load_config
    from generators.verbalizers import judge_endpoint

    with pytest.raises(RemoteEndpointRefused):
        ChatEndpoint(EndpointConfig("https://api.example.com/v1", "gpt-4o"), ResponseCache(None))
    config = load_config({"samples": [tmp_path], "out": tmp_path / "out",
                          "filters": {"judge": {"model": "j", "base_url": "http://judge.internal/v1"}}})
    with pytest.raises(RemoteEndpointRefused) as error:
        judge_endpoint(config.filters.judge, config, ResponseCache(None))
    assert "re-derivation judge" in str(error.value)


def test_the_cli_refuses_a_remote_endpoint_with_one_line(cli, tmp_path):
    samples = tmp_path / "samples.jsonl"
    samples.write_text("")
    result = cli("generate", "cases", "--samples", samples, "--verbalizer", "openai", "--model", "gpt-4o",
                 "--base-url", "https://api.example.com/v1", "--out", tmp_path / "out")
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: option --base-url:") and "--allow-remote" in lines[0]
    assert not (tmp_path / "out").exists()


def test_a_local_endpoint_ignores_environment_proxies(monkeypatch):
    # a proxy that does not exist: were the records routed through it, the request would fail
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://203.0.113.1:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)

    async def ask(url):
        endpoint = ChatEndpoint(EndpointConfig(url, "m", max_retries=0, timeout=5), ResponseCache(None))
        try:
            return await endpoint.complete([{"role": "user", "content": "hello"}])
        finally:
            await endpoint.aclose()

    with MockOpenAIServer(model="m") as server:
        result = asyncio.run(ask(server.base_url))
    assert result.error is None and result.texts and server.requests == 1
