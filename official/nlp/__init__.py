"""Text: BERT-family encoders, in-graph WordPiece, sentence prediction and MLM."""
