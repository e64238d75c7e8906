"""Helpers for the tests that build tiny random models of real classes (no hub, no weights)."""

from __future__ import annotations

from typing import Any

from lva.instructions import all_instructions


def tiny_tokenizer(template: str, bos: str | None = None, eos: str | None = None) -> tuple[Any, int]:
    """A word-level fast tokenizer over the instructions' words, with ``template`` as its
    post-processor (e.g. ``"[CLS] $A [SEP]"``), and its vocabulary size."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "<s>", "</s>"]
    words = sorted({w for i in all_instructions() for w in i.text.split()})
    vocab = {t: k for k, t in enumerate(specials + words)}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    used = [t for t in specials if t in template]
    tk.post_processor = processors.TemplateProcessing(single=template, special_tokens=[(t, vocab[t]) for t in used])
    named = {k: v for k, v in (("bos_token", bos), ("eos_token", eos)) if v}
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", **named
    ), len(vocab)
