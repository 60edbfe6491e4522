"""Data: the Kaggle-format loader, the pair formatter, the bundled sample and its tokenizer."""
