"""An example rowloom plugin package: a column generator and a processor, declared as entry
points in the `rowloom.plugins` group (see ../pyproject.toml)."""

from rowloom.config.plugins import Plugin

reverse_text = Plugin(
    plugin_type="column_generator",
    config="rowloom_example_plugin.config:ReverseTextColumnConfig",
    impl="rowloom_example_plugin.impl:ReverseTextGenerator",
    description="the text of another column, reversed",
)
row_stats = Plugin(
    plugin_type="processor",
    config="rowloom_example_plugin.config:RowStatsProcessorConfig",
    impl="rowloom_example_plugin.impl:RowStatsProcessor",
)
