"""Model backends of the evaluator: local transformers, OpenAI-compatible endpoints, in-process vLLM."""
