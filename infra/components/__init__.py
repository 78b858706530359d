"""Pulumi ComponentResources of the stack, one per file; shared rules live in conventions.py."""
