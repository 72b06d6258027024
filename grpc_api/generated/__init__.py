"""Stubs generated from proto/ by `make proto`; checked in, never edited."""
