import pytest

from official.base.registry import Registry


def test_register_and_get():
    reg = Registry("widget")

    @reg.register("round")
    def round_widget():
        return 1

    assert reg.get("round") is round_widget
    assert reg.names() == ["round"]
    assert "round" in reg and len(reg) == 1


def test_unknown_name_lists_registered_and_closest():
    reg = Registry("widget")
    reg.register("resnet")(lambda: None)
    reg.register("mobilenet")(lambda: None)
    with pytest.raises(KeyError) as e:
        reg.get("resnt")
    message = e.value.args[0]
    assert "Unknown widget 'resnt'" in message
    assert "Did you mean 'resnet'?" in message
    assert "Registered: mobilenet, resnet." in message


def test_duplicate_names_both_definitions():
    reg = Registry("widget")

    @reg.register("a")
    def first():
        return 1

    with pytest.raises(ValueError) as e:

        @reg.register("a")
        def second():
            return 2

    message = str(e.value)
    assert "Duplicate widget name 'a'" in message
    assert "first" in message and "second" in message


def test_class_keys_display_by_name():
    reg = Registry("task")

    class MyConfig:
        pass

    class Other:
        pass

    reg.register(MyConfig)(object)
    with pytest.raises(KeyError, match="Registered: MyConfig"):
        reg.get(Other)
