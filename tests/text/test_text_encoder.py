import pytest
import torch

transformers = pytest.importorskip("transformers")

from gnnagg.text import FrozenEncoder, save_tiny_bert  # noqa: E402

WORDS = "the a cat dog sat ran on mat fast slow not never good bad film".split()


def tiny_bert(folder):
    return save_tiny_bert(folder, WORDS)


def test_encode_matches_model_and_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("GNNAGG_CACHE", str(tmp_path / "cache"))
    folder = tiny_bert(tmp_path / "bert")
    texts = ["the cat sat on the mat", "a dog", "the film was good good good good good good"]
    enc = FrozenEncoder(str(folder), max_length=8, batch_size=2)
    out = enc.encode(texts)
    assert len(out) == 3 and out.dim == 16 and out.states.dtype == torch.float16
    assert out.lengths().tolist() == [8, 4, 8] and out.truncated == 1
    # equals a direct forward pass, padding tokens dropped
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModel.from_pretrained(folder).eval()
    with torch.no_grad():
        ref = model(**tok(texts[1:2], return_tensors="pt")).last_hidden_state[0]
    x, mask = out.padded(torch.tensor([1, 0]))
    assert x.shape == (2, 8, 16) and mask.sum(1).tolist() == [4, 8]
    assert torch.allclose(x[0, :4], ref, atol=1e-2)
    assert (x[0, 4:] == 0).all()
    # the second call reads the cache file and never runs the model
    path = enc.cache_path(texts)
    assert path.is_file()
    again = FrozenEncoder(str(folder), max_length=8)
    again._load = lambda: pytest.fail("model loaded despite the cache")
    cached = again.encode(texts)
    assert torch.equal(cached.states, out.states) and torch.equal(cached.ptr, out.ptr)
    # the key depends on texts and max length
    assert FrozenEncoder(str(folder), max_length=9).cache_path(texts) != path
    assert enc.cache_path(texts[:2]) != path
    sub = out.subset([2, 1])
    assert sub.lengths().tolist() == [8, 4]
    assert torch.equal(sub.states[8:], out.states[8:12])


def test_encoder_rejects_bad_arguments():
    with pytest.raises(ValueError, match="max_length"):
        FrozenEncoder(max_length=1)
    with pytest.raises(ValueError, match="both model and tokenizer"):
        FrozenEncoder("x", model=torch.nn.Linear(1, 1))
    with pytest.raises(TypeError, match="strings"):
        FrozenEncoder("x").cache_path(["ok", 3])
