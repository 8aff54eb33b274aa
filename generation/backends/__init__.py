"""Answer backends that write their own text with a language model: OpenAI-compatible endpoints
(openai.py) and local Hugging Face causal LMs (transformers.py). They share the prompt and the
mapping of the model's [n] markers to citations (passages.py)."""
