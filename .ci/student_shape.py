"""Write a local stand-in for Qwen/Qwen2.5-Math-1.5B (no weights, no download): its config.json with the real
shapes and a locally trained tokenizer, so `distill sft r1-distill-qwen-1.5b --dry-run model=DIR` plans the
real model offline.  Usage: python .ci/student_shape.py DIR
"""

import sys

from transformers import Qwen2Config

from distill.training.tiny import build_tokenizer

out = sys.argv[1]
build_tokenizer("qwen2").save_pretrained(out)
Qwen2Config(  # Qwen2.5-Math-1.5B's config.json
    vocab_size=151936,
    hidden_size=1536,
    intermediate_size=8960,
    num_hidden_layers=28,
    num_attention_heads=12,
    num_key_value_heads=2,
    max_position_embeddings=4096,
    rope_theta=10000.0,
    tie_word_embeddings=True,
).save_pretrained(out)
