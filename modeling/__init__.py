"""The model and its files: MTDNNModel (one shared encoder, a head per task), loading and saving model
directories (heads.json/heads.safetensors, the atomic writer's users), the pretrained models and
tokenizers, the structurally pruned BERT (and its export), and the standard `transformers` copies.
Imports nothing of the training run, the methods or the commands."""
