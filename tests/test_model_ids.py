import re

import pytest

from repatlas import model_ids as ids

FIELDS = dict(dataset="fashion_mnist", n=2000, arch="resnet", depth=26, width=4, seed=3)


def test_id_and_path_round_trip():
    model_id = ids.model_id(**FIELDS)
    assert model_id == "fashion_mnist-n2000-resnet-d26-w4-s3"
    assert ids.parse_model_id(model_id) == FIELDS
    assert ids.path_of_id(model_id) == "fashion_mnist-n2000/resnet-d26-w4/s3"
    arch = ids.arch_id(**FIELDS)
    assert arch == "fashion_mnist-n2000-resnet-d26-w4"
    assert ids.parse_arch_id(arch) == {k: v for k, v in FIELDS.items() if k != "seed"}
    assert ids.arch_label_of(model_id) == ids.arch_label_of(arch) == "d26-w4"
    assert ids.arch_name_of(arch) == "resnet-d26-w4"
    assert ids.parse_arch_label("d26-w4") == (26, 4)


def test_regexes_accept_exactly_what_the_parsers_accept():
    good = ids.model_id(**FIELDS)
    for text in (good, ids.model_id(**{**FIELDS, "arch": "mlp", "dataset": "digits"})):
        assert re.fullmatch(ids.MODEL_ID_REGEX, text)
        ids.parse_model_id(text)
    for bad in (good + "x", good.replace("-s3", ""), good.replace("resnet", "vgg"), "Digits" + good[13:]):
        assert not re.fullmatch(ids.MODEL_ID_REGEX, bad)
        with pytest.raises(ValueError, match="does not match"):
            ids.parse_model_id(bad)
    assert re.fullmatch(ids.ARCH_ID_REGEX, ids.arch_id(**FIELDS))
    assert not re.fullmatch(ids.ARCH_ID_REGEX, good)


def test_bad_ids_name_the_text_and_the_expected_form():
    with pytest.raises(ValueError, match=r"'d26w4'.*d\{depth\}-w\{width\}"):
        ids.parse_arch_label("d26w4")
