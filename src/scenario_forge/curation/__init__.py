"""Curation: quality gates, an LLM judge, embedding near-duplicate removal, and the run report."""
