"""SentenceClassifier: single sentences and pairs, the pair features by hand."""
import pytest
import torch

from gnnagg.models import SentenceClassifier
from gnnagg.nn import GLOTPooling, MeanPooling


def batch():
    x = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[-1.0, 0.0], [9.0, 9.0]]])
    mask = torch.tensor([[True, True], [True, False]])
    return x, mask  # means: [2, 3] and [-1, 0]


@pytest.mark.parametrize("pair,features", [
    ("concat", [[2.0, 3.0, -1.0, 0.0]]),
    ("sbert", [[2.0, 3.0, -1.0, 0.0, 3.0, 3.0, -2.0, 0.0]])])
def test_pair_features_hand_computed(pair, features):
    model = SentenceClassifier(2, 1, "mean", pair=pair)
    with torch.no_grad():
        model.head.weight.copy_(torch.arange(1.0, len(features[0]) + 1))
        model.head.bias.zero_()
    x, mask = batch()
    out = model(x[:1], mask[:1], x[1:], mask[1:])
    expected = (torch.tensor(features) * torch.arange(1.0, len(features[0]) + 1)).sum(1, keepdim=True)
    assert torch.allclose(out, expected)
    assert sum(p.numel() for p in model.parameters()) == len(features[0]) + 1


def test_single_sentences_any_pooler_and_errors():
    torch.manual_seed(0)
    x, mask = batch()
    model = SentenceClassifier(2, 3, "glot", pooling_kwargs={"hidden_channels": 4, "tau": 0.0})
    assert isinstance(model.pooler, GLOTPooling) and model(x, mask).shape == (2, 3)
    model.reset_parameters()
    built = MeanPooling(2)
    assert SentenceClassifier(2, 2, built, pair="sbert").pooler is built
    assert "pair='sbert'" in repr(SentenceClassifier(2, 2, built, pair="sbert"))
    with pytest.raises(ValueError, match="unknown pair features"):
        SentenceClassifier(2, 2, pair="diff")
    with pytest.raises(ValueError, match="x_pair and mask_pair"):
        SentenceClassifier(2, 2, pair="sbert")(x, mask)
    with pytest.raises(ValueError, match="x_pair and mask_pair"):
        SentenceClassifier(2, 2)(x, mask, x, mask)
    with pytest.raises(ValueError, match="2 first sentences but 1 second"):
        SentenceClassifier(2, 2, pair="concat")(x, mask, x[:1], mask[:1])
    with pytest.raises(TypeError, match="pooling_kwargs"):
        SentenceClassifier(2, 2, built, pooling_kwargs={"last": True})
    with pytest.raises(ValueError, match="out_channels"):
        SentenceClassifier(2, 0)
