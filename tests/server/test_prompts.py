"""The prompts guide a model through tools by name: every name a prompt's text mentions must be a tool the server
serves, or the model is sent to call something that does not exist."""

from __future__ import annotations

import re

import pytest
from mcp import Client
from mcp.types import TextContent

pytestmark = pytest.mark.anyio

ARGUMENTS = {"theme": "water", "size": "10", "universe_id": "6f1c2a4e-0000-4000-8000-000000000000"}


async def test_every_tool_a_prompt_names_is_served(client: Client):
    tools = {t.name for t in (await client.list_tools()).tools}
    prompts = (await client.list_prompts()).prompts
    assert prompts
    for prompt in prompts:
        args = {a.name: ARGUMENTS.get(a.name, "Energy") for a in prompt.arguments or []}
        messages = (await client.get_prompt(prompt.name, args)).messages
        text = " ".join(m.content.text for m in messages if isinstance(m.content, TextContent))
        named = set(re.findall(r"\b[a-z]+(?:_[a-z]+)+\b", text)) - {"as_of", "dry_run", "asset_type", "market_cap"}
        assert named, prompt.name
        assert named <= tools, (prompt.name, sorted(named - tools))
