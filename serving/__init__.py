"""BentoML service for the champion intent model (and, later, the chat tier)."""
