"""perfsuite: a performance and quality regression suite for LLM sequence-classification inference."""

__version__ = "0.1.0"
