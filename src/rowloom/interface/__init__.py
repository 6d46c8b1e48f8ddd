"""User-facing entry points: Designer, results, CLI, progress and run report."""
