"""medveil.quiet: pydicom says nothing that could quote a value, and skips checks that would only warn."""

from __future__ import annotations

from medveil.quiet import silenced


def test_silenced_skips_pydicom_validation_only_where_it_would_merely_warn():
    from pydicom import config

    settings = config.settings
    before = settings.reading_validation_mode, settings.writing_validation_mode
    try:
        settings.reading_validation_mode, settings.writing_validation_mode = config.WARN, config.RAISE
        with silenced():
            assert settings.reading_validation_mode == config.IGNORE
            assert settings.writing_validation_mode == config.RAISE  # a stricter choice stays
            with silenced():
                pass
            assert settings.reading_validation_mode == config.IGNORE
        assert (settings.reading_validation_mode, settings.writing_validation_mode) == (config.WARN, config.RAISE)
    finally:
        settings.reading_validation_mode, settings.writing_validation_mode = before
