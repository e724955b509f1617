"""From stored series to volumes: series plans, slice stacks and their geometry, the slice a
reader sees first, and progressive loading into one array."""
