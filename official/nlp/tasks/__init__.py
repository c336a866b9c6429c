"""Text tasks: sentence prediction and masked-LM pretraining."""
