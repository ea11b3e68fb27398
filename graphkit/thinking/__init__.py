"""Association mining, typed path search and thinking-graph objects."""
