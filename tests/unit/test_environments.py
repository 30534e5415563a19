import pytest

from fd2.control.environments import canonical_environment, is_valid_environment_name


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("dev", "development"),
        ("Development", "development"),
        ("stg", "staging"),
        ("staging", "staging"),
        ("PROD", "production"),
        ("production", "production"),
        ("qa", "qa"),
    ],
)
def test_aliases_share_one_name(name, canonical):
    assert canonical_environment(name) == canonical


def test_environment_names_follow_the_name_rule():
    assert is_valid_environment_name("eu-west_1")
    assert not is_valid_environment_name("../prod")
    assert not is_valid_environment_name("")
