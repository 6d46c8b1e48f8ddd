"""A tiny MCP server for examples/tool_use.yaml: facts about a few countries, over stdio.

rowloom starts it for the run (`mcp_providers` with `provider_type: stdio`) and stops it after.
Run it alone with `python examples/mcp_geo_server.py` (it then waits for MCP messages on stdin).
"""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

FACTS = {
    "france": {"capital": "Paris", "population_millions": 68, "currency": "euro"},
    "japan": {"capital": "Tokyo", "population_millions": 124, "currency": "yen"},
    "kenya": {"capital": "Nairobi", "population_millions": 55, "currency": "Kenyan shilling"},
    "peru": {"capital": "Lima", "population_millions": 34, "currency": "sol"},
    "canada": {"capital": "Ottawa", "population_millions": 40, "currency": "Canadian dollar"},
}

server = MCPServer("geo-facts")


@server.tool()
def country_facts(country: str) -> dict[str, object]:
    """Capital, population (millions) and currency of a country."""
    facts = FACTS.get(country.strip().lower())
    if facts is None:
        raise ValueError(f"no facts about {country!r}; known: {sorted(FACTS)}")
    return {"country": country.strip().title(), **facts}


if __name__ == "__main__":
    server.run("stdio")
