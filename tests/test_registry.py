import pytest

from stalwart._registry import Registry
from stalwart.errors import ConfigError


def test_registry_register_get_and_errors():
    reg = Registry("widget", "stalwart.tests.nothing")

    @reg.register
    class A:
        name = "a"

    assert reg.get("a") is A and "a" in reg and reg.names() == ["a"] and list(reg) == ["a"]
    with pytest.raises(ConfigError, match="unknown widget 'b'; known: a"):
        reg.get("b")

    class Nameless:
        pass

    with pytest.raises(ConfigError, match="needs a class attribute 'name'"):
        reg.register(Nameless)

    class Other:
        name = "a"

    with pytest.raises(ConfigError, match="already registered"):
        reg.register(Other)
    assert reg.names(lambda c: c is not A) == []
