"""The serving app: a small PyTorch captioning model behind Flask."""
