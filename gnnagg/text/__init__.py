"""Frozen text encoders whose token states feed gnnagg's poolers.

:class:`FrozenEncoder` runs a Hugging Face encoder once over a list of texts
and caches the last-layer token states on disk (see
:mod:`gnnagg.text.encoder`); :class:`LabelledTexts` holds one split's
encoded texts (or text pairs) and labels. ``transformers`` is imported only
when an encoder is built.
"""
from .encoder import DEFAULT_MODEL, EncodedTexts, FrozenEncoder, pad_states, save_tiny_bert
from .labelled import LabelledTexts

__all__ = ["DEFAULT_MODEL", "EncodedTexts", "FrozenEncoder", "LabelledTexts", "pad_states",
           "save_tiny_bert"]
