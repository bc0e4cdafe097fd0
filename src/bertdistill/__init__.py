"""bertdistill: make BERT-family models smaller and faster by knowledge distillation."""

__version__ = "0.1.0"
