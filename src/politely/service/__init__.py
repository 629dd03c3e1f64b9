"""The HTTP service (`politely serve`): a thin shell over the library's `Engine`."""

from politely.service.app import Settings, create_app

__all__ = ["Settings", "create_app"]
