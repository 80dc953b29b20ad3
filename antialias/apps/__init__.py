"""Applications built on the library's public API: the top floor, beside the command line.

Nothing below this floor imports from it. :mod:`antialias.apps.demo` is the experiment behind
``antialias demo``.
"""
