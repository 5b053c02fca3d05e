"""Smoke tests of the e2e infrastructure: real servers, real clients, no gateway yet.

They prove that scripts/deps.sh installed working servers and clients and that conftest.py
can start, reach and stop them.
"""

from __future__ import annotations

import sys

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.sse import sse_client

from conftest import CONFORMANCE_FIXTURE, Server, Spawner, free_port, tool

pytestmark = pytest.mark.anyio


def texts(result) -> list[str]:
    return [block.text for block in result.content if getattr(block, "type", None) == "text"]


async def test_everything_streamable_http(everything_http: Server) -> None:
    async with Client(everything_http.url, mode="legacy") as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "echo" in names, names
        result = await client.call_tool("echo", {"message": "hello over streamable http"})
        assert not result.is_error
        assert any("hello over streamable http" in t for t in texts(result)), result


async def test_everything_sse(everything_sse: Server) -> None:
    async with Client(sse_client(everything_sse.url), mode="legacy") as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "echo" in names, names
        result = await client.call_tool("echo", {"message": "hello over sse"})
        assert not result.is_error
        assert any("hello over sse" in t for t in texts(result)), result


async def test_time_server_stdio() -> None:
    params = StdioServerParameters(command=tool("mcp-server-time"), args=["--local-timezone", "UTC"])
    async with Client(params, mode="legacy") as client:
        assert client.protocol_version == "2025-11-25"
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"get_current_time", "convert_time"} <= names, names
        result = await client.call_tool("get_current_time", {"timezone": "UTC"})
        assert not result.is_error
        assert any("UTC" in t for t in texts(result)), result


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_conformance_fixture_tools(fixture_http: Server, mode: str) -> None:
    async with Client(fixture_http.url, mode=mode) as client:
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else mode)
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"test_simple_text", "test_sampling", "test_input_required_result_elicitation"} <= names, names
        result = await client.call_tool("test_simple_text", {})
        assert texts(result) == ["This is a simple text response for testing."]


async def test_conformance_fixture_stdio() -> None:
    params = StdioServerParameters(command=sys.executable, args=[str(CONFORMANCE_FIXTURE), "--transport", "stdio"])
    async with Client(params, mode="auto") as client:
        assert client.protocol_version == "2026-07-28"
        result = await client.call_tool("test_simple_text", {})
        assert texts(result) == ["This is a simple text response for testing."]


async def test_conformance_fixture_sse(spawn: Spawner) -> None:
    port = free_port()
    proc = spawn(
        [sys.executable, str(CONFORMANCE_FIXTURE), "--transport", "sse", "--port", str(port)],
        name="conformance-fixture-sse",
    )
    proc.wait_for_port(port)
    async with Client(sse_client(f"http://127.0.0.1:{port}/sse"), mode="legacy") as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "test_simple_text" in names
