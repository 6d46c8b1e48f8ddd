"""The simulated provider: capacity model (`capacity`), deterministic content (`responses`) and
its OpenAI-compatible HTTP server (`server`, behind `rowloom mock-server`)."""
