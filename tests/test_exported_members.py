"""The front door: `politely` exports exactly these names."""

import politely


def test_public_names_are_exactly_these() -> None:
    assert politely.__all__ == [
        "CheckResult",
        "Decision",
        "Diagnostic",
        "Engine",
        "Event",
        "EventError",
        "FormatError",
        "Invitation",
        "MemoryStore",
        "PolitelyError",
        "RuleSet",
        "RulesError",
        "Stats",
        "Store",
        "StoreError",
        "TrafficError",
        "__version__",
        "check_path",
        "check_sources",
        "compile_rules",
        "open_store",
    ]


def test_every_exported_name_exists() -> None:
    for name in politely.__all__:
        assert getattr(politely, name) is not None
