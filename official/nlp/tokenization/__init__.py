"""In-graph WordPiece tokenization and BERT input packing (tensorflow-text)."""
