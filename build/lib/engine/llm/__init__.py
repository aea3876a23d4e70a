"""LLM providers behind one protocol, and the one place the `openai` client is built."""
