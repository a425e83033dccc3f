"""The marketer's pages for segments: list, builder (wizard), segment page. Views in `views.py`."""
