"""The canonical conversation-message schema, its SQL tables, readers and row validation."""
