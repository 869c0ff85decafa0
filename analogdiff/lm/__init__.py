"""The language models: a character-level masked diffusion LM (MDLM) and its autoregressive twin, trained on
Shakespeare's plays. They know nothing about hardware.

    load_model("shakespeare-mdlm")       a shipped model (or a path to a .safetensors with its .json card)
    generate(model, steps=64, seed=0)    a passage (ancestral / remask / semi-AR blocks; AR: temperature, top-k)
    evaluate(model, split="test")        bits/char, accuracies, generative perplexity (see lm.evaluate)
    train("mdlm", "runs/mdlm", steps=N)  the training loop behind `analogdiff train`
"""
from .checkpoint import SHIPPED, load_model, save_model
from .corpus import Vocab
from .evaluate import evaluate
from .model import CharLM, char_shape
from .sampling import SAMPLERS, generate
from .train import add_train_arguments, run_train, train

__all__ = ["CharLM", "SAMPLERS", "SHIPPED", "Vocab", "char_shape", "add_train_arguments", "evaluate", "generate",
           "load_model", "run_train", "save_model", "train"]
