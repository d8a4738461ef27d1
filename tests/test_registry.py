import pytest

from medimbalance.registry import Registry


def test_registered_names_are_sorted_and_resolvable():
    reg = Registry[int]("thing")
    reg.register("b")(2)
    reg.register("a")(1)
    assert reg.names() == ["a", "b"]
    assert reg.get("b") == 2
    assert "a" in reg and "c" not in reg


def test_unknown_name_lists_valid_choices():
    reg = Registry[int]("loss")
    reg.register("ce")(1)
    reg.register("focal")(2)
    with pytest.raises(ValueError, match=r"unknown loss 'dice'; valid choices: ce, focal"):
        reg.get("dice")


def test_double_registration_is_an_error():
    reg = Registry[int]("model")
    reg.register("x")(1)
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("x")(2)
